package agent

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"unsafe"
)

// Raw I/O on the warm path.
//
// Every read(2), write(2) and ioctl(2) that a Go program makes through the
// syscall package goes through the runtime's entersyscall, and the first one
// after the program was idle wakes the runtime's sysmon thread (parked
// while every P is idle, sched.sysmonwait): a futex wake-up of another
// thread, which then polls with nanosleep(20 µs) until the program is idle
// again and parks with another futex. In gVisor each of those is a system
// call into the sentry and a hand-off between host threads. The agent goes
// idle three times per warm invoke (waiting for the Invoke frame, the
// runtime's result, its next /next), so that was ~10 of the agent's ~27
// system calls per invoke (runsc --strace).
//
// The descriptors the agent uses on that path (the worker channel, the
// Runtime API's connections, the runtime's output pipe) are all
// non-blocking and in Go's poller, so their calls never block: they can be
// made with syscall.RawSyscall, which skips entersyscall, through
// syscall.RawConn (whose Read and Write wait in the poller on EAGAIN, and
// honour deadlines and Close as the net package does). sysmon then stays
// parked while the agent relays invocations.
//
// On amd64 the three calls are made by rawsys_linux_amd64.s, which loads
// the system call number with an immediate "mov $sysno, %eax" right before
// SYSCALL: gVisor's systrap platform patches that pattern (after its first
// trap) into a jump to its own entry, so that later calls skip the seccomp
// SIGSYS and its signal frame. The syscall package loads the number from
// memory, which systrap cannot patch. Measured in a sandbox on this
// development VM (tools/syscallcost): getppid 2-2.5 us patched, 5-6.5 us
// not, while systrap's fast path spins; 11.5 against 15-23 us when it does
// not; 0.14 us on the host.

// rawRead is read(2) without entersyscall; fd must be non-blocking.
func rawRead(fd uintptr, b []byte) (int, syscall.Errno) { return rawRW(sysRead, fd, b) }

// rawWrite is write(2) without entersyscall; fd must be non-blocking.
func rawWrite(fd uintptr, b []byte) (int, syscall.Errno) { return rawRW(sysWrite, fd, b) }

// rawRW makes call (sysRead or sysWrite) on fd and b, again on EINTR.
func rawRW(call func(fd, p, n uintptr) (r, errno uintptr), fd uintptr, b []byte) (int, syscall.Errno) {
	var p unsafe.Pointer
	if len(b) > 0 {
		p = unsafe.Pointer(&b[0])
	}
	for {
		n, e := call(fd, uintptr(p), uintptr(len(b)))
		if e == 0 {
			return int(n), 0
		}
		if syscall.Errno(e) != syscall.EINTR {
			return 0, syscall.Errno(e)
		}
	}
}

// rawInq is ioctl(fd, FIONREAD) without entersyscall: the bytes buffered.
func rawInq(fd uintptr) (int, syscall.Errno) {
	var v int32
	_, e := sysIoctl(fd, syscall.TIOCINQ, uintptr(unsafe.Pointer(&v)))
	return int(v), syscall.Errno(e)
}

// rawConn is a stream net.Conn (TCP or Unix) whose Read and Write make raw
// system calls (see above). Everything else is the wrapped connection's.
type rawConn struct {
	net.Conn
	rc syscall.RawConn
}

// newRawConn wraps c when it offers its descriptor, else returns c.
func newRawConn(c net.Conn) net.Conn {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return c
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return c
	}
	return &rawConn{Conn: c, rc: rc}
}

func (c *rawConn) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return c.Conn.Read(b)
	}
	var n int
	var errno syscall.Errno
	err := c.rc.Read(func(fd uintptr) bool {
		n, errno = rawRead(fd, b)
		return errno != syscall.EAGAIN
	})
	switch {
	case err != nil:
		return 0, c.opError("read", err)
	case errno != 0:
		return 0, c.opError("read", os.NewSyscallError("read", errno))
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

func (c *rawConn) Write(b []byte) (int, error) {
	var nn int
	var errno syscall.Errno
	err := c.rc.Write(func(fd uintptr) bool {
		for nn < len(b) {
			n, e := rawWrite(fd, b[nn:])
			if e == syscall.EAGAIN {
				return false // wait in the poller until writable
			}
			if e != 0 {
				errno = e
				return true
			}
			nn += n
		}
		return true
	})
	switch {
	case err != nil:
		return nn, c.opError("write", err)
	case errno != 0:
		return nn, c.opError("write", os.NewSyscallError("write", errno))
	}
	return nn, nil
}

// opError reports err as the net package does: an *net.OpError for op (a
// RawConn's own OpError says "raw-read" or "raw-write").
func (c *rawConn) opError(op string, err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) {
		err = oe.Err
	}
	e := &net.OpError{Op: op, Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
	if e.Source != nil {
		e.Net = e.Source.Network()
	}
	return e
}

// CloseWrite shuts the write side down, as net/http's server does before
// closing a connection, when the wrapped connection can.
func (c *rawConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// rawListener accepts rawConns.
type rawListener struct{ net.Listener }

func (l rawListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return newRawConn(c), nil
}
