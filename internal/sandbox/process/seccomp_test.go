package process

import (
	"encoding/binary"
	"fmt"
	"testing"
)

// seccompData mirrors the kernel's struct seccomp_data, the input of a
// seccomp program.
type seccompData struct {
	nr   int32
	arch uint32
	ip   uint64
	args [6]uint64
}

func (d seccompData) bytes() []byte {
	b := make([]byte, 64)
	binary.LittleEndian.PutUint32(b[0:], uint32(d.nr))
	binary.LittleEndian.PutUint32(b[4:], d.arch)
	binary.LittleEndian.PutUint64(b[8:], d.ip)
	for i, a := range d.args {
		binary.LittleEndian.PutUint64(b[16+8*i:], a)
	}
	return b
}

// runBPF interprets the subset of classic BPF that seccomp programs use,
// with the kernel's checks: every jump forward and in range, every load
// aligned and inside seccomp_data, the program ending in a return.
func runBPF(prog []bpfInsn, data []byte) (uint32, error) {
	act, _, err := runBPFSteps(prog, data)
	return act, err
}

// runBPFSteps is runBPF that also counts the instructions executed.
func runBPFSteps(prog []bpfInsn, data []byte) (action uint32, steps int, err error) {
	if len(prog) == 0 || len(prog) > bpfMaxInsn {
		return 0, 0, fmt.Errorf("program length %d", len(prog))
	}
	var acc uint32
	for pc := 0; pc < len(prog); steps++ {
		in := prog[pc]
		next := func(off uint32) error {
			pc += 1 + int(off)
			if pc >= len(prog) {
				return fmt.Errorf("jump past the end at %d", pc)
			}
			return nil
		}
		var err error
		switch in.Code {
		case bpfLdWAbs:
			if in.K%4 != 0 || int(in.K)+4 > len(data) {
				return 0, steps, fmt.Errorf("pc %d: bad load offset %d", pc, in.K)
			}
			acc = binary.LittleEndian.Uint32(data[in.K:])
			err = next(0)
		case bpfAndK:
			acc &= in.K
			err = next(0)
		case bpfJa:
			err = next(in.K)
		case bpfJeqK, bpfJgeK, bpfJsetK:
			var cond bool
			switch in.Code {
			case bpfJeqK:
				cond = acc == in.K
			case bpfJgeK:
				cond = acc >= in.K
			case bpfJsetK:
				cond = acc&in.K != 0
			}
			if cond {
				err = next(uint32(in.Jt))
			} else {
				err = next(uint32(in.Jf))
			}
		case bpfRetK:
			return in.K, steps + 1, nil
		default:
			return 0, steps, fmt.Errorf("pc %d: unsupported opcode %#x", pc, in.Code)
		}
		if err != nil {
			return 0, steps, err
		}
	}
	return 0, steps, fmt.Errorf("fell off the end")
}

const (
	actAllow  = seccompRetAllow
	actEPERM  = seccompRetErrno | errnoEPERM
	actENOSYS = seccompRetErrno | errnoENOSYS
	actKill   = seccompRetKillProcess
)

