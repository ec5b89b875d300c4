package process

import (
	"cmp"
	"fmt"
	"slices"
)

// This file builds the sandbox's seccomp program as plain data, without the
// kernel, so that it can be read and tested on any machine
// (seccomp_test.go runs it through an interpreter). seccomp_linux.go
// installs it.
//
// The program is a deny list in front of "allow": the sandbox runs
// ordinary Linux programs (any runtime, any language), so an allow list
// would break them one release at a time, while the calls below are the ones
// a function never needs and that widen the kernel's attack surface
// (mounts, namespaces, modules, BPF, io_uring, keyrings, tracing, clocks).
// Most already fail for an unprivileged user; the filter makes sure they do
// not even reach their kernel code.
//
//	     ld   arch                      ; seccomp_data.arch
//	     jeq  AUDIT_ARCH_X86_64 ? next : kill
//	     ld   nr                        ; seccomp_data.nr
//	     jge  0x40000000 ? kill : next  ; the x32 ABI
//	     binary search over the sorted special numbers (jge splits, jeq
//	     leaves), each leaf jumping to its handler, a miss to allow:
//	       denied nr   -> eperm
//	       clone3      -> enosys        ; glibc then falls back to clone
//	       clone       -> clone_check
//	       personality -> personality_check
//	       mknod, mknodat -> mode_check on args[1], args[2]
//	clone_check:       ld args[0]; jset CLONE_NEW* ? eperm : allow
//	personality_check: ld args[0]; 0 or 0xffffffff ? allow : eperm
//	mode_check:        and S_IFMT; S_IFCHR or S_IFBLK ? eperm : allow
//	allow: ret ALLOW   eperm: ret ERRNO(EPERM)   enosys: ret ERRNO(ENOSYS)
//	kill:  ret KILL_PROCESS
//
// The search keeps the program short on every path (about a dozen
// instructions instead of one compare per denied call). That matters at
// install time: the kernel evaluates the filter once per system call
// number to fill its per-filter action cache, which made a linear list
// cost ~140 us of every sandbox start.

// bpfInsn is one classic BPF instruction, laid out as the kernel's struct
// sock_filter.
type bpfInsn struct {
	Code uint16
	Jt   uint8
	Jf   uint8
	K    uint32
}

// Classic BPF opcodes used by the program (linux/filter.h).
const (
	bpfLdWAbs  = 0x00 | 0x00 | 0x20 // BPF_LD | BPF_W | BPF_ABS
	bpfAndK    = 0x04 | 0x50 | 0x00 // BPF_ALU | BPF_AND | BPF_K
	bpfJeqK    = 0x05 | 0x10 | 0x00 // BPF_JMP | BPF_JEQ | BPF_K
	bpfJgeK    = 0x05 | 0x30 | 0x00 // BPF_JMP | BPF_JGE | BPF_K
	bpfJsetK   = 0x05 | 0x40 | 0x00 // BPF_JMP | BPF_JSET | BPF_K
	bpfJa      = 0x05 | 0x00        // BPF_JMP | BPF_JA (offset in K)
	bpfRetK    = 0x06 | 0x00        // BPF_RET | BPF_K
	bpfMaxInsn = 4096               // BPF_MAXINSNS
)

// seccomp return actions (linux/seccomp.h).
const (
	seccompRetKillProcess = 0x80000000
	seccompRetErrno       = 0x00050000
	seccompRetAllow       = 0x7fff0000
)

// Offsets in struct seccomp_data.
const (
	offNr   = 0
	offArch = 4
	offArgs = 16 // args[i] is at 16+8*i; the low 32 bits come first (little endian)
)

