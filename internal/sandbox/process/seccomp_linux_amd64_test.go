package process

import (
	"testing"

	"golang.org/x/sys/unix"
)

// TestSyscallNumbers checks the spelled-out x86_64 numbers against x/sys.
func TestSyscallNumbers(t *testing.T) {
	want := map[string]uint32{
		"mount": unix.SYS_MOUNT, "umount2": unix.SYS_UMOUNT2, "pivot_root": unix.SYS_PIVOT_ROOT,
		"chroot": unix.SYS_CHROOT, "open_tree": unix.SYS_OPEN_TREE, "move_mount": unix.SYS_MOVE_MOUNT,
		"fsopen": unix.SYS_FSOPEN, "fsconfig": unix.SYS_FSCONFIG, "fsmount": unix.SYS_FSMOUNT,
		"fspick": unix.SYS_FSPICK, "mount_setattr": unix.SYS_MOUNT_SETATTR,
		"open_tree_attr": unix.SYS_OPEN_TREE_ATTR, "unshare": unix.SYS_UNSHARE, "setns": unix.SYS_SETNS,
		"swapon": unix.SYS_SWAPON, "swapoff": unix.SYS_SWAPOFF, "reboot": unix.SYS_REBOOT,
		"kexec_load": unix.SYS_KEXEC_LOAD, "kexec_file_load": unix.SYS_KEXEC_FILE_LOAD,
		"create_module": unix.SYS_CREATE_MODULE, "init_module": unix.SYS_INIT_MODULE,
		"finit_module": unix.SYS_FINIT_MODULE, "delete_module": unix.SYS_DELETE_MODULE,
		"get_kernel_syms": unix.SYS_GET_KERNEL_SYMS, "iopl": unix.SYS_IOPL, "ioperm": unix.SYS_IOPERM,
		"uselib": unix.SYS_USELIB, "nfsservctl": unix.SYS_NFSSERVCTL, "bpf": unix.SYS_BPF,
		"perf_event_open": unix.SYS_PERF_EVENT_OPEN, "userfaultfd": unix.SYS_USERFAULTFD,
		"io_uring_setup": unix.SYS_IO_URING_SETUP, "io_uring_enter": unix.SYS_IO_URING_ENTER,
		"io_uring_register": unix.SYS_IO_URING_REGISTER, "fanotify_init": unix.SYS_FANOTIFY_INIT,
		"lookup_dcookie": unix.SYS_LOOKUP_DCOOKIE, "ptrace": unix.SYS_PTRACE,
		"process_vm_readv": unix.SYS_PROCESS_VM_READV, "process_vm_writev": unix.SYS_PROCESS_VM_WRITEV,
		"kcmp": unix.SYS_KCMP, "pidfd_getfd": unix.SYS_PIDFD_GETFD, "keyctl": unix.SYS_KEYCTL,
		"add_key": unix.SYS_ADD_KEY, "request_key": unix.SYS_REQUEST_KEY,
		"open_by_handle_at": unix.SYS_OPEN_BY_HANDLE_AT, "name_to_handle_at": unix.SYS_NAME_TO_HANDLE_AT,
		"acct": unix.SYS_ACCT, "settimeofday": unix.SYS_SETTIMEOFDAY, "clock_settime": unix.SYS_CLOCK_SETTIME,
		"clock_adjtime": unix.SYS_CLOCK_ADJTIME, "adjtimex": unix.SYS_ADJTIMEX, "quotactl": unix.SYS_QUOTACTL,
		"quotactl_fd": unix.SYS_QUOTACTL_FD, "syslog": unix.SYS_SYSLOG, "vhangup": unix.SYS_VHANGUP,
	}
	for _, s := range deniedSyscalls {
		w, ok := want[s.name]
		if !ok {
			t.Errorf("%s: no x/sys constant listed in this test", s.name)
			continue
		}
		if s.nr != w {
			t.Errorf("%s = %d, x/sys says %d", s.name, s.nr, w)
		}
		delete(want, s.name)
	}
	for name := range want {
		t.Errorf("%s expected in deniedSyscalls", name)
	}
	for name, p := range map[string][2]uint32{
		"clone": {sysClone, unix.SYS_CLONE}, "clone3": {sysClone3, unix.SYS_CLONE3},
		"personality": {sysPersonality, unix.SYS_PERSONALITY}, "mknod": {sysMknod, unix.SYS_MKNOD},
		"mknodat": {sysMknodat, unix.SYS_MKNODAT},
	} {
		if p[0] != p[1] {
			t.Errorf("%s = %d, x/sys says %d", name, p[0], p[1])
		}
	}
}
