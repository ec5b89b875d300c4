package process

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"kindling/internal/errdefs"
	"kindling/internal/sandbox"
)

// Backend is the process sandbox backend. Create and the methods of the
// sandboxes it returns are safe for concurrent use; Reap must run before
// the first Create.
type Backend struct {
	cfg  Config
	cg   *cgroups
	cpus int
	tmp  *tmpImages // nil with Config.MemoryTmp
	// trace asks agents to report their set-up stages (tests only; set
	// before the first Create).
	trace bool

	spawnOnce sync.Once
	spawn     chan spawnRequest // served by spawners
}

// spawnRequest asks a spawner to start cmd.
type spawnRequest struct {
	cmd  *exec.Cmd
	done chan error
}

// spawner starts agents from an OS thread that never exits. The agent's
// parent-death signal (SIGKILL) fires when the *thread* that forked it
// exits, not the process, and the Go runtime retires a thread whenever a
// goroutine locked to it returns: an agent forked from an ordinary
// goroutine could be killed by some unrelated code's LockOSThread. A
// spawner locks its thread and never unlocks it.
func (b *Backend) spawner() {
	runtime.LockOSThread()
	for r := range b.spawn {
		r.done <- r.cmd.Start()
	}
}

// start runs cmd.Start on a spawner.
func (b *Backend) start(cmd *exec.Cmd) error {
	b.spawnOnce.Do(func() {
		n := min(max(b.cpus, 2), 8)
		b.spawn = make(chan spawnRequest)
		for range n {
			go b.spawner()
		}
	})
	done := make(chan error, 1)
	b.spawn <- spawnRequest{cmd: cmd, done: done}
	return <-done
}

var _ sandbox.Backend = (*Backend)(nil)

// New checks that this machine can run process sandboxes and prepares the
// cgroup parents and the state directory. Missing prerequisites are
// reported as an error wrapping sandbox.ErrUnavailable that names the
// command to run.
func New(cfg Config) (*Backend, error) {
	cfg.setDefaults()
	unavailable := func(format string, a ...any) error {
		return fmt.Errorf("%w: process: %s", sandbox.ErrUnavailable, fmt.Sprintf(format, a...))
	}
	if cfg.StateDir == "" || cfg.AgentPath == "" {
		return nil, fmt.Errorf("%w: process: Config.StateDir and Config.AgentPath are required", errdefs.ErrInvalid)
	}
	if os.Geteuid() != 0 {
		return nil, unavailable("needs root for namespaces, cgroups and mounts: run kindling as root (sudo kindling ...) or use --sandbox=gvisor")
	}
	mounts, err := readMountInfo("/proc/self/mountinfo")
	if err != nil {
		return nil, unavailable("%v", err)
	}
	cg, err := detectCgroups(mounts, cfg.CgroupParent)
	if err != nil {
		return nil, unavailable("%v", err)
	}
	if err := checkStamp(cfg.RootFS); err != nil {
		return nil, unavailable("root filesystem %s: %v; build it with: sudo scripts/build-rootfs.sh %s", cfg.RootFS, err, cfg.RootFS)
	}
	if cfg.AgentPath, err = filepath.Abs(cfg.AgentPath); err != nil {
		return nil, err
	}
	if fi, err := os.Stat(cfg.AgentPath); err != nil || !fi.Mode().IsRegular() || fi.Mode()&0o111 == 0 {
		return nil, unavailable("agent %s is not an executable file; build it with: CGO_ENABLED=0 go build -o %s ./cmd/kindling-agent", cfg.AgentPath, cfg.AgentPath)
	}
	if cfg.StateDir, err = filepath.Abs(cfg.StateDir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return nil, err
	}
	if err := cg.setup(); err != nil {
		return nil, unavailable("cgroup parent %q: %v", cfg.CgroupParent, err)
	}
	b := &Backend{cfg: cfg, cg: cg, cpus: runtime.NumCPU()}
	if !cfg.MemoryTmp {
		if _, err := exec.LookPath("mkfs.ext4"); err != nil {
			return nil, unavailable("disk-backed /tmp needs mkfs.ext4: apt-get install e2fsprogs (or set MemoryTmp)")
		}
		if _, err := os.Stat("/dev/loop-control"); err != nil {
			return nil, unavailable("disk-backed /tmp needs loop devices: modprobe loop (or set MemoryTmp)")
		}
		b.tmp = &tmpImages{dir: filepath.Join(cfg.StateDir, templatesDir)}
	}
	return b, nil
}

