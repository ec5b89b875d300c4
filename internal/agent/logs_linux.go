package agent

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// maxLogFrame bounds one read of the runtime's output, hence one Log frame.
const maxLogFrame = 64 << 10

// errPipeDone ends reads once the pipe reached EOF or the sink failed.
var errPipeDone = errors.New("agent: runtime output closed")

// logPipe carries the runtime's stdout and stderr (one pipe for both, so
// their interleaving is kept) to Log frames.
//
// Every read of the pipe happens with mu held, together with sending what
// it read, whether the reader goroutine (run) or a drain does it. So while
// drain holds mu, every byte consumed from the pipe has been sent, and
// FIONREAD tells exactly how many bytes the runtime wrote that are not
// sent yet: drain sends that many itself. Bytes written after the drain
// started may be sent later.
type logPipe struct {
	r    *os.File // read end: non-blocking, in Go's poller
	rc   syscall.RawConn
	sink func([]byte) error

	// mu guards buf and done, and serialises reads with their sends.
	mu   sync.Mutex
	buf  []byte
	done bool // EOF seen or the sink failed: no more reads
}

// newLogPipe returns the pipe and the write end to give the runtime as its
// stdout and stderr (blocking, as programs expect).
func newLogPipe(sink func([]byte) error) (*logPipe, *os.File, error) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return nil, nil, err
	}
	// O_NONBLOCK is per open file: only the agent's end changes.
	if err := unix.SetNonblock(p[0], true); err != nil {
		return nil, nil, errors.Join(err, unix.Close(p[0]), unix.Close(p[1]))
	}
	r := os.NewFile(uintptr(p[0]), "runtime output")
	w := os.NewFile(uintptr(p[1]), "runtime output (write end)")
	rc, err := r.SyscallConn()
	if err != nil {
		return nil, nil, errors.Join(err, r.Close(), w.Close())
	}
	return &logPipe{r: r, rc: rc, sink: sink, buf: make([]byte, maxLogFrame)}, w, nil
}

// run reads until EOF, a sink failure or close. One goroutine runs it.
func (lp *logPipe) run() {
	for {
		more := true
		err := lp.rc.Read(func(fd uintptr) bool {
			lp.mu.Lock()
			defer lp.mu.Unlock()
			n, err := lp.readLocked(int(fd), maxLogFrame)
			switch {
			case errors.Is(err, unix.EAGAIN):
				return false // wait in the poller for more output
			case errors.Is(err, unix.EINTR):
			case err != nil || n == 0:
				more = false
			}
			return true
		})
		if err != nil || !more {
			return
		}
	}
}

// readLocked reads at most max bytes and sends them. lp.mu must be held.
// It returns 0, nil at EOF.
func (lp *logPipe) readLocked(fd, max int) (int, error) {
	if lp.done {
		return 0, errPipeDone
	}
	// Raw: the first system call after the agent was idle must not wake
	// the Go runtime's sysmon (rawio_linux.go).
	n, errno := rawRead(uintptr(fd), lp.buf[:max])
	if errno != 0 {
		return 0, errno
	}
	if n == 0 {
		lp.done = true // EOF: the runtime and its children closed it
		return 0, nil
	}
	if err := lp.sink(lp.buf[:n]); err != nil {
		lp.done = true
		return n, err
	}
	return n, nil
}

// drain sends every byte written to the pipe before it was called.
func (lp *logPipe) drain() {
	// An error here means the pipe is closed: nothing is left to drain.
	if err := lp.rc.Control(func(fd uintptr) {
		lp.mu.Lock()
		defer lp.mu.Unlock()
		// TIOCINQ is FIONREAD: bytes buffered in the pipe.
		pending, errno := rawInq(fd)
		if errno != 0 {
			return
		}
		for pending > 0 {
			n, err := lp.readLocked(int(fd), min(pending, maxLogFrame))
			if errors.Is(err, unix.EINTR) {
				continue
			}
			if err != nil || n == 0 {
				return
			}
			pending -= n
		}
	}); err != nil {
		return
	}
}

// close closes the read end; run returns.
func (lp *logPipe) close() error {
	if err := lp.r.Close(); err != nil {
		return fmt.Errorf("closing the runtime output: %w", err)
	}
	return nil
}