func TestSeccompProgram(t *testing.T) {
	prog := seccompProgram()
	t.Logf("%d instructions", len(prog))
	x86 := func(nr int32, args ...uint64) seccompData {
		d := seccompData{nr: nr, arch: auditArchX8664}
		copy(d.args[:], args)
		return d
	}
	tests := []struct {
		name string
		in   seccompData
		want uint32
	}{
		{"read", x86(0), actAllow},
		{"write", x86(1), actAllow},
		{"execve", x86(59), actAllow},
		{"wait4", x86(61), actAllow},
		{"futex", x86(202), actAllow},
		{"mount", x86(sysMount), actEPERM},
		{"umount2", x86(sysUmount2), actEPERM},
		{"pivot_root", x86(sysPivotRoot), actEPERM},
		{"unshare", x86(sysUnshare, 0), actEPERM},
		{"setns", x86(sysSetns), actEPERM},
		{"ptrace", x86(sysPtrace), actEPERM},
		{"bpf", x86(sysBPF), actEPERM},
		{"io_uring_setup", x86(sysIOUringSetup), actEPERM},
		{"open_tree_attr", x86(sysOpenTreeAttr), actEPERM},
		{"last denied", x86(int32(deniedSyscalls[len(deniedSyscalls)-1].nr)), actEPERM},
		{"clone3", x86(sysClone3), actENOSYS},
		{"clone thread", x86(sysClone, 0x3d0f00), actAllow}, // Go's and glibc's thread flags
		{"clone fork", x86(sysClone, 0x01200011), actAllow}, // SIGCHLD|CHILD_SETTID|CHILD_CLEARTID
		{"clone vfork", x86(sysClone, 0x4111), actAllow},    // CLONE_VM|CLONE_VFORK|SIGCHLD
		{"clone newuser", x86(sysClone, 0x10000000|0x11), actEPERM},
		{"clone newns", x86(sysClone, 0x00020000), actEPERM},
		{"clone newnet", x86(sysClone, 0x40000000), actEPERM},
		{"clone newcgroup", x86(sysClone, 0x02000000), actEPERM},
		{"clone high bits only", x86(sysClone, 0x1_0000_0000), actAllow},
		{"personality query", x86(sysPersonality, 0xffffffff), actAllow},
		{"personality linux", x86(sysPersonality, 0), actAllow},
		{"personality no aslr", x86(sysPersonality, 0x0040000), actEPERM},
		{"personality linux32", x86(sysPersonality, 0x0008), actEPERM},
		{"mknod fifo", x86(sysMknod, 0, 0o010644, 0), actAllow},
		{"mknod regular", x86(sysMknod, 0, 0o100644, 0), actAllow},
		{"mknod mode 0", x86(sysMknod, 0, 0, 0), actAllow},
		{"mknod socket", x86(sysMknod, 0, 0o140644, 0), actAllow},
		{"mknod chr", x86(sysMknod, 0, 0o020600, 0x103), actEPERM},
		{"mknod blk", x86(sysMknod, 0, 0o060600, 0x800), actEPERM},
		{"mknodat fifo", x86(sysMknodat, 0xffffff9c, 0, 0o010644, 0), actAllow},
		{"mknodat chr", x86(sysMknodat, 0xffffff9c, 0, 0o020600, 0x103), actEPERM},
		{"mknodat blk", x86(sysMknodat, 0xffffff9c, 0, 0o060600, 0), actEPERM},
		{"mknodat mode in the wrong arg", x86(sysMknodat, 0xffffff9c, 0o020600, 0o010644, 0), actAllow},
		{"x32 read", x86(x32SyscallBit), actKill},
		{"x32 mount", x86(x32SyscallBit + sysMount), actKill},
		{"negative nr", x86(-1), actKill},
		{"i386 arch", seccompData{nr: 1, arch: 0x40000003}, actKill},
		{"aarch64 arch", seccompData{nr: 40, arch: 0xc00000b7}, actKill},
		{"highest nr", x86(0x3fffffff), actAllow},
	}
	for _, tt := range tests {
		got, err := runBPF(prog, tt.in.bytes())
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if got != tt.want {
			t.Errorf("%s: action %#x, want %#x", tt.name, got, tt.want)
		}
	}
	// Every denied call, and nothing else below the x32 range but the
	// argument-checked ones, is refused with no arguments.
	denied := map[uint32]bool{}
	for _, s := range deniedSyscalls {
		if denied[s.nr] {
			t.Errorf("%s listed twice", s.name)
		}
		denied[s.nr] = true
	}
	longest := 0
	for nr := uint32(0); nr < 600; nr++ {
		got, steps, err := runBPFSteps(prog, x86(int32(nr)).bytes())
		if err != nil {
			t.Fatal(err)
		}
		longest = max(longest, steps)
		want := uint32(actAllow)
		switch {
		case denied[nr]:
			want = actEPERM
		case nr == sysClone3:
			want = actENOSYS
		}
		if got != want {
			t.Errorf("nr %d: action %#x, want %#x", nr, got, want)
		}
	}
	// The kernel runs the filter for every number to fill its action
	// cache at install time: the search must keep every path short.
	if longest > 20 {
		t.Errorf("longest path %d instructions, want at most 20", longest)
	}
	t.Logf("longest path without argument checks: %d instructions", longest)
}

func TestBPFAssembler(t *testing.T) {
	var a bpfAsm
	a.jump(bpfJeqK, 1, "far", "")
	for range 300 {
		a.ret(0)
	}
	a.label("far")
	a.ret(1)
	if _, err := a.assemble(); err == nil {
		t.Error("a jump over 300 instructions assembled")
	}
	var b bpfAsm
	b.jump(bpfJeqK, 1, "nowhere", "")
	if _, err := b.assemble(); err == nil {
		t.Error("a jump to an undefined label assembled")
	}
}
