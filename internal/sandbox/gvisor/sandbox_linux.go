package gvisor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"kindling/internal/sandbox"
)

// Bounds of the teardown steps: how long Destroy waits for the sandbox
// process to exit, and for cgroups to empty.
const (
	doneTimeout    = 5 * time.Second
	cleanupTimeout = 2 * time.Second
	// freezeTimeout bounds how long Freeze waits for every process of the
	// sandbox to stop.
	freezeTimeout = time.Second
)

// errDestroyed is returned by Stats and Checkpoint after Destroy.
var errDestroyed = errors.New("gvisor: sandbox destroyed")

// Sandbox is one gVisor sandbox. See package sandbox for its lifecycle;
// all methods are safe for concurrent use.
type Sandbox struct {
	b        *Backend
	id       string
	memoryMB int
	dir      string // StateDir/<id>, the OCI bundle
	conn     *net.UnixConn
	out      *tailWriter

	// pid is the sandbox process (runsc-sandbox, the sentry); pidfd refers
	// to it. Both set by watch before Create returns; pidfd is closed by
	// Destroy after done.
	pid   int
	pidfd *os.File
	// done is closed once the sandbox process has exited.
	done chan struct{}
	// drained is closed once the diagnostics pipe reached EOF.
	drained chan struct{}

	mu         sync.Mutex // guards destroyed, destroyErr, checkpointed; held for all of Destroy and Checkpoint
	destroyed  bool
	destroyErr error
	// checkpointed is set by Checkpoint: a restored sandbox's pending
	// sandbox quota (limitWhenLoaded) is Checkpoint's business then.
	checkpointed bool
}

var (
	_ sandbox.Sandbox      = (*Sandbox)(nil)
	_ sandbox.Checkpointer = (*Sandbox)(nil)
	_ sandbox.Freezer      = (*Sandbox)(nil)
)

// drain copies the agent's stdout and stderr into the tail. It runs in its
// own goroutine from Create until every holder of the pipe's write end
// (runsc, the sandbox) has closed it.
func (s *Sandbox) drain(r *os.File) {
	defer close(s.drained)
	defer r.Close()
	io.Copy(s.out, r) //nolint:errcheck // diagnostics: a read error ends the copy like EOF
}

func (s *Sandbox) waitDrained(d time.Duration) {
	select {
	case <-s.drained:
	case <-time.After(d):
	}
}

// watch opens a pidfd on the sandbox process and closes done when it exits.
// The process is not our child (runsc run forked it and exited), so the
// pidfd's readability, in Go's poller, is how its exit is seen.
func (s *Sandbox) watch(pid int) error {
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if errors.Is(err, unix.ESRCH) {
		close(s.done) // gone already: the agent exited at once
		return nil
	}
	if err != nil {
		return fmt.Errorf("pidfd_open %d: %w", pid, err)
	}
	f := os.NewFile(uintptr(fd), "sandbox-pidfd")
	// The pid came from a file: make sure it is still our sandbox's
	// process and not a recycled pid.
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid)); err != nil || !strings.Contains(string(b), s.b.cg.path(s.id)+"\n") {
		f.Close()
		close(s.done)
		return nil
	}
	s.pid, s.pidfd = pid, f
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	go func() {
		defer close(s.done)
		exited := func(fd uintptr) bool {
			p := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
			n, err := unix.Poll(p, 0)
			return err == nil && n > 0
		}
		if err := rc.Read(exited); err != nil {
			// Not in the poller (should not happen): block a thread instead.
			rc.Control(func(fd uintptr) { //nolint:errcheck // Control fails only on a closed file
				p := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
				for {
					if _, err := unix.Poll(p, -1); err != unix.EINTR {
						return
					}
				}
			})
		}
	}()
	return nil
}

// ID returns the sandbox's id.
func (s *Sandbox) ID() string { return s.id }

// Conn returns the host end of the channel; it is a net.Conn (a Unix
// stream socket), so deadlines work.
func (s *Sandbox) Conn() io.ReadWriteCloser { return s.conn }

// Done is closed once the sandbox process has exited: the agent exited,
// was killed, or the sandbox was checkpointed.
func (s *Sandbox) Done() <-chan struct{} { return s.done }

// AgentOutput returns the last bytes the agent (and runsc) wrote to stdout
// and stderr: where a set-up failure explains itself.
func (s *Sandbox) AgentOutput() []byte { return s.out.Bytes() }

// Stats reads the sandbox's memory figures from its cgroup. They include
// the sentry's own memory and the gofer's if there is one (~10-15 MB).
func (s *Sandbox) Stats() (sandbox.Stats, error) {
	s.mu.Lock()
	destroyed := s.destroyed
	s.mu.Unlock()
	if destroyed {
		return sandbox.Stats{}, errDestroyed
	}
	return s.b.cg.stats(s.id)
}

// Kill sends SIGKILL to the sandbox process, which takes every process of
// the function with it, and to everything else in the sandbox's cgroups
// (the gofer, if any). It does not go through runsc, so it works on a wedged
// sandbox too, and it does not wait: Done says when it is over.
func (s *Sandbox) Kill() error {
	select {
	case <-s.done:
	default:
		rc, err := s.pidfd.SyscallConn()
		if err != nil {
			return err
		}
		var serr error
		if err := rc.Control(func(fd uintptr) { serr = unix.PidfdSendSignal(int(fd), unix.SIGKILL, nil, 0) }); err != nil {
			return err
		}
		if serr != nil && !errors.Is(serr, unix.ESRCH) {
			return fmt.Errorf("kill sandbox %s: %w", s.id, serr)
		}
	}
	pids, err := s.b.cg.procs(s.id)
	if err != nil {
		return err
	}
	for _, pid := range pids {
		if err := unix.Kill(pid, unix.SIGKILL); err != nil && err != unix.ESRCH {
			return fmt.Errorf("kill %d: %w", pid, err)
		}
	}
	// A task frozen by the v1 freezer acts on SIGKILL only once thawed:
	// thaw after the signals, so that nothing runs again but the exits. A
	// no-op unless the sandbox was frozen.
	return s.b.cg.thaw(s.id)
}