const (
	auditArchX8664 = 0xc000003e
	x32SyscallBit  = 0x40000000

	errnoEPERM  = 1
	errnoENOSYS = 38

	// cloneNewMask is every CLONE_NEW* flag the clone(2) flags word can
	// carry: NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET.
	// (CLONE_NEWTIME, 0x80, overlaps the exit-signal byte of clone(2) and is
	// only accepted by clone3, which is refused as a whole.)
	cloneNewMask = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 |
		0x10000000 | 0x20000000 | 0x40000000

	modeTypeMask = 0o170000 // S_IFMT
	modeChr      = 0o020000 // S_IFCHR
	modeBlk      = 0o060000 // S_IFBLK

	personalityLinux = 0x0
	personalityQuery = 0xffffffff
)

// x86_64 system call numbers (arch/x86/entry/syscalls/syscall_64.tbl). They
// are spelled out rather than taken from x/sys/unix so that the program is
// the same whatever GOARCH the code is built for; seccomp_linux_test.go
// checks them against x/sys/unix on amd64.
const (
	sysPtrace          = 101
	sysSyslog          = 103
	sysMknod           = 133
	sysUselib          = 134
	sysPersonality     = 135
	sysVhangup         = 153
	sysPivotRoot       = 155
	sysAdjtimex        = 159
	sysChroot          = 161
	sysAcct            = 163
	sysSettimeofday    = 164
	sysMount           = 165
	sysUmount2         = 166
	sysSwapon          = 167
	sysSwapoff         = 168
	sysReboot          = 169
	sysIopl            = 172
	sysIoperm          = 173
	sysCreateModule    = 174
	sysInitModule      = 175
	sysDeleteModule    = 176
	sysGetKernelSyms   = 177
	sysQuotactl        = 179
	sysNfsservctl      = 180
	sysLookupDcookie   = 212
	sysClockSettime    = 227
	sysKexecLoad       = 246
	sysAddKey          = 248
	sysRequestKey      = 249
	sysKeyctl          = 250
	sysMknodat         = 259
	sysUnshare         = 272
	sysPerfEventOpen   = 298
	sysFanotifyInit    = 300
	sysNameToHandleAt  = 303
	sysOpenByHandleAt  = 304
	sysClockAdjtime    = 305
	sysSetns           = 308
	sysProcessVMReadv  = 310
	sysProcessVMWritev = 311
	sysKcmp            = 312
	sysFinitModule     = 313
	sysKexecFileLoad   = 320
	sysBPF             = 321
	sysUserfaultfd     = 323
	sysIOUringSetup    = 425
	sysIOUringEnter    = 426
	sysIOUringRegister = 427
	sysOpenTree        = 428
	sysMoveMount       = 429
	sysFsopen          = 430
	sysFsconfig        = 431
	sysFsmount         = 432
	sysFspick          = 433
	sysClone3          = 435
	sysPidfdGetfd      = 438
	sysMountSetattr    = 442
	sysQuotactlFd      = 443
	sysOpenTreeAttr    = 467
	sysClone           = 56
)

