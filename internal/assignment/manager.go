package assignment

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"kindling/internal/clock"
	"kindling/internal/config"
	"kindling/internal/errdefs"
	"kindling/internal/invoke"
)

// Env is an execution environment as the assignment service uses it. The
// worker's Environment implements it.
type Env interface {
	ID() string
	// Alive reports whether the environment can still run anything.
	Alive() bool
	// Invoke runs one invocation; healthy reports whether the environment
	// can serve another. An error means the event did not reach the
	// function and may be run on another environment.
	Invoke(ctx context.Context, req *invoke.Request) (res *invoke.Result, healthy bool, err error)
	// Destroy releases the environment. Idempotent.
	Destroy()
}

// Placer creates a new environment for a function on some worker.
type Placer interface {
	Place(ctx context.Context, fn *config.Function) (Env, error)
}

// Config configures a Manager.
type Config struct {
	Placer Placer
	Clock  clock.Clock
	// KeepAlive is how long an idle environment is kept, in Lambda's time
	// (scaled by Clock).
	KeepAlive time.Duration
	// FreezeAfter is how long an idle environment that can be frozen
	// (Freezer) runs before it is frozen, in real time (not scaled by
	// Clock: it is about real back-to-back invokes and real CPU); 0 means
	// DefaultFreezeAfter, a negative value never. See freeze.go.
	FreezeAfter time.Duration
	Logger      *slog.Logger
}

// Manager is the assignment service of one region, in memory.
type Manager struct {
	cfg         Config
	keepAlive   time.Duration // scaled
	freezeAfter time.Duration // real time; negative: never

	mu sync.Mutex // guards t, provisions and filling
	t  *Table
	// provisions are the provisioned concurrency configurations, by owner
	// (the qualified ARN they were put on); several owners may target the
	// same key (an alias and its version): their counts add up.
	provisions map[string]provision
	// filling marks the keys a filler goroutine is creating environments
	// for (at most one per key).
	filling map[Key]bool

	ctx    context.Context // cancelled by Close: stops the fillers
	cancel context.CancelFunc
	stop   chan struct{}
	done   chan struct{}
}

// provision is one provisioned concurrency configuration.
type provision struct {
	fn *config.Function // the version its environments run
	n  int
}

// Lease is an environment handed out for one invocation. Give it back with
// Release.
type Lease struct {
	Env  Env
	Cold bool
	id   string
}

// NewManager returns a Manager and starts its keep-alive reaper.
func NewManager(cfg Config) *Manager {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.FreezeAfter == 0 {
		cfg.FreezeAfter = DefaultFreezeAfter
	}
	m := &Manager{
		cfg:         cfg,
		keepAlive:   cfg.Clock.Scale(cfg.KeepAlive),
		freezeAfter: cfg.FreezeAfter,
		t:           NewTable(),
		provisions:  map[string]provision{},
		filling:     map[Key]bool{},
		stop:        make(chan struct{}),
		done:        make(chan struct{}),
	}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	go m.reaper()
	return m
}

func keyOf(fn *config.Function) Key {
	return Key{Function: fn.QualifiedARN(), Revision: fn.RevisionID}
}

// Acquire returns an idle environment of fn (warm) or places a new one
// (cold). Errors wrap errdefs classes.
func (m *Manager) Acquire(ctx context.Context, fn *config.Function) (*Lease, error) {
	key := keyOf(fn)
	for {
		m.mu.Lock()
		e, retired := m.t.Acquire(key)
		mayBeFrozen := e != nil && m.acquired(e)
		if e != nil && !e.Ref.(Env).Alive() {
			// Its runtime exited while it was idle (a crash after its
			// last answer): forget it and look again.
			m.t.Remove(e.ID)
			retired = append(retired, e)
			e = nil
			m.mu.Unlock()
			m.destroy(retired)
			continue
		}
		m.mu.Unlock()
		m.destroy(retired)
		if e == nil {
			break
		}
		if mayBeFrozen {
			if err := m.thaw(e); err != nil {
				// Never hand out an environment that may still be
				// frozen: drop it and look again.
				m.cfg.Logger.Warn("thawing an idle environment", "env", e.ID, "err", err)
				m.mu.Lock()
				m.t.Remove(e.ID)
				m.mu.Unlock()
				go e.Ref.(Env).Destroy()
				continue
			}
		}
		return &Lease{Env: e.Ref.(Env), id: e.ID}, nil
	}

	env, err := m.cfg.Placer.Place(ctx, fn)
	if errors.Is(err, errdefs.ErrUnavailable) && m.evictIdle(fn.MemoryMB) {
		env, err = m.cfg.Placer.Place(ctx, fn)
	}
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	m.t.Add(env.ID(), key, fn.MemoryMB, env)
	m.t.Ready(env.ID())
	m.mu.Unlock()
	return &Lease{Env: env, Cold: true, id: env.ID()}, nil
}

