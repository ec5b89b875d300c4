package process

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// exitSetupFailed is the agent's exit status when the sandbox set-up
// fails (like a shell's "cannot execute").
const exitSetupFailed = 127

// InitIfRequested turns the calling process, just started by Create as
// root in new namespaces, into the sandbox's unprivileged first process:
// mounts, network, host name, root switch, then placement wait, privilege
// drop and seccomp. It must be the first thing the agent's main does.
// Without EnvInit in the environment (another backend, a test) it returns
// at once. It does not return on failure: it writes the reason to stderr
// and exits with status 127.
func InitIfRequested() {
	v, ok := os.LookupEnv(EnvInit)
	if !ok {
		return
	}
	if err := os.Unsetenv(EnvInit); err != nil {
		initFail("unsetenv", err)
	}
	p, err := decodeInitParams(v)
	if err != nil {
		initFail("parameters", err)
	}
	if err := setUp(p); err != nil {
		initFail("set-up", err)
	}
}

func initFail(step string, err error) {
	fmt.Fprintf(os.Stderr, "kindling-agent: process sandbox %s: %v\n", step, err)
	os.Exit(exitSetupFailed)
}

// step wraps an error with what was being done.
func step(err error, format string, a ...any) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, a...), err)
}

func setUp(p initParams) error {
	var tr initTracer
	if p.Trace {
		tr.w = os.Stderr
	}
	tr.mark("init-entry")
	// The server may die before it places us; then the channel reads EOF
	// below. After that, its death kills us through this signal.
	if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGKILL), 0, 0, 0); err != nil {
		return step(err, "pdeathsig")
	}
	if err := mountAll(p, tr); err != nil {
		return err
	}
	if err := loopbackUp(); err != nil {
		return err
	}
	if err := unix.Sethostname([]byte(p.Hostname)); err != nil {
		return step(err, "sethostname %q", p.Hostname)
	}
	tr.mark("net-uts")
	if err := switchRoot(p.Root); err != nil {
		return err
	}
	tr.mark("pivot")
	fds, err := awaitPlacement()
	if err != nil {
		return err
	}
	tr.mark("await-placement")
	if p.TmpDisk {
		if len(fds) != 1 {
			return fmt.Errorf("go-ahead carried %d descriptors, want the /tmp mount", len(fds))
		}
		if err := mountTmpDisk(fds[0]); err != nil {
			return err
		}
		tr.mark("mount-tmp-disk")
	} else if len(fds) != 0 {
		return fmt.Errorf("go-ahead carried %d unexpected descriptors", len(fds))
	}
	return dropPrivileges(p.UID, p.GID, tr)
}

// mountAll builds the sandbox's file system tree under p.Root, in the
// agent's own mount namespace. See the package documentation for the
// resulting table.
func mountAll(p initParams, tr initTracer) error {
	// Nothing done below may propagate back to the server's namespace.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return step(err, "make / private")
	}
	r := p.Root
	in := func(path string) string { return filepath.Join(r, path) }
	if err := bindRO(p.RootFS, r); err != nil {
		return err
	}
	if err := bindRO(p.CodeDir, in("/var/task")); err != nil {
		return err
	}
	tr.mark("mount-root-code")
	if err := mountTmp(p, in("/tmp")); err != nil {
		return err
	}
	tr.mark("mount-tmp")
	if err := mountProc(in("/proc"), in("/sys")); err != nil {
		return err
	}
	tr.mark("mount-proc")
	if err := mountDev(in("/dev"), p.ShmMB); err != nil {
		return err
	}
	tr.mark("mount-dev")
	return nil
}

// bindRO bind-mounts src on dst and remounts it read-only, nosuid, nodev
// (a bind mount takes flags only on remount).
func bindRO(src, dst string) error {
	if err := unix.Mount(src, dst, "", unix.MS_BIND, ""); err != nil {
		return step(err, "bind %s on %s", src, dst)
	}
	flags := unix.MS_BIND | unix.MS_REMOUNT | unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV
	if err := unix.Mount("", dst, "", uintptr(flags), ""); err != nil {
		return step(err, "remount %s read-only", dst)
	}
	return nil
}

func mountTmp(p initParams, dst string) error {
	if p.TmpDisk {
		return nil // mounted after pivot_root, from the go-ahead's loop device
	}
	opts := fmt.Sprintf("size=%dm,mode=1777,nr_inodes=%d", p.TmpMB, max(p.TmpMB*256, 4096))
	return step(unix.Mount("tmpfs", dst, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, opts), "mount /tmp")
}

// Paths of /proc a function has no business reading (masked with
// /dev/null, or an empty read-only directory) or writing (read-only).
var (
	procMaskedFiles = []string{"kcore", "keys", "timer_list", "sysrq-trigger", "latency_stats", "sched_debug"}
	procMaskedDirs  = []string{"acpi", "scsi"}
	procReadOnly    = []string{"sys", "bus", "fs", "irq"}
)

// mountProc mounts a /proc of the new pid namespace with the usual masks.
// empty is an empty read-only directory to bind over masked directories.
func mountProc(dst, empty string) error {
	if err := unix.Mount("proc", dst, "proc", unix.MS_NOSUID|unix.MS_NOEXEC|unix.MS_NODEV, ""); err != nil {
		return step(err, "mount /proc")
	}
	for _, f := range procMaskedFiles {
		err := unix.Mount("/dev/null", filepath.Join(dst, f), "", unix.MS_BIND, "")
		if err != nil && err != unix.ENOENT { // not every kernel has every file
			return step(err, "mask /proc/%s", f)
		}
	}
	for _, d := range procMaskedDirs {
		err := unix.Mount(empty, filepath.Join(dst, d), "", unix.MS_BIND, "")
		if err != nil && err != unix.ENOENT {
			return step(err, "mask /proc/%s", d)
		}
	}
	for _, d := range procReadOnly {
		p := filepath.Join(dst, d)
		err := unix.Mount(p, p, "", unix.MS_BIND|unix.MS_REC, "")
		if err == unix.ENOENT {
			continue
		}
		if err != nil {
			return step(err, "bind /proc/%s", d)
		}
		if err := unix.Mount("", p, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NOEXEC|unix.MS_NODEV, ""); err != nil {
			return step(err, "remount /proc/%s read-only", d)
		}
	}
	return nil
}