// deniedSyscalls fail with EPERM whatever their arguments.
var deniedSyscalls = []struct {
	name string
	nr   uint32
}{
	// Mounts and the root directory, old and new mount API.
	{"mount", sysMount}, {"umount2", sysUmount2}, {"pivot_root", sysPivotRoot},
	{"chroot", sysChroot}, {"open_tree", sysOpenTree}, {"move_mount", sysMoveMount},
	{"fsopen", sysFsopen}, {"fsconfig", sysFsconfig}, {"fsmount", sysFsmount},
	{"fspick", sysFspick}, {"mount_setattr", sysMountSetattr},
	{"open_tree_attr", sysOpenTreeAttr},
	// Namespaces (clone's CLONE_NEW* flags are checked below).
	{"unshare", sysUnshare}, {"setns", sysSetns},
	// The machine: swap, reboot, kernel images and modules, port I/O.
	{"swapon", sysSwapon}, {"swapoff", sysSwapoff}, {"reboot", sysReboot},
	{"kexec_load", sysKexecLoad}, {"kexec_file_load", sysKexecFileLoad},
	{"create_module", sysCreateModule}, {"init_module", sysInitModule},
	{"finit_module", sysFinitModule}, {"delete_module", sysDeleteModule},
	{"get_kernel_syms", sysGetKernelSyms}, {"iopl", sysIopl}, {"ioperm", sysIoperm},
	{"uselib", sysUselib}, {"nfsservctl", sysNfsservctl},
	// Large kernel attack surface a function has no use for.
	{"bpf", sysBPF}, {"perf_event_open", sysPerfEventOpen}, {"userfaultfd", sysUserfaultfd},
	{"io_uring_setup", sysIOUringSetup}, {"io_uring_enter", sysIOUringEnter},
	{"io_uring_register", sysIOUringRegister}, {"fanotify_init", sysFanotifyInit},
	{"lookup_dcookie", sysLookupDcookie},
	// Other processes' memory and files.
	{"ptrace", sysPtrace}, {"process_vm_readv", sysProcessVMReadv},
	{"process_vm_writev", sysProcessVMWritev}, {"kcmp", sysKcmp},
	{"pidfd_getfd", sysPidfdGetfd},
	// Keyrings.
	{"keyctl", sysKeyctl}, {"add_key", sysAddKey}, {"request_key", sysRequestKey},
	// File handles bypass path-based confinement.
	{"open_by_handle_at", sysOpenByHandleAt}, {"name_to_handle_at", sysNameToHandleAt},
	// Accounting, clocks, quotas, the kernel log, terminals.
	{"acct", sysAcct}, {"settimeofday", sysSettimeofday}, {"clock_settime", sysClockSettime},
	{"clock_adjtime", sysClockAdjtime}, {"adjtimex", sysAdjtimex}, {"quotactl", sysQuotactl},
	{"quotactl_fd", sysQuotactlFd}, {"syslog", sysSyslog}, {"vhangup", sysVhangup},
}

// seccompProgram returns the sandbox's filter. It panics only if the
// program itself is malformed (a jump out of range), which the tests catch.
func seccompProgram() []bpfInsn {
	var a bpfAsm
	a.ld(offArch)
	a.jump(bpfJeqK, auditArchX8664, "", "kill")
	a.ld(offNr)
	a.jump(bpfJgeK, x32SyscallBit, "kill", "")

	routes := []route{
		{sysClone3, "enosys"}, {sysClone, "clone"}, {sysPersonality, "personality"},
		{sysMknod, "mknod"}, {sysMknodat, "mknodat"},
	}
	for _, s := range deniedSyscalls {
		routes = append(routes, route{s.nr, "eperm"})
	}
	slices.SortFunc(routes, func(x, y route) int { return cmp.Compare(x.nr, y.nr) })
	a.search(routes, "allow")

	a.label("clone")
	a.ld(offArgs + 8*0) // flags
	a.jump(bpfJsetK, cloneNewMask, "eperm", "allow")

	a.label("personality")
	a.ld(offArgs + 8*0) // persona (an unsigned int)
	a.jump(bpfJeqK, personalityLinux, "allow", "")
	a.jump(bpfJeqK, personalityQuery, "allow", "eperm")

	a.label("mknodat")
	a.ld(offArgs + 8*2) // mode of mknodat(dirfd, path, mode, dev)
	a.ja("mode")
	a.label("mknod")
	a.ld(offArgs + 8*1) // mode of mknod(path, mode, dev)
	a.label("mode")
	a.and(modeTypeMask)
	a.jump(bpfJeqK, modeChr, "eperm", "")
	a.jump(bpfJeqK, modeBlk, "eperm", "allow")

	a.label("allow")
	a.ret(seccompRetAllow)
	a.label("eperm")
	a.ret(seccompRetErrno | errnoEPERM)
	a.label("enosys")
	a.ret(seccompRetErrno | errnoENOSYS)
	a.label("kill")
	a.ret(seccompRetKillProcess)

	prog, err := a.assemble()
	if err != nil {
		panic(err)
	}
	return prog
}

