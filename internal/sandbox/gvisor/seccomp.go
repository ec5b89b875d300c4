package gvisor

// The OCI seccomp profile of every sandbox, applied by the sentry to the
// function's system calls (runsc --oci-seccomp). gVisor already serves
// most of these calls safely in user space, so this is defence in depth and
// parity with the process backend: the same calls fail with EPERM on both
// backends, and the conformance suite checks them once for both.
//
// The profile is a deny list in front of "allow", in the order gVisor
// evaluates it (the first matching entry wins):
//
//	clone with no CLONE_NEW* flag -> allow
//	clone, denied calls           -> EPERM   (runsc's only errno)
//	everything else               -> allow
//
// clone3 is denied as a whole (libc falls back to clone), as in the process
// backend's filter. personality is not listed: gVisor refuses every
// personality(2) call with EINVAL, the query included.

type (
	ociSeccomp struct {
		DefaultAction string       `json:"defaultAction"`
		Architectures []string     `json:"architectures,omitempty"`
		Syscalls      []ociSyscall `json:"syscalls"`
	}
	ociSyscall struct {
		Names  []string        `json:"names"`
		Action string          `json:"action"`
		Args   []ociSeccompArg `json:"args,omitempty"`
	}
	ociSeccompArg struct {
		Index    uint   `json:"index"`
		Value    uint64 `json:"value"`
		ValueTwo uint64 `json:"valueTwo,omitempty"`
		Op       string `json:"op"`
	}
)

const (
	actAllow = "SCMP_ACT_ALLOW"
	actErrno = "SCMP_ACT_ERRNO"

	// cloneNewMask is every CLONE_NEW* flag clone(2)'s flags word can carry.
	cloneNewMask = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 |
		0x10000000 | 0x20000000 | 0x40000000
)

// deniedSyscalls fail with EPERM whatever their arguments: the process
// backend's list (internal/sandbox/process/seccomp.go), by name.
var deniedSyscalls = []string{
	// Mounts and the root directory, old and new mount API.
	"mount", "umount2", "pivot_root", "chroot", "open_tree", "move_mount",
	"fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr", "open_tree_attr",
	// Namespaces (clone's CLONE_NEW* flags are checked separately).
	"unshare", "setns", "clone3",
	// The machine: swap, reboot, kernel images and modules, port I/O.
	"swapon", "swapoff", "reboot", "kexec_load", "kexec_file_load",
	"create_module", "init_module", "finit_module", "delete_module",
	"get_kernel_syms", "iopl", "ioperm", "uselib", "nfsservctl",
	// Kernel attack surface a function has no use for.
	"bpf", "perf_event_open", "userfaultfd", "io_uring_setup", "io_uring_enter",
	"io_uring_register", "fanotify_init", "lookup_dcookie",
	// Other processes' memory and files.
	"ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd",
	// Keyrings.
	"keyctl", "add_key", "request_key",
	// File handles bypass path-based confinement.
	"open_by_handle_at", "name_to_handle_at",
	// Accounting, clocks, quotas, the kernel log, terminals.
	"acct", "settimeofday", "clock_settime", "clock_adjtime", "adjtimex",
	"quotactl", "quotactl_fd", "syslog", "vhangup",
}

// seccompProfile returns the profile; a new value each call.
func seccompProfile() *ociSeccomp {
	return &ociSeccomp{
		DefaultAction: actAllow,
		Architectures: []string{"SCMP_ARCH_X86_64"},
		Syscalls: []ociSyscall{
			{Names: []string{"clone"}, Action: actAllow, Args: []ociSeccompArg{
				{Index: 0, Value: cloneNewMask, ValueTwo: 0, Op: "SCMP_CMP_MASKED_EQ"}}},
			{Names: append([]string{"clone"}, deniedSyscalls...), Action: actErrno},
		},
	}
}