// Freeze stops every host process of the sandbox (sentry, gofer if any, stubs)
// with the cgroup v1 freezer and waits, at most freezeTimeout, until all
// are frozen; on timeout it thaws them again and fails. First the sentry
// is asked to return the memory it can to the host (reduceMemory; best
// effort). A frozen sandbox uses no CPU; on Thaw its clocks have jumped,
// as a frozen Lambda environment's do. See sandbox.Freezer and the package
// documentation ("Idle sandboxes").
func (s *Sandbox) Freeze() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.destroyed {
		return errDestroyed
	}
	if s.b.cg.freezer == "" {
		return errNoFreezer
	}
	if st, err := os.ReadFile(s.b.cg.freezeState(s.id)); err == nil && string(st) == "FROZEN\n" {
		return nil // frozen already: the sentry cannot answer
	}
	s.reduceMemory() //nolint:errcheck // best effort: freeze it as it is
	return s.b.cg.freeze(s.id, time.Now().Add(freezeTimeout))
}

// Thaw lets a frozen sandbox run again; it is a no-op on one that is not
// frozen. See sandbox.Freezer.
func (s *Sandbox) Thaw() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.destroyed {
		return errDestroyed
	}
	return s.b.cg.thaw(s.id)
}

// Checkpoint saves the running sandbox to imageDir (`runsc checkpoint`):
// its memory, its processes and its tmpfs. The sandbox exits afterwards
// (Done closes, Conn reads EOF); Destroy it as usual. Call it only while
// the channel is quiet both ways: bytes in flight in the socket are not in
// the image. Backend.Restore starts sandboxes from the image.
func (s *Sandbox) Checkpoint(ctx context.Context, imageDir string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.destroyed {
		return errDestroyed
	}
	if err := os.MkdirAll(imageDir, 0o700); err != nil {
		return err
	}
	// A frozen sentry cannot save itself.
	if err := s.b.cg.thaw(s.id); err != nil {
		return err
	}
	s.checkpointed = true
	// The sentry saves itself inside the sandbox's cgroups: lift the CPU
	// quota meanwhile (a 256 MB function's 14% of a CPU made a 16 MiB
	// checkpoint take 400 ms instead of ~100 ms).
	if err := s.b.cg.unlimitCPU(s.id); err != nil {
		return err
	}
	args := []string{"checkpoint", "--image-path=" + imageDir}
	if s.b.compression != "" {
		args = append(args, "--compression="+s.b.compression)
	}
	_, err := s.b.runsc.run(ctx, append(args, s.id)...)
	select {
	case <-s.done:
	default:
		if err == nil {
			// Saved: the sandbox is exiting (Done closes soon); moving
			// its dying stubs would only fail.
			break
		}
		// Still running (a failed checkpoint that spared it): limit again.
		if cerr := s.b.cg.setCPU(s.id, s.memoryMB, s.b.cpus, s.pid); cerr != nil && !errors.Is(cerr, os.ErrNotExist) {
			err = errors.Join(err, cerr)
		}
	}
	return err
}

// Destroy kills the sandbox, waits (bounded) for it to exit, deletes it
// from runsc, closes the channel and removes its cgroups and state
// directory. It is idempotent: later calls return the first call's result.
func (s *Sandbox) Destroy() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.destroyed {
		return s.destroyErr
	}
	s.destroyed = true
	s.destroyErr = s.teardown()
	if s.destroyErr != nil {
		s.destroyErr = fmt.Errorf("destroy sandbox %s: %w", s.id, s.destroyErr)
	}
	return s.destroyErr
}

// teardown releases everything; Destroy and a failed Create share it.
func (s *Sandbox) teardown() error {
	var errs []error
	if s.pidfd != nil {
		if err := s.Kill(); err != nil {
			errs = append(errs, err)
		}
		select {
		case <-s.done:
		case <-time.After(doneTimeout):
			errs = append(errs, fmt.Errorf("sandbox process still running after %v", doneTimeout))
		}
	}
	exited := false
	select {
	case <-s.done:
		exited = s.pidfd != nil
	default:
	}
	if err := s.b.cg.remove(s.id, time.Now().Add(cleanupTimeout)); err != nil {
		errs = append(errs, err)
	}
	if err := s.b.runsc.forget(context.Background(), s.id, exited); err != nil {
		errs = append(errs, err)
	}
	if s.conn != nil {
		if err := s.conn.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	s.waitDrained(time.Second) // every writer is gone: EOF comes at once
	if s.pidfd != nil {
		if err := s.pidfd.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := os.RemoveAll(s.dir); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// abort undoes a Create that failed; launched says runsc was started, so
// that runsc state and cgroups may exist.
func (s *Sandbox) abort(launched bool) error {
	if !launched {
		var errs []error
		if s.conn != nil {
			errs = append(errs, s.conn.Close())
		}
		errs = append(errs, os.RemoveAll(s.dir))
		return errors.Join(errs...)
	}
	select {
	case <-s.done:
	default:
		if s.pidfd == nil {
			// No watcher was started: done is ours to close.
			close(s.done)
		}
	}
	return s.teardown()
}
