package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"kindling/internal/agentproto"
)

// runtimeProc is the runtime process. exited is closed by the reaper once it
// has been reaped; status is valid after that.
type runtimeProc struct {
	pid    int
	exited chan struct{}
	status unix.WaitStatus
}

// reaper reaps every child of the agent with wait4(-1) on SIGCHLD, so that
// orphans reparented to the agent (PID 1 of a pid namespace) never stay
// zombies, and recognises the processes it was asked to watch.
type reaper struct {
	// mu is held across fork+registration (spawn), each reaping pass and
	// each kill, so that a pid is never reaped unrecognised nor signalled
	// after it was reaped (and possibly reused).
	mu      sync.Mutex
	watched map[int]*runtimeProc

	sigs chan os.Signal
	quit chan struct{}
	done chan struct{}
}

func startReaper() *reaper {
	r := &reaper{
		watched: make(map[int]*runtimeProc),
		sigs:    make(chan os.Signal, 1),
		quit:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	signal.Notify(r.sigs, unix.SIGCHLD)
	go r.run()
	return r
}

func (r *reaper) run() {
	defer close(r.done)
	r.reap() // children that ended before Notify
	for {
		select {
		case <-r.sigs:
			r.reap()
		case <-r.quit:
			signal.Stop(r.sigs)
			return
		}
	}
}

// stop ends the reaper goroutine.
func (r *reaper) stop() {
	close(r.quit)
	<-r.done
}

// reap collects every child that has ended. SIGCHLDs coalesce, so it loops
// until none is left.
func (r *reaper) reap() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil || pid <= 0 { // ECHILD: no children; 0: none ended
			return
		}
		if p := r.watched[pid]; p != nil {
			delete(r.watched, pid)
			p.status = ws
			close(p.exited)
		}
	}
}

// spawn starts a process and watches it.
func (r *reaper) spawn(path string, args []string, attr *syscall.ProcAttr) (*runtimeProc, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	pid, err := syscall.ForkExec(path, args, attr)
	if err != nil {
		return nil, err
	}
	p := &runtimeProc{pid: pid, exited: make(chan struct{})}
	r.watched[pid] = p
	return p, nil
}

// kill sends SIGKILL to p's process group (the runtime leads one) and to p
// itself in case it left the group, unless p was reaped already. ESRCH (gone
// already) is not an error.
func (r *reaper) kill(p *runtimeProc) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	select {
	case <-p.exited:
		return nil
	default:
	}
	var errs []error
	for _, target := range []int{-p.pid, p.pid} {
		if err := unix.Kill(target, unix.SIGKILL); err != nil && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, fmt.Errorf("kill %d: %w", target, err))
		}
	}
	return errors.Join(errs...)
}

// start starts the runtime as m says: exactly m.Env, stdin /dev/null,
// stdout and stderr both to the log pipe, in its own process group, killed
// if the agent dies.
func (a *agent) start(m agentproto.StartMeta) error {
	args := m.Args
	if len(args) == 0 {
		args = []string{m.Path}
	}
	stdin, err := os.Open(os.DevNull)
	if err != nil {
		return fmt.Errorf("agent: runtime stdin: %w", err)
	}
	defer a.closeFile(stdin)
	lp, w, err := newLogPipe(a.sendLog)
	if err != nil {
		return fmt.Errorf("agent: runtime output: %w", err)
	}
	a.procMu.Lock()
	a.logs = lp
	a.initFrom = time.Now()
	a.procMu.Unlock()
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		lp.run()
	}()

	attr := &syscall.ProcAttr{
		Dir:   m.Dir,
		Env:   m.Env,
		Files: []uintptr{stdin.Fd(), w.Fd(), w.Fd()},
		Sys: &syscall.SysProcAttr{
			Setpgid:   true,
			Pdeathsig: syscall.SIGKILL,
		},
	}
	proc, err := a.reaper.spawn(m.Path, args, attr)
	// The runtime has its copy; the agent's must go so that the pipe
	// ends when the runtime (and its children) do.
	a.closeFile(w)
	if err != nil {
		a.logf("starting runtime %q: %v", m.Path, err)
		doc, merr := json.Marshal(struct {
			ErrorMessage string `json:"errorMessage"`
			ErrorType    string `json:"errorType"`
		}{"Error: fork/exec " + m.Path + ": " + err.Error(), "Runtime.InvalidEntrypoint"})
		if merr != nil {
			return merr
		}
		if err := a.send(agentproto.TypeInitError, agentproto.ErrorMeta{ErrorType: "Runtime.InvalidEntrypoint"}, doc); err != nil {
			a.logf("sending init error: %v", err)
		}
		return nil
	}
	a.procMu.Lock()
	a.proc = proc
	a.procMu.Unlock()
	a.wg.Add(1)
	go a.watchExit(proc)
	return nil
}

// watchExit sends Exit once the runtime is reaped, after its output.
func (a *agent) watchExit(p *runtimeProc) {
	defer a.wg.Done()
	select {
	case <-p.exited:
	case <-a.done:
		return
	}
	a.drainLogs()
	m := exitMeta(p.status)
	m.Undelivered = a.api.Undelivered()
	m.Taken = a.api.Taken()
	if err := a.send(agentproto.TypeExit, m, nil); err != nil {
		a.logf("sending exit: %v", err)
	}
}

// exitMeta describes a wait status: the exit code, or -1 and the signal's
// name ("killed", "segmentation fault").
func exitMeta(ws unix.WaitStatus) agentproto.ExitMeta {
	if ws.Signaled() {
		return agentproto.ExitMeta{Code: -1, Signal: ws.Signal().String()}
	}
	return agentproto.ExitMeta{Code: ws.ExitStatus()}
}

func (a *agent) closeFile(f *os.File) {
	if err := f.Close(); err != nil {
		a.logf("closing %s: %v", f.Name(), err)
	}
}
