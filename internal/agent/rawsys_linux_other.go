//go:build linux && !amd64

package agent

import "syscall"

func sysRead(fd, p, n uintptr) (r, errno uintptr) {
	r, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, p, n)
	return r, uintptr(e)
}

func sysWrite(fd, p, n uintptr) (r, errno uintptr) {
	r, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, p, n)
	return r, uintptr(e)
}

func sysIoctl(fd, req, arg uintptr) (r, errno uintptr) {
	r, _, e := syscall.RawSyscall(syscall.SYS_IOCTL, fd, req, arg)
	return r, uintptr(e)
}
