package assignment

import (
	"errors"
	"sync"
	"time"
)

// Freezing idle environments.
//
// An idle environment whose Env implements Freezer is frozen once it has
// been idle for Config.FreezeAfter (real time; default
// DefaultFreezeAfter) and thawed by the Acquire that hands it out,
// before its invocation is sent. A gVisor sandbox's sentry and the Go
// runtimes inside it wake up every few milliseconds even when nothing
// happens (~1.7% of a CPU per idle sandbox); frozen, it costs nothing,
// which is what lets a worker keep hundreds of idle environments. The
// delay means back-to-back invokes never pay a thaw (~0.3 ms, plus the
// first wake-ups of the sentry).
//
// The reaper picks the due environments under the Manager's lock and a
// goroutine freezes them one after another outside it. Each entry has a
// freezeSlot: its mu is held while the environment freezes or thaws (never
// together with the Manager's lock taken first), gen counts the Acquires
// of the entry, so that a freeze decided before an Acquire is dropped if
// the Acquire came first, and waited for (then undone) if it came after.

// Freezer is implemented by environments that can be suspended while idle
// (the worker's Environment, when its sandbox implements sandbox.Freezer).
// Freeze returns an error wrapping errors.ErrUnsupported when this
// environment cannot be frozen (it is not asked again). Thaw on an
// environment that is not frozen is a no-op. An environment whose Thaw
// fails is destroyed, never handed out. Destroy must work on a frozen
// environment.
type Freezer interface {
	Freeze() error
	Thaw() error
}

// DefaultFreezeAfter is how long an environment stays idle before it is
// frozen. Real time: a server whose Lambda waits are scaled down for tests
// (--time-scale) freezes after the same second, so that tests that look
// into a sandbox right after an invoke (runsc exec) find it running.
const DefaultFreezeAfter = time.Second

// freezeSlot is an entry's freezer state.
type freezeSlot struct {
	// mu is held while the environment freezes or thaws.
	mu sync.Mutex
	// frozen is true once Freeze succeeded, until Thaw does. Guarded by mu.
	frozen bool

	// Guarded by the Manager's mu:
	gen         uint64 // Acquires of the entry
	pending     bool   // picked by the reaper, not frozen yet
	done        bool   // frozen (or failed) since the last Acquire: not picked again
	unsupported bool   // Freeze said errors.ErrUnsupported: never picked again
}

// freezeJob is one environment the reaper picked.
type freezeJob struct {
	e   *Entry
	gen uint64
}

// dueFreezes returns the idle environments to freeze now and marks them
// pending. Called with mu held.
func (m *Manager) dueFreezes(now time.Time) []freezeJob {
	if m.freezeAfter < 0 {
		return nil
	}
	var jobs []freezeJob
	for _, e := range m.t.IdleBefore(now.Add(-m.freezeAfter)) {
		if _, ok := e.Ref.(Freezer); !ok {
			continue
		}
		if e.freeze == nil {
			e.freeze = &freezeSlot{}
		}
		s := e.freeze
		if s.pending || s.done || s.unsupported {
			continue
		}
		s.pending = true
		jobs = append(jobs, freezeJob{e: e, gen: s.gen})
	}
	return jobs
}

// freezeAll freezes the picked environments, one after another (a freeze
// takes a fraction of a millisecond to a few; many at once would only
// contend). It runs outside mu, in its own goroutine.
func (m *Manager) freezeAll(jobs []freezeJob) {
	for _, j := range jobs {
		m.freezeOne(j)
	}
}

func (m *Manager) freezeOne(j freezeJob) {
	s := j.e.freeze
	s.mu.Lock()
	defer s.mu.Unlock()
	m.mu.Lock()
	current := s.gen == j.gen && j.e.State == StateIdle && m.t.Has(j.e)
	s.pending = false
	if current {
		// Not picked again until the next Acquire, whatever happens now.
		s.done = true
	}
	m.mu.Unlock()
	if !current {
		return // handed out or removed meanwhile
	}
	err := j.e.Ref.(Freezer).Freeze()
	switch {
	case err == nil:
		s.frozen = true
	case errors.Is(err, errors.ErrUnsupported):
		m.mu.Lock()
		s.unsupported = true
		m.mu.Unlock()
	default:
		// The sandbox is left thawed; it stays usable and idle, unfrozen
		// until its next use. A destroyed one (expired meanwhile) says so
		// too: not worth a warning then.
		m.mu.Lock()
		still := m.t.Has(j.e)
		m.mu.Unlock()
		if still {
			m.cfg.Logger.Warn("freezing an idle environment", "env", j.e.ID, "err", err)
		}
	}
}

// acquired notes that e was handed out (called with mu held, by Acquire)
// and reports whether it may be frozen: then thaw must run before it is
// used.
func (m *Manager) acquired(e *Entry) (mayBeFrozen bool) {
	s := e.freeze
	if s == nil {
		return false
	}
	s.gen++
	mayBeFrozen = s.pending || s.done
	s.pending, s.done = false, false
	return mayBeFrozen
}

// thaw thaws an environment Acquire took that may be frozen, waiting for a
// freeze in progress first. Called without mu.
func (m *Manager) thaw(e *Entry) error {
	s := e.freeze
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.frozen {
		return nil
	}
	if err := e.Ref.(Freezer).Thaw(); err != nil {
		return err
	}
	s.frozen = false
	return nil
}