// Release gives a lease back. An unhealthy environment, or one of a retired
// revision, is destroyed.
func (m *Manager) Release(l *Lease, healthy bool) {
	m.mu.Lock()
	destroy := m.t.Release(l.id, healthy, m.cfg.Clock.Now())
	m.mu.Unlock()
	if destroy || !healthy {
		go l.Env.Destroy()
	}
}

// RetireARN destroys the idle environments of a deleted function (an
// unqualified ARN: every version) or version (a qualified ARN), and marks
// its busy ones for destruction at release.
func (m *Manager) RetireARN(arn string) {
	m.mu.Lock()
	out := m.t.RetireARN(arn)
	m.mu.Unlock()
	m.destroy(out)
}

// RetireFunction destroys the idle environments of a function version and
// marks its busy ones for destruction at release (deletion of a function).
func (m *Manager) RetireFunction(fn *config.Function) {
	m.mu.Lock()
	out := m.t.RetireFunction(fn.QualifiedARN())
	m.mu.Unlock()
	m.destroy(out)
}

// evictIdle destroys least recently used idle environments until mb of
// memory is free or none are left; it reports whether it freed any.
// EvictIdle destroys the longest-idle environments (never pinned ones)
// until at least mb MB are freed, for work that needs a worker's memory
// outside an invocation (a SnapStart snapshot being made). It reports
// whether it destroyed any.
func (m *Manager) EvictIdle(mb int) bool { return m.evictIdle(mb) }

func (m *Manager) evictIdle(mb int) bool {
	m.mu.Lock()
	var idle []*Entry
	for _, e := range m.t.All() {
		if e.State == StateIdle && !e.Pinned {
			idle = append(idle, e)
		}
	}
	sort.Slice(idle, func(i, j int) bool { return idle[i].IdleSince.Before(idle[j].IdleSince) })
	var out []*Entry
	freed := 0
	for _, e := range idle {
		if freed >= mb {
			break
		}
		m.t.Remove(e.ID)
		freed += e.MemoryMB
		out = append(out, e)
	}
	m.mu.Unlock()
	for _, e := range out {
		e.Ref.(Env).Destroy()
	}
	return len(out) > 0
}

func (m *Manager) destroy(entries []*Entry) {
	for _, e := range entries {
		go e.Ref.(Env).Destroy()
	}
}

// reaper destroys environments idle for longer than the keep-alive and
// freezes those idle for longer than freezeAfter.
func (m *Manager) reaper() {
	defer close(m.done)
	tick := m.keepAlive / 10
	if m.freezeAfter >= 0 {
		tick = min(tick, m.freezeAfter/4)
	}
	if tick < 5*time.Millisecond {
		tick = 5 * time.Millisecond
	}
	if tick > time.Second {
		tick = time.Second
	}
	var freezing sync.WaitGroup
	defer freezing.Wait()
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
			m.mu.Lock()
			now := m.cfg.Clock.Now()
			out := m.t.Expire(now, m.keepAlive)
			m.startFillers() // replaces provisioned environments that died
			jobs := m.dueFreezes(now)
			m.mu.Unlock()
			if len(jobs) > 0 {
				freezing.Add(1)
				go func() {
					defer freezing.Done()
					m.freezeAll(jobs)
				}()
			}
			for _, e := range out {
				m.cfg.Logger.Debug("keep-alive expired", "env", e.ID)
			}
			m.destroy(out)
		}
	}
}

// Stats reports the environments by state.
func (m *Manager) Stats() (initialising, idle, busy, memoryMB int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.t.Counts()
}