// checkStamp accepts a root filesystem made by scripts/build-rootfs.sh with
// the current format.
func checkStamp(rootfs string) error {
	f, err := os.Open(filepath.Join(rootfs, StampFile))
	if err != nil {
		return fmt.Errorf("no %s stamp (not built yet?)", StampFile)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	want := fmt.Sprintf("format=%d", RootFSFormat)
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) == want {
			return nil
		}
	}
	return fmt.Errorf("stamp %s lacks %q (outdated)", StampFile, want)
}

func readMountInfo(path string) ([]mountInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseMountInfo(f)
}

// Name returns "process".
func (b *Backend) Name() string { return Name }

// HostPaths names the host resources a sandbox holds: its cgroup
// directories and its state directory. The conformance suite checks that
// Destroy and Reap remove them.
func (b *Backend) HostPaths(id string) (cgroups []string, stateDir string) {
	return b.cg.dirs(id), filepath.Join(b.cfg.StateDir, id)
}

// goAhead is the byte Create writes on the channel once the agent is in its
// cgroups; InitIfRequested consumes it before returning to the agent.
const goAhead = 0x01

// Create starts a sandbox: state directory, cgroups, channel, the agent in
// new namespaces, then its placement in the cgroups. It returns without
// waiting for the agent's set-up: a set-up failure shows as the agent
// exiting (Done) with its reason in AgentOutput, and as EOF on the channel
// where the worker expects the handshake.
func (b *Backend) Create(ctx context.Context, spec sandbox.Spec) (_ sandbox.Sandbox, err error) {
	if err := validateSpec(spec); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	start := time.Now()
	dir := filepath.Join(b.cfg.StateDir, spec.ID)
	if err := os.Mkdir(dir, 0o700); err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("%w: sandbox %s exists", errdefs.ErrConflict, spec.ID)
		}
		return nil, err
	}
	s := &Sandbox{b: b, id: spec.ID, dir: dir, done: make(chan struct{}), out: &tailWriter{copy: b.cfg.AgentOutput}}
	s.stages = append(s.stages, stageMark{"start", start})
	mark := func(name string) { s.stages = append(s.stages, stageMark{name, time.Now()}) }
	cgMade := false
	defer func() {
		if err == nil {
			return
		}
		if s.cmd != nil && s.cmd.Process != nil {
			if kerr := s.cmd.Process.Kill(); kerr != nil && !errors.Is(kerr, os.ErrProcessDone) {
				err = errors.Join(err, kerr)
			}
			<-s.done
		}
		if s.conn != nil {
			s.conn.Close()
		}
		if cgMade {
			dl := time.Now().Add(cleanupTimeout)
			if kerr := b.cg.killAll(spec.ID, dl); kerr != nil {
				err = errors.Join(err, kerr)
			}
			if rerr := b.cg.remove(spec.ID, dl); rerr != nil {
				err = errors.Join(err, rerr)
			}
		}
		if rerr := removeStateDir(dir); rerr != nil {
			err = errors.Join(err, rerr)
		}
	}()

	root := filepath.Join(dir, "root")
	if err := os.Mkdir(root, 0o755); err != nil {
		return nil, err
	}
	params := initParams{
		Version: initVersion, RootFS: b.cfg.RootFS, Root: root, CodeDir: spec.CodeDir,
		TmpMB: spec.EphemeralMB, ShmMB: max(spec.MemoryMB/2, 1), Hostname: spec.Hostname,
		TmpDisk: b.tmp != nil, UID: b.cfg.UID, GID: b.cfg.GID, Trace: b.trace,
	}
	if params.Hostname == "" {
		params.Hostname = "localhost"
	}
	env, err := params.encode()
	if err != nil {
		return nil, err
	}
	mark("statedir")

	if err := b.cg.create(spec.ID, spec.MemoryMB, b.cpus); err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("%w: sandbox %s has cgroups already (Reap not run?)", errdefs.ErrConflict, spec.ID)
		}
		return nil, err
	}
	cgMade = true
	mark("cgroups")

	host, agent, err := sandbox.SocketPair()
	if err != nil {
		return nil, err
	}
	s.conn = host
	mark("socketpair")
	s.cmd = &exec.Cmd{
		Path:       b.cfg.AgentPath,
		Args:       append([]string{b.cfg.AgentPath}, b.cfg.AgentArgs...),
		Env:        []string{"PATH=/usr/local/bin:/usr/bin:/bin", EnvAgentFD + "=3", EnvInit + "=" + env},
		Dir:        "/",
		Stdout:     s.out,
		Stderr:     s.out,
		ExtraFiles: []*os.File{agent}, // fd 3
		WaitDelay:  time.Second,
		SysProcAttr: &syscall.SysProcAttr{
			Cloneflags: syscall.CLONE_NEWPID | syscall.CLONE_NEWNS | syscall.CLONE_NEWNET |
				syscall.CLONE_NEWIPC | syscall.CLONE_NEWUTS,
			// InitIfRequested sets it again after dropping privileges,
			// which clears it.
			Pdeathsig: syscall.SIGKILL,
			Setpgid:   true,
		},
	}
	err = b.start(s.cmd)
	agent.Close() // the child has its copy
	if err != nil {
		s.cmd = nil
		return nil, fmt.Errorf("start agent: %w", err)
	}
	go s.wait()
	mark("start-agent")

	// The agent now sets up its mounts as root, then blocks reading the
	// channel until the go-ahead below: no code of the function runs before
	// every thread of it is in the cgroups.
	if err := b.cg.place(spec.ID, s.cmd.Process.Pid); err != nil {
		return nil, err
	}
	mark("place")
	var oob []byte
	if b.tmp != nil {
		mnt, err := b.tmp.prepare(spec.EphemeralMB, filepath.Join(dir, tmpImageName))
		if err != nil {
			return nil, err
		}
		defer mnt.Close() // after sending: the agent has its own descriptor then
		oob = unix.UnixRights(int(mnt.Fd()))
		mark("tmp-image")
	}
	if _, _, err := host.WriteMsgUnix([]byte{goAhead}, oob, nil); err != nil {
		return nil, fmt.Errorf("agent exited during set-up: %w: %s", err, s.out.Bytes())
	}
	mark("go-ahead")
	return s, nil
}

