package process

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// installSeccomp installs seccompProgram on every thread of the process
// (SECCOMP_FILTER_FLAG_TSYNC). The calling thread must have no_new_privs
// set (or CAP_SYS_ADMIN); TSYNC gives it to the other threads too.
func installSeccomp() error {
	prog := seccompProgram()
	filters := make([]unix.SockFilter, len(prog))
	for i, in := range prog {
		filters[i] = unix.SockFilter{Code: in.Code, Jt: in.Jt, Jf: in.Jf, K: in.K}
	}
	fprog := unix.SockFprog{Len: uint16(len(filters)), Filter: &filters[0]}
	// unsafe: seccomp(2) takes a pointer to the struct sock_fprog; fprog
	// and filters stay reachable (and unmoved: Go does not move heap
	// objects) for the duration of the call, which copies the program.
	r, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER,
		unix.SECCOMP_FILTER_FLAG_TSYNC, uintptr(unsafe.Pointer(&fprog)))
	if errno != 0 {
		return errno
	}
	if r != 0 {
		// With TSYNC a positive result is the id of a thread that could
		// not be synchronised.
		return fmt.Errorf("thread %d could not take the filter", r)
	}
	return nil
}
