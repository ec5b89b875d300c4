//go:build linux

package main

import (
	"errors"
	"os"
	"os/exec"
	"syscall"

	"golang.org/x/sys/unix"
)

// deniedCalls are attempts a function must not be able to make. Each is
// harmless if it did succeed (NULL arguments, a scratch path), so that the
// probe can run even against a backend that fails to deny them.
var deniedCalls = map[string]func() error{
	"mount":      tryMount,
	"umount2":    func() error { return unix.Unmount("/proc", unix.MNT_DETACH) },
	"pivot_root": func() error { return unix.PivotRoot("/tmp", "/tmp") },
	"chroot":     func() error { return unix.Chroot("/tmp") },
	"unshare_user": func() error {
		return unix.Unshare(unix.CLONE_NEWUSER)
	},
	"unshare_net": func() error { return unix.Unshare(unix.CLONE_NEWNET) },
	"setns": func() error {
		fd, err := unix.Open("/proc/self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		return unix.Setns(fd, 0)
	},
	"clone_newuser": func() error {
		cmd := exec.Command("/bin/true")
		cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWUSER}
		return unwrapRun(cmd)
	},
	"clone_newpid": func() error {
		cmd := exec.Command("/bin/true")
		cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID}
		return unwrapRun(cmd)
	},
	"clone3":            raw(unix.SYS_CLONE3, 0, 0, 0),
	"io_uring_setup":    raw(unix.SYS_IO_URING_SETUP, 1, 0, 0),
	"bpf":               raw(unix.SYS_BPF, 0, 0, 0),
	"perf_event_open":   raw(unix.SYS_PERF_EVENT_OPEN, 0, 0, 0),
	"userfaultfd":       raw(unix.SYS_USERFAULTFD, 0, 0, 0),
	"keyctl":            raw(unix.SYS_KEYCTL, unix.KEYCTL_GET_KEYRING_ID, 0xfffffffd, 0),
	"open_by_handle_at": raw(unix.SYS_OPEN_BY_HANDLE_AT, 0, 0, 0),
	"process_vm_readv":  raw(unix.SYS_PROCESS_VM_READV, 1, 0, 0),
	"syslog":            raw(unix.SYS_SYSLOG, 10, 0, 0), // SYSLOG_ACTION_SIZE_BUFFER
	"fsopen":            raw(unix.SYS_FSOPEN, 0, 0, 0),
	"open_tree":         raw(unix.SYS_OPEN_TREE, 0, 0, 0),
	"clock_settime":     raw(unix.SYS_CLOCK_SETTIME, 0, 0, 0),
	"personality_aslr":  raw(unix.SYS_PERSONALITY, 0x0040000, 0, 0), // ADDR_NO_RANDOMIZE
	"ptrace":            tryPtrace,
	"mknod_chr": func() error {
		err := unix.Mknod("/tmp/.probe-chr", unix.S_IFCHR|0o600, int(unix.Mkdev(1, 3)))
		os.Remove("/tmp/.probe-chr") // only there if the call was allowed
		return err
	},
	"setuid_root": func() error { return syscall.Setuid(0) },
}

// allowedCalls must keep working under the same filter.
var allowedCalls = map[string]func() error{
	"personality_query": raw(unix.SYS_PERSONALITY, 0xffffffff, 0, 0),
	"mknod_fifo": func() error {
		defer os.Remove("/tmp/.probe-fifo")
		return unix.Mknod("/tmp/.probe-fifo", unix.S_IFIFO|0o600, 0)
	},
	"exec": func() error { return unwrapRun(exec.Command("/bin/true")) },
}

func raw(nr, a, b, c uintptr) func() error {
	return func() error {
		if _, _, e := unix.Syscall(nr, a, b, c); e != 0 {
			return e
		}
		return nil
	}
}

func unwrapRun(cmd *exec.Cmd) error {
	err := cmd.Run()
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// denied reports, for every call in deniedCalls and allowedCalls, "ok" or
// the errno it failed with.
func denied() Reply {
	r := Reply{OK: true, Fields: map[string]string{}}
	for _, tab := range []map[string]func() error{deniedCalls, allowedCalls} {
		for name, f := range tab {
			err := f()
			switch en := (syscall.Errno)(0); {
			case err == nil:
				r.Fields[name] = "ok"
			case errors.As(err, &en):
				r.Fields[name] = unix.ErrnoName(en)
			default:
				r.Fields[name] = err.Error()
			}
		}
	}
	return r
}
