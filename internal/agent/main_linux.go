package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"math"
	"net"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"

	"kindling/internal/sandbox/process"
)

// Environment variables through which the sandbox backend configures the
// agent.
const (
	envAgentFD    = "KINDLING_AGENT_FD"
	envRuntimeAPI = "KINDLING_RUNTIME_API"
)

// Main is the agent program: cmd/kindling-agent's main, and "kindling agent"
// when the server runs its own binary as the agent. It talks to its worker
// over the channel on file descriptor $KINDLING_AGENT_FD (3 by default),
// serves the Lambda Runtime API on $KINDLING_RUNTIME_API (127.0.0.1:9001 by
// default) and starts the function's runtime when the worker says so. It
// never returns.
func Main() {
	// First of all: when the process backend started us, this sets the
	// sandbox up (mounts, root, privileges, seccomp); otherwise it returns
	// at once.
	process.InitIfRequested()
	// Processes of the function run as the same user: keep them out of the
	// agent's /proc entries (environment, memory, the channel's fd). The
	// process backend's set-up does this already; gVisor's does not.
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		fmt.Fprintf(os.Stderr, "kindling-agent: PR_SET_DUMPABLE: %v\n", err)
		os.Exit(1)
	}

	// The agent relays one invocation at a time: a single P avoids the
	// thread hand-offs (futex wake-ups, expensive in VMs) that a second one
	// brings on every relay, which measurably shortens the warm path. It
	// does not affect the runtime's own setting.
	runtime.GOMAXPROCS(1)

	logger := log.New(os.Stderr, "kindling-agent: ", log.LstdFlags|log.Lmicroseconds)
	if err := run(logger); err != nil {
		logger.Print(err)
		os.Exit(1)
	}
	os.Exit(0)
}

func run(logger *log.Logger) error {
	fd := envOr(envAgentFD, "3")
	listen := envOr(envRuntimeAPI, DefaultListen)
	for _, k := range []string{envAgentFD, envRuntimeAPI} {
		if err := os.Unsetenv(k); err != nil {
			return err
		}
	}
	// Nothing the agent inherited may reach the runtime, the channel to
	// the worker least of all.
	if err := closeOnExecAll(); err != nil {
		return err
	}
	if err := becomeSubreaper(); err != nil {
		logger.Printf("not reaping orphans: %v", err)
	}
	conn, err := openChannel(fd)
	if err != nil {
		return err
	}
	// SIGTERM or SIGINT (a sandbox stopped from outside) ends the agent
	// like a closed channel: the runtime is killed first.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	err = Run(ctx, Config{Conn: conn, Listen: listen, Logf: logger.Printf})
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// openChannel returns the worker channel on file descriptor s: a net.Conn
// when it is a socket, else the *os.File.
func openChannel(s string) (io.ReadWriteCloser, error) {
	fd, err := strconv.Atoi(s)
	if err != nil || fd < 0 {
		return nil, fmt.Errorf("%s=%q: not a file descriptor", envAgentFD, s)
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC); err != nil {
		return nil, fmt.Errorf("worker channel fd %d: %w", fd, err)
	}
	// A descriptor epoll accepts is made non-blocking, so that the file
	// joins Go's poller and closing it interrupts a pending read or write.
	// Others (a character device) stay blocking: non-blocking but outside
	// the poller, reads would fail with EAGAIN.
	if pollable(fd) {
		if err := unix.SetNonblock(fd, true); err != nil {
			return nil, fmt.Errorf("worker channel fd %d: %w", fd, err)
		}
	}
	f := os.NewFile(uintptr(fd), "worker channel")
	c, err := net.FileConn(f) // a close-on-exec duplicate
	if err != nil {
		return f, nil // not a socket
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("worker channel fd %d: %w", fd, err)
	}
	return c, nil
}

// pollable reports whether epoll accepts fd.
func pollable(fd int) bool {
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return false
	}
	ok := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN}) == nil
	// A failed close leaks one descriptor of a probe; the answer stands.
	if err := unix.Close(ep); err != nil {
		return ok
	}
	return ok
}

// closeOnExecAll marks every descriptor above stderr close-on-exec. Kernels
// (and gVisor versions) without close_range get a walk of /proc/self/fd.
func closeOnExecAll() error {
	err := unix.CloseRange(3, math.MaxUint32, unix.CLOSE_RANGE_CLOEXEC)
	if err == nil {
		return nil
	}
	if !errors.Is(err, unix.ENOSYS) && !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("close_range: %w", err)
	}
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return fmt.Errorf("listing descriptors: %w", err)
	}
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd < 3 {
			continue
		}
		// EBADF: the descriptor ReadDir itself used, closed since.
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC); err != nil && !errors.Is(err, unix.EBADF) {
			return fmt.Errorf("close-on-exec fd %d: %w", fd, err)
		}
	}
	return nil
}

// becomeSubreaper makes orphans of the runtime the agent's children even
// when it is not PID 1 of its pid namespace, so that its reaper collects
// them.
func becomeSubreaper() error {
	return unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
}