// route sends system call nr to label to.
type route struct {
	nr uint32
	to string
}

// searchLeaf is the most routes a leaf of the search compares one by one.
const searchLeaf = 3

// search emits a binary search of the accumulator over routes (sorted by
// nr, no duplicates): the matching route's label, or miss.
func (a *bpfAsm) search(routes []route, miss string) {
	if len(routes) <= searchLeaf {
		for i, r := range routes {
			next := ""
			if i == len(routes)-1 {
				next = miss
			}
			a.jump(bpfJeqK, r.nr, r.to, next)
		}
		return
	}
	mid := len(routes) / 2
	right := a.newLabel()
	a.jump(bpfJgeK, routes[mid].nr, right, "")
	a.search(routes[:mid], miss)
	a.label(right)
	a.search(routes[mid:], miss)
}

// bpfAsm assembles straight-line classic BPF with forward jumps to named
// labels ("" means the next instruction).
type bpfAsm struct {
	insns        []bpfInsn
	jt, jf, jaTo []string // targets of each instruction, by label
	labels       map[string]int
	nlabels      int // for newLabel
}

// newLabel returns a label name not used yet.
func (a *bpfAsm) newLabel() string {
	a.nlabels++
	return fmt.Sprintf(".L%d", a.nlabels)
}

func (a *bpfAsm) emit(in bpfInsn, jt, jf string) {
	a.insns = append(a.insns, in)
	a.jt = append(a.jt, jt)
	a.jf = append(a.jf, jf)
	a.jaTo = append(a.jaTo, "")
}

// ja jumps unconditionally.
func (a *bpfAsm) ja(label string) {
	a.emit(bpfInsn{Code: bpfJa}, "", "")
	a.jaTo[len(a.jaTo)-1] = label
}

func (a *bpfAsm) ld(off uint32) { a.emit(bpfInsn{Code: bpfLdWAbs, K: off}, "", "") }
func (a *bpfAsm) and(k uint32)  { a.emit(bpfInsn{Code: bpfAndK, K: k}, "", "") }
func (a *bpfAsm) ret(k uint32)  { a.emit(bpfInsn{Code: bpfRetK, K: k}, "", "") }
func (a *bpfAsm) jump(code uint16, k uint32, jt, jf string) {
	a.emit(bpfInsn{Code: code, K: k}, jt, jf)
}

func (a *bpfAsm) label(name string) {
	if a.labels == nil {
		a.labels = map[string]int{}
	}
	if _, dup := a.labels[name]; dup {
		panic("bpf: duplicate label " + name)
	}
	a.labels[name] = len(a.insns)
}

// assemble resolves the labels into relative offsets.
func (a *bpfAsm) assemble() ([]bpfInsn, error) {
	if len(a.insns) > bpfMaxInsn {
		return nil, fmt.Errorf("bpf: %d instructions, limit %d", len(a.insns), bpfMaxInsn)
	}
	out := make([]bpfInsn, len(a.insns))
	for i, in := range a.insns {
		var err error
		if in.Jt, err = a.offset(i, a.jt[i]); err != nil {
			return nil, err
		}
		if in.Jf, err = a.offset(i, a.jf[i]); err != nil {
			return nil, err
		}
		if a.jaTo[i] != "" {
			k, err := a.offset(i, a.jaTo[i])
			if err != nil {
				return nil, err
			}
			in.K = uint32(k)
		}
		out[i] = in
	}
	return out, nil
}

func (a *bpfAsm) offset(from int, label string) (uint8, error) {
	if label == "" {
		return 0, nil
	}
	to, ok := a.labels[label]
	if !ok {
		return 0, fmt.Errorf("bpf: undefined label %q", label)
	}
	d := to - from - 1
	if d < 0 || d > 255 {
		return 0, fmt.Errorf("bpf: jump from %d to %q (%d) out of range", from, label, to)
	}
	return uint8(d), nil
}
