package agent

// Implemented in rawsys_linux_amd64.s: read(2), write(2) and ioctl(2) made
// without entersyscall, with the system call number an immediate (see
// rawio_linux.go). errno is 0 on success.

func sysRead(fd, p, n uintptr) (r, errno uintptr)

func sysWrite(fd, p, n uintptr) (r, errno uintptr)

func sysIoctl(fd, req, arg uintptr) (r, errno uintptr)