// Close removes the backend's parent cgroups if no sandbox is left in
// them (sandbox.Closer). Call it after every sandbox was destroyed.
func (b *Backend) Close() error { return b.cg.removeParent() }

// Reap removes what an earlier run of the server left: every cgroup under
// CgroupParent (its processes killed first), every mount under StateDir and
// every entry of StateDir. Run it before the first Create: it would destroy
// this run's sandboxes too.
func (b *Backend) Reap() error {
	var errs []error
	ids, err := b.cg.leftovers()
	if err != nil {
		errs = append(errs, err)
	}
	for _, id := range ids {
		dl := time.Now().Add(cleanupTimeout)
		if err := b.cg.killAll(id, dl); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := b.cg.remove(id, dl); err != nil {
			errs = append(errs, err)
		}
	}
	if err := unmountUnder(b.cfg.StateDir); err != nil {
		return errors.Join(append(errs, err)...)
	}
	// Templates go too (a crash may have left one half made); they are
	// made again on first use.
	if b.tmp != nil {
		b.tmp.mu.Lock()
		defer b.tmp.mu.Unlock()
		b.tmp.made = nil
	}
	ents, err := os.ReadDir(b.cfg.StateDir)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	for _, e := range ents {
		if err := os.RemoveAll(filepath.Join(b.cfg.StateDir, e.Name())); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// unmountUnder detaches every mount at or below dir in the server's mount
// namespace, then checks none is left, so that a recursive removal of dir
// can never descend into a mounted root filesystem or code directory.
func unmountUnder(dir string) error {
	mounts, err := readMountInfo("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	for _, mp := range mountsUnder(mounts, dir) {
		if err := unix.Unmount(mp, unix.MNT_DETACH); err != nil && err != unix.EINVAL && err != unix.ENOENT {
			return fmt.Errorf("unmount %s: %w", mp, err)
		}
	}
	if mounts, err = readMountInfo("/proc/self/mountinfo"); err != nil {
		return err
	}
	if left := mountsUnder(mounts, dir); len(left) > 0 {
		return fmt.Errorf("mounts under %s remain: %v", dir, left)
	}
	return nil
}

// removeStateDir removes a sandbox's state directory. Its mount point is
// removed with rmdir, which refuses a directory that is still a mount point
// (EBUSY), so the shared root filesystem is never walked into; only if that
// happens are the mounts looked up and detached.
func removeStateDir(dir string) error {
	for _, name := range []string{"root", tmpImageName} {
		p := filepath.Join(dir, name)
		err := os.Remove(p)
		if errors.Is(err, syscall.EBUSY) {
			if err = unmountUnder(p); err == nil {
				err = os.Remove(p)
			}
		}
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}
