package process

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// The real seccomp test installs the filter in a child process (a filter
// cannot be removed): the test binary re-executed with envSeccompChild.
const envSeccompChild = "KINDLING_TEST_SECCOMP_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(envSeccompChild) == "1" {
		seccompChild()
		return
	}
	if cfg := os.Getenv(envCrashChild); cfg != "" {
		crashChild(cfg)
		return
	}
	os.Exit(m.Run())
}

// seccompChild installs the filter, then reports "name result" lines for
// calls that would all succeed for root without it.
func seccompChild() {
	runtime.LockOSThread()
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		fmt.Println("no_new_privs", err)
		os.Exit(1)
	}
	if err := installSeccomp(); err != nil {
		fmt.Println("install", err)
		os.Exit(1)
	}
	dir, err := os.MkdirTemp("", "seccomp")
	if err != nil {
		fmt.Println("mkdtemp", err)
		os.Exit(1)
	}
	defer os.RemoveAll(dir)
	raw := func(nr, a, b, c uintptr) error {
		if _, _, e := unix.Syscall(nr, a, b, c); e != 0 {
			return e
		}
		return nil
	}
	calls := []struct {
		name string
		f    func() error
	}{
		{"getpid", func() error { unix.Getpid(); return nil }},
		{"mount", func() error { return unix.Mount("tmpfs", dir, "tmpfs", 0, "") }},
		{"unshare", func() error { return unix.Unshare(unix.CLONE_NEWNS) }},
		{"clone3", func() error { return raw(unix.SYS_CLONE3, 0, 0, 0) }},
		{"clone_newnet", func() error {
			cmd := exec.Command("/bin/true")
			cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET}
			err := cmd.Run()
			var pe *os.PathError
			if errors.As(err, &pe) {
				return pe.Err
			}
			return err
		}},
		{"exec", func() error { return exec.Command("/bin/true").Run() }},
		{"personality_query", func() error { return raw(unix.SYS_PERSONALITY, 0xffffffff, 0, 0) }},
		{"personality_aslr", func() error { return raw(unix.SYS_PERSONALITY, 0x0040000, 0, 0) }},
		{"mknod_chr", func() error { return unix.Mknod(dir+"/c", unix.S_IFCHR|0o600, int(unix.Mkdev(1, 3))) }},
		{"mknod_fifo", func() error { return unix.Mknod(dir+"/f", unix.S_IFIFO|0o600, 0) }},
		{"io_uring_setup", func() error { return raw(unix.SYS_IO_URING_SETUP, 1, 0, 0) }},
		{"chroot", func() error { return unix.Chroot(dir) }},
	}
	for _, c := range calls {
		res := "ok"
		if err := c.f(); err != nil {
			var en syscall.Errno
			if errors.As(err, &en) {
				res = unix.ErrnoName(en)
			} else {
				res = err.Error()
			}
		}
		fmt.Println(c.name, res)
	}
}

func TestSeccompInstalled(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skipf("the filter is for x86_64; this is %s", runtime.GOARCH)
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: without the filter the calls checked must succeed")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envSeccompChild+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	want := map[string]string{
		"getpid": "ok", "exec": "ok", "personality_query": "ok", "mknod_fifo": "ok",
		"mount": "EPERM", "unshare": "EPERM", "clone3": "ENOSYS", "clone_newnet": "EPERM",
		"personality_aslr": "EPERM", "mknod_chr": "EPERM", "io_uring_setup": "EPERM", "chroot": "EPERM",
	}
	got := map[string]string{}
	for line := range strings.SplitSeq(strings.TrimSpace(string(out)), "\n") {
		name, res, _ := strings.Cut(line, " ")
		got[name] = res
	}
	for name, w := range want {
		if got[name] != w {
			t.Errorf("%s: %q, want %q", name, got[name], w)
		}
	}
}