// Close stops the reaper and destroys every environment.
func (m *Manager) Close() {
	m.cancel()
	close(m.stop)
	<-m.done
	m.mu.Lock()
	all := m.t.All()
	for _, e := range all {
		m.t.Remove(e.ID)
	}
	m.mu.Unlock()
	var wg sync.WaitGroup
	for _, e := range all {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.Ref.(Env).Destroy()
		}()
	}
	wg.Wait()
}

// String describes the manager's state, for logs.
func (m *Manager) String() string {
	i, idle, b, mem := m.Stats()
	return fmt.Sprintf("environments: %d initialising, %d idle, %d busy, %d MB", i, idle, b, mem)
}

// Provisioned concurrency.
//
// Provision(owner, fn, n) keeps n environments of fn (a published
// version) initialised ahead of invocations: a filler goroutine per key
// places them one after another (each is a full cold start, init
// included) and adds them to the Table idle and pinned, so the keep-alive
// and eviction leave them alone. They serve invocations like any idle
// environment. One that dies (unhealthy at release, or its runtime gone)
// is replaced at the next reaper tick. n = 0 removes the configuration;
// its environments are unpinned and age out as usual.

// Provision sets the provisioned concurrency of owner (the qualified ARN
// of the configuration) to n environments of fn. It returns at once.
func (m *Manager) Provision(owner string, fn *config.Function, n int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	old, had := m.provisions[owner]
	if n <= 0 {
		delete(m.provisions, owner)
	} else {
		m.provisions[owner] = provision{fn: fn, n: n}
	}
	if had {
		key := keyOf(old.fn)
		m.t.Unpin(key, m.targetLocked(key), m.cfg.Clock.Now())
	}
	m.startFillers()
}

// Provisioned reports how many environments are ready for owner's
// configuration (at most its count; environments of a key shared by
// several owners count for each, in order).
func (m *Manager) Provisioned(owner string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.provisions[owner]
	if !ok {
		return 0
	}
	return min(p.n, m.t.Pinned(keyOf(p.fn)))
}

// targetLocked is the number of environments key must keep. Called with
// mu held.
func (m *Manager) targetLocked(key Key) int {
	n := 0
	for _, p := range m.provisions {
		if keyOf(p.fn) == key {
			n += p.n
		}
	}
	return n
}

// startFillers starts a filler for every key short of its target. Called
// with mu held.
func (m *Manager) startFillers() {
	for _, p := range m.provisions {
		key := keyOf(p.fn)
		if m.filling[key] || m.t.Pinned(key) >= m.targetLocked(key) {
			continue
		}
		select {
		case <-m.stop:
			return
		default:
		}
		m.filling[key] = true
		go m.fill(key, p.fn)
	}
}

// fill places environments for key until its target is met, retrying
// failures after a pause (one second, scaled).
func (m *Manager) fill(key Key, fn *config.Function) {
	defer func() {
		m.mu.Lock()
		delete(m.filling, key)
		m.mu.Unlock()
	}()
	for {
		m.mu.Lock()
		want := m.targetLocked(key) - m.t.Pinned(key)
		m.mu.Unlock()
		if want <= 0 || m.ctx.Err() != nil {
			return
		}
		env, err := m.cfg.Placer.Place(m.ctx, fn)
		if errors.Is(err, errdefs.ErrUnavailable) && m.evictIdle(fn.MemoryMB) {
			env, err = m.cfg.Placer.Place(m.ctx, fn)
		}
		if err == nil {
			// Initialised ahead: wait for its init before counting it.
			if pw, ok := env.(interface{ Prewarm() error }); ok {
				if err = pw.Prewarm(); err != nil {
					env.Destroy()
				}
			}
		}
		if err != nil {
			m.cfg.Logger.Warn("provisioning an environment", "function", key.Function, "err", err)
			select {
			case <-m.stop:
				return
			case <-time.After(m.cfg.Clock.Scale(10 * time.Second)):
			}
			continue
		}
		m.mu.Lock()
		added := false
		var retired []*Entry
		if m.ctx.Err() == nil && m.targetLocked(key) > m.t.Pinned(key) {
			retired = m.t.AddIdle(env.ID(), key, fn.MemoryMB, env, m.cfg.Clock.Now())
			added = true
		}
		m.mu.Unlock()
		m.destroy(retired)
		if !added {
			env.Destroy()
			return
		}
	}
}