// devNodes are bound from the host's /dev into the sandbox's.
var devNodes = []string{"null", "zero", "full", "random", "urandom", "tty"}

// mountDev makes a small read-only /dev: a tmpfs holding bind mounts of the
// harmless character devices, the usual symlinks and a /dev/shm tmpfs.
func mountDev(dst string, shmMB int) error {
	if err := unix.Mount("tmpfs", dst, "tmpfs", unix.MS_NOSUID|unix.MS_NOEXEC|unix.MS_NODEV, "size=64k,nr_inodes=64,mode=755"); err != nil {
		return step(err, "mount /dev")
	}
	for _, n := range devNodes {
		p := filepath.Join(dst, n)
		fd, err := unix.Open(p, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_CLOEXEC, 0o666)
		if err != nil {
			return step(err, "create %s", p)
		}
		if err := unix.Close(fd); err != nil {
			return step(err, "create %s", p)
		}
		// The bind mount is a mount of its own with the host /dev's
		// flags: the node works although this tmpfs is nodev.
		if err := unix.Mount("/dev/"+n, p, "", unix.MS_BIND, ""); err != nil {
			return step(err, "bind /dev/%s", n)
		}
	}
	for name, target := range map[string]string{
		"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1",
		"stderr": "/proc/self/fd/2",
	} {
		if err := unix.Symlink(target, filepath.Join(dst, name)); err != nil {
			return step(err, "symlink /dev/%s", name)
		}
	}
	shm := filepath.Join(dst, "shm")
	if err := unix.Mkdir(shm, 0o1777); err != nil {
		return step(err, "mkdir /dev/shm")
	}
	opts := fmt.Sprintf("size=%dm,mode=1777", shmMB)
	if err := unix.Mount("shm", shm, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, opts); err != nil {
		return step(err, "mount /dev/shm")
	}
	flags := unix.MS_REMOUNT | unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NOEXEC | unix.MS_NODEV
	return step(unix.Mount("tmpfs", dst, "tmpfs", uintptr(flags), "size=64k,nr_inodes=64,mode=755"), "remount /dev read-only")
}

// loopbackUp brings up "lo", the only interface of the new network
// namespace: the agent serves the Runtime API on 127.0.0.1:9001.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return step(err, "socket for lo")
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return step(err, "get lo flags")
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	return step(unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr), "bring lo up")
}

// switchRoot makes root the root directory with pivot_root(".", "."),
// which stacks the old root on the new one, then detaches the old root.
func switchRoot(root string) error {
	if err := unix.Chdir(root); err != nil {
		return step(err, "chdir %s", root)
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		return step(err, "pivot_root %s", root)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return step(err, "detach old root")
	}
	return step(unix.Chdir("/"), "chdir /")
}

// awaitPlacement blocks until Create has put this process in its cgroups
// and says so with goAhead on the channel (fd 3), possibly with
// descriptors attached (SCM_RIGHTS), which it returns. EOF means the server
// is gone.
func awaitPlacement() ([]int, error) {
	var b [1]byte
	oob := make([]byte, unix.CmsgSpace(4*4))
	for {
		n, oobn, _, _, err := unix.Recvmsg(3, b[:], oob, unix.MSG_CMSG_CLOEXEC)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, step(err, "await placement")
		}
		if n == 0 {
			return nil, fmt.Errorf("await placement: channel closed")
		}
		if b[0] != goAhead {
			return nil, fmt.Errorf("await placement: unexpected byte %#x", b[0])
		}
		if oobn == 0 {
			return nil, nil
		}
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil {
			return nil, step(err, "go-ahead control message")
		}
		var fds []int
		for _, m := range msgs {
			f, err := unix.ParseUnixRights(&m)
			if err != nil {
				return nil, step(err, "go-ahead descriptors")
			}
			fds = append(fds, f...)
		}
		return fds, nil
	}
}

// dropPrivileges makes every thread uid/gid with no supplementary groups,
// no capabilities and no way to gain any, then installs the seccomp filter
// on every thread.
func dropPrivileges(uid, gid int, tr initTracer) error {
	// syscall's Setgroups/Setresgid/Setresuid change every thread of the
	// process (the agent is built with CGO_ENABLED=0). With all uids
	// non-zero the kernel clears the permitted, effective and ambient
	// capability sets.
	if err := syscall.Setgroups(nil); err != nil {
		return step(err, "setgroups")
	}
	if err := syscall.Setresgid(gid, gid, gid); err != nil {
		return step(err, "setresgid %d", gid)
	}
	if err := syscall.Setresuid(uid, uid, uid); err != nil {
		return step(err, "setresuid %d", uid)
	}
	// Changing credentials cleared the parent-death signal.
	if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGKILL), 0, 0, 0); err != nil {
		return step(err, "pdeathsig")
	}
	tr.mark("credentials")
	// no_new_privs and the filter are set on this thread; the filter's
	// TSYNC flag copies both to every other thread.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return step(err, "no_new_privs")
	}
	if err := installSeccomp(); err != nil {
		return step(err, "seccomp")
	}
	tr.mark("seccomp")
	return nil
}
