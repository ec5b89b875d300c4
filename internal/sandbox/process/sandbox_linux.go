package process

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"kindling/internal/sandbox"
)

// Bounds of the teardown steps: how long Destroy waits for the agent to
// be reaped, and for cgroups to empty.
const (
	doneTimeout    = 5 * time.Second
	cleanupTimeout = 2 * time.Second
)

// errDestroyed is returned by Stats after Destroy.
var errDestroyed = errors.New("process: sandbox destroyed")

// Sandbox is one process sandbox. See the package documentation for its
// lifecycle; all methods are safe for concurrent use.
type Sandbox struct {
	b    *Backend
	id   string
	dir  string // StateDir/<id>
	conn *net.UnixConn
	cmd  *exec.Cmd
	out  *tailWriter
	// stages are Create's stage marks, written only by Create.
	stages []stageMark

	// done is closed by wait once cmd.Wait returned; waitErr is written
	// before.
	done    chan struct{}
	waitErr error

	mu         sync.Mutex // guards destroyed, destroyErr, stat; held for all of Destroy
	destroyed  bool
	destroyErr error
	// stat holds the cgroup files Stats reads, opened on first use and
	// re-read with pread: the worker reads them after every invocation,
	// and opening them each time costs several system calls.
	stat *statFiles
}

var _ sandbox.Sandbox = (*Sandbox)(nil)

// wait reaps the agent. It runs in its own goroutine from Create.
func (s *Sandbox) wait() {
	s.waitErr = s.cmd.Wait()
	close(s.done)
}

// ID returns the sandbox's id.
func (s *Sandbox) ID() string { return s.id }

// Conn returns the host end of the channel; it is a net.Conn (a Unix
// stream socket), so deadlines work.
func (s *Sandbox) Conn() io.ReadWriteCloser { return s.conn }

// Done is closed once the agent has exited and been reaped; by then every
// other process of the sandbox is gone too (the kernel kills a pid
// namespace with its first process).
func (s *Sandbox) Done() <-chan struct{} { return s.done }

// ExitErr returns how the agent ended (nil for exit status 0, an
// *exec.ExitError otherwise). Valid after Done is closed.
func (s *Sandbox) ExitErr() error {
	<-s.done
	return s.waitErr
}

// Pid returns the agent's process id in the server's pid namespace.
func (s *Sandbox) Pid() int { return s.cmd.Process.Pid }

// AgentOutput returns the last bytes the agent wrote to its stdout and
// stderr: where a set-up failure explains itself.
func (s *Sandbox) AgentOutput() []byte { return s.out.Bytes() }

// Stats reads the sandbox's memory figures from its cgroup.
func (s *Sandbox) Stats() (sandbox.Stats, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.destroyed {
		return sandbox.Stats{}, errDestroyed
	}
	if s.stat == nil {
		f, err := s.b.cg.openStats(s.id)
		if err != nil {
			return sandbox.Stats{}, err
		}
		s.stat = f
	}
	return s.stat.read()
}

// Kill sends SIGKILL to the agent, the pid namespace's init, which makes
// the kernel kill every other process of the namespace, and to anything
// else in the sandbox's cgroups. It does not wait: Done says when it is
// over.
func (s *Sandbox) Kill() error {
	select {
	case <-s.done:
		return nil
	default:
	}
	// os.Process signals through a pidfd: no risk of hitting a recycled pid.
	if err := s.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("kill agent: %w", err)
	}
	pids, err := s.b.cg.procs(s.id)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return err
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && err != syscall.ESRCH {
			return fmt.Errorf("kill %d: %w", pid, err)
		}
	}
	return nil
}

// Destroy kills the sandbox, waits (bounded) for its processes to be gone,
// closes the channel and removes its cgroups and state directory. It is
// idempotent: later calls return the first call's result.
func (s *Sandbox) Destroy() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.destroyed {
		return s.destroyErr
	}
	s.destroyed = true
	var errs []error
	if s.stat != nil {
		errs = append(errs, s.stat.close())
		s.stat = nil
	}
	if err := s.Kill(); err != nil {
		errs = append(errs, err)
	}
	select {
	case <-s.done:
	case <-time.After(doneTimeout):
		errs = append(errs, fmt.Errorf("agent %d not reaped after %v", s.cmd.Process.Pid, doneTimeout))
	}
	if err := s.conn.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		errs = append(errs, err)
	}
	dl := time.Now().Add(cleanupTimeout)
	if err := s.b.cg.killAll(s.id, dl); err != nil {
		errs = append(errs, err)
	}
	if err := s.b.cg.remove(s.id, dl); err != nil {
		errs = append(errs, err)
	}
	if err := removeStateDir(s.dir); err != nil {
		errs = append(errs, err)
	}
	s.destroyErr = errors.Join(errs...)
	if s.destroyErr != nil {
		s.destroyErr = fmt.Errorf("destroy sandbox %s: %w", s.id, s.destroyErr)
	}
	return s.destroyErr
}
