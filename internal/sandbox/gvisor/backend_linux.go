package gvisor

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"kindling/internal/errdefs"
	"kindling/internal/sandbox"
)

// Root filesystem stamp, as scripts/build-rootfs.sh writes it. rootFSFormat
// follows the script's FORMAT (and process.RootFSFormat): the tree is
// shared by both backends.
const (
	stampFile    = ".kindling-rootfs"
	rootFSFormat = 2
)

// Backend is the gVisor sandbox backend. Create, Restore and the methods of
// the sandboxes they return are safe for concurrent use; Reap must run
// before the first Create.
type Backend struct {
	cfg     Config
	cg      *cgroups
	runsc   *runsc
	cpus    int
	version string // runsc --version

	// Image format and restore mode (see the package documentation,
	// "Checkpoint and restore"); fields so that BenchmarkRestore can
	// compare the alternatives.
	compression string // runsc checkpoint --compression
	background  bool   // runsc restore --background
	direct      bool   // runsc restore --direct (O_DIRECT reads of the pages file)

	// im is the EROFS layout (no gofer), nil for bind mounts and a gofer
	// (see the package documentation, "File systems").
	im *images
}

var (
	_ sandbox.Backend  = (*Backend)(nil)
	_ sandbox.Restorer = (*Backend)(nil)
)

// New checks that this machine can run gVisor sandboxes and prepares the
// state directory. Missing prerequisites are reported as an error wrapping
// sandbox.ErrUnavailable that names the command to run.
func New(cfg Config) (*Backend, error) {
	cfg.setDefaults()
	unavailable := func(format string, a ...any) error {
		return fmt.Errorf("%w: gvisor: %s", sandbox.ErrUnavailable, fmt.Sprintf(format, a...))
	}
	if cfg.StateDir == "" || cfg.AgentPath == "" {
		return nil, fmt.Errorf("%w: gvisor: Config.StateDir and Config.AgentPath are required", errdefs.ErrInvalid)
	}
	if os.Geteuid() != 0 {
		return nil, unavailable("runsc needs root here (namespaces, cgroups, chroot): run kindling as root, or use --sandbox=process")
	}
	var err error
	if cfg.Runsc, err = filepath.Abs(cfg.Runsc); err != nil {
		return nil, err
	}
	if !isExecutable(cfg.Runsc) {
		return nil, unavailable("runsc not found at %s; build it (once, ~2 min) with: sudo scripts/build-runsc.sh %s", cfg.Runsc, cfg.Runsc)
	}
	if err := checkRootFS(cfg.RootFS); err != nil {
		return nil, unavailable("root filesystem %s: %v; build it with: sudo scripts/build-rootfs.sh %s", cfg.RootFS, err, cfg.RootFS)
	}
	if cfg.AgentPath, err = filepath.Abs(cfg.AgentPath); err != nil {
		return nil, err
	}
	if !isExecutable(cfg.AgentPath) {
		return nil, unavailable("agent %s is not an executable file; build it with: CGO_ENABLED=0 go build -o %s ./cmd/kindling-agent", cfg.AgentPath, cfg.AgentPath)
	}
	cg, err := detectCgroups(cfg.CgroupParent)
	if err != nil {
		return nil, unavailable("%v", err)
	}
	if cfg.StateDir, err = filepath.Abs(cfg.StateDir); err != nil {
		return nil, err
	}
	for _, d := range []string{cfg.StateDir, filepath.Join(cfg.StateDir, runscRootDir), filepath.Join(cfg.StateDir, agentDir)} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	// The agent's directory is bound into every sandbox: world-readable,
	// holding nothing but the agent.
	if err := os.Chmod(filepath.Join(cfg.StateDir, agentDir), 0o755); err != nil {
		return nil, err
	}
	if err := installAgent(cfg.AgentPath, filepath.Join(cfg.StateDir, agentDir, agentName)); err != nil {
		return nil, err
	}
	im, err := newImages(cfg)
	if err != nil {
		return nil, fmt.Errorf("gvisor: EROFS images: %w", err)
	}
	b := &Backend{
		im:    im,
		cfg:   cfg,
		cg:    cg,
		runsc: &runsc{path: cfg.Runsc, root: filepath.Join(cfg.StateDir, runscRootDir), extra: cfg.RunscFlags},
		cpus:  runtime.NumCPU(),

		compression: checkpointCompression,
		background:  restoreBackground,
	}
	if b.version, err = b.runsc.version(context.Background()); err != nil {
		return nil, unavailable("%v; rebuild it with: sudo scripts/build-runsc.sh %s", err, cfg.Runsc)
	}
	return b, nil
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// checkRootFS accepts a root filesystem made by scripts/build-rootfs.sh
// with the current format and every mount point a sandbox needs: runsc
// would create a missing one in the shared tree.
func checkRootFS(rootfs string) error {
	b, err := os.ReadFile(filepath.Join(rootfs, stampFile))
	if err != nil {
		return fmt.Errorf("no %s stamp (not built yet?)", stampFile)
	}
	want := fmt.Sprintf("format=%d", rootFSFormat)
	found := false
	for line := range strings.SplitSeq(string(b), "\n") {
		found = found || strings.TrimSpace(line) == want
	}
	if !found {
		return fmt.Errorf("stamp %s lacks %q (outdated)", stampFile, want)
	}
	for _, mp := range []string{"proc", "dev", "sys", "tmp", "var/task", strings.TrimPrefix(agentMount, "/")} {
		if fi, err := os.Stat(filepath.Join(rootfs, mp)); err != nil || !fi.IsDir() {
			return fmt.Errorf("mount point /%s missing", mp)
		}
	}
	return nil
}

// installAgent copies the agent to dst (via a temporary file and a rename,
// so that a sandbox never sees half of it).
func installAgent(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp := dst + ".tmp"
	out, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, 0o755) // whatever the umask
	}
	if err == nil {
		err = os.Rename(tmp, dst)
	}
	if err != nil {
		os.Remove(tmp) //nolint:errcheck // best effort; the copy error is the one to report
		return fmt.Errorf("install agent: %w", err)
	}
	return nil
}

// Name returns "gvisor".
func (b *Backend) Name() string { return Name }

// Version returns runsc's version line.
func (b *Backend) Version() string { return b.version }

// HostPaths names the host resources a sandbox holds: its cgroup
// directories and its state directory. The conformance suite checks that
// Destroy and Reap remove them.
func (b *Backend) HostPaths(id string) (cgroups []string, stateDir string) {
	return b.cg.dirs(id), filepath.Join(b.cfg.StateDir, id)
}

// Create starts a sandbox with `runsc run --detach` and returns once runsc
// has started the agent; it does not wait for the handshake, which the
// caller reads from Conn. A set-up failure inside shows as the sandbox
// exiting (Done) with its reason in AgentOutput.
func (b *Backend) Create(ctx context.Context, spec sandbox.Spec) (sandbox.Sandbox, error) {
	s, err := b.launch(ctx, spec, "")
	if err != nil {
		return nil, err
	}
	// Only now the function's share of a CPU: the sentry started at full
	// speed (see the package documentation).
	if err := b.cg.setCPU(spec.ID, spec.MemoryMB, b.cpus, s.pid); err != nil {
		return nil, errors.Join(err, s.Destroy())
	}
	return s, nil
}

// Restore starts a sandbox from a checkpoint image made by
// (*Sandbox).Checkpoint: Prepare, then (*Prepared).Restore. spec must
// describe the same layout (memory, mounts) as the checkpointed sandbox's;
// its ID, host name and CodeDir path may differ. The restored agent
// continues where it was, now talking over this sandbox's Conn: it sends
// nothing by itself, so the caller speaks first. The result is a *Sandbox.
//
// Restore returns before the image's memory is loaded: the sandbox keeps
// reading the image's pages file (through a descriptor opened before
// Restore returns) while it runs, until every page is in. The image's files
// must therefore not be modified or truncated while sandboxes restored from
// it run; unlinking them (or the directory) is harmless. Many sandboxes may
// be restored from one image at once.
func (b *Backend) Restore(ctx context.Context, spec sandbox.Spec, imageDir string) (sandbox.Sandbox, error) {
	if imageDir == "" {
		return nil, fmt.Errorf("%w: gvisor: restore needs an image directory", errdefs.ErrInvalid)
	}
	// One runsc command (restore = create + restore) rather than Prepare
	// and Prepared.Restore: a runsc process less.
	pages, loading := pagesFileID(imageDir)
	s, err := b.launch(ctx, spec, imageDir)
	if err != nil {
		return nil, err
	}
	if err := s.limitRestored(pages, loading); err != nil {
		return nil, errors.Join(err, s.Destroy())
	}
	return s, nil
}

// createOnly is launch's imageDir for `runsc create`.
const createOnly = "\x00create"

// Prepared is a sandbox made ready for a restore (`runsc create`: the
// sandbox process with its empty kernel, the gofer, the mounts, the
// channel, the cgroups with the memory limit) that runs nothing yet. Half
// of a restore's time is this part (see the package documentation,
// "Checkpoint and restore"): a worker that expects restores of a function
// can prepare sandboxes for it ahead of time and pay only the other half
// when one is needed. A Prepared is used once: Restore it, or Destroy it.
type Prepared struct {
	s    *Sandbox
	used atomic.Bool
}

// Prepare creates a sandbox of spec to restore an image into later.
// Destroy it if it is not restored.
func (b *Backend) Prepare(ctx context.Context, spec sandbox.Spec) (*Prepared, error) {
	s, err := b.launch(ctx, spec, createOnly)
	if err != nil {
		return nil, err
	}
	return &Prepared{s: s}, nil
}

// ID returns the id of the prepared sandbox.
func (p *Prepared) ID() string { return p.s.id }

// Destroy releases a prepared sandbox that was not restored (as
// (*Sandbox).Destroy; after a Restore, destroy the restored sandbox).
func (p *Prepared) Destroy() error { return p.s.Destroy() }

// Restore restores the image into the prepared sandbox (`runsc restore
// --background` on the created container), then applies the CPU quotas,
// and returns the running sandbox (a *Sandbox) as Backend.Restore does.
// On failure the sandbox is destroyed.
func (p *Prepared) Restore(ctx context.Context, imageDir string) (sandbox.Sandbox, error) {
	if imageDir == "" {
		return nil, fmt.Errorf("%w: gvisor: restore needs an image directory", errdefs.ErrInvalid)
	}
	if p.used.Swap(true) {
		return nil, fmt.Errorf("%w: gvisor: prepared sandbox %s used twice", errdefs.ErrConflict, p.s.id)
	}
	s := p.s
	if err := s.restore(ctx, imageDir); err != nil {
		return nil, errors.Join(err, s.Destroy())
	}
	return s, nil
}

// restore runs `runsc restore` on the created container s, then applies
// the CPU quotas (limitRestored): the restore itself ran at full speed, and
// the systrap stubs exist only now.
func (s *Sandbox) restore(ctx context.Context, imageDir string) error {
	pages, loading := pagesFileID(imageDir)
	args := append(s.b.restoreArgs(imageDir), "--bundle="+s.dir, s.id)
	if _, err := s.b.runsc.run(ctx, args...); err != nil {
		s.waitDrained(10 * time.Millisecond)
		return fmt.Errorf("%w\n%s", err, lastLines(s.out.Bytes(), 20))
	}
	return s.limitRestored(pages, loading)
}

// pagesLoadTimeout bounds how long a restored sandbox runs without its
// sandbox quota while its memory loads in the background (limitRestored).
const pagesLoadTimeout = 2 * time.Second

// fileID identifies a file by device and inode.
type fileID struct{ dev, ino uint64 }

// pagesFileID returns the identity of imageDir's pages file, or ok false
// if it has none (a compressed image: its memory is loaded before runsc
// restore returns).
func pagesFileID(imageDir string) (id fileID, ok bool) {
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(imageDir, "pages.img"), &st); err != nil {
		return fileID{}, false
	}
	return fileID{st.Dev, st.Ino}, true
}

// limitRestored applies the CPU limits to a sandbox that runsc restore
// has just started. The function's quota and the stubs' move come at once:
// the tenant's instructions never run beyond its share. The sandbox quota,
// which bounds the sentry, waits until the sentry has loaded the image's
// memory in the background (--background: it closes the pages file then),
// at most pagesLoadTimeout: that loading is the platform's restore work,
// like the sandbox's start, which also runs at full speed; under a small
// function's sandbox quota it stretched over CFS periods and delayed the
// first response (a 256 MiB image at 512 MB: ~360 ms instead of ~200).
func (s *Sandbox) limitRestored(pages fileID, loading bool) error {
	if !loading || !s.b.background {
		return s.b.cg.setCPU(s.id, s.memoryMB, s.b.cpus, s.pid)
	}
	if err := s.b.cg.setFunctionCPU(s.id, s.memoryMB, s.b.cpus, s.pid); err != nil {
		return err
	}
	go s.limitWhenLoaded(pages)
	return nil
}

// limitWhenLoaded sets the sandbox quota of a restored sandbox once its
// sentry no longer holds the pages file open, or after pagesLoadTimeout,
// unless the sandbox has exited, is destroyed, or was checkpointed
// meanwhile (Checkpoint sets the quotas itself if the sandbox survives).
func (s *Sandbox) limitWhenLoaded(pages fileID) {
	deadline := time.NewTimer(pagesLoadTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
wait:
	for holdsFile(s.pid, pages) {
		select {
		case <-s.done:
			return
		case <-deadline.C:
			break wait
		case <-tick.C:
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.done:
		return
	default:
	}
	if s.destroyed || s.checkpointed {
		return
	}
	if err := s.b.cg.setSandboxCPU(s.id, s.memoryMB, s.b.cpus); err != nil && !errors.Is(err, os.ErrNotExist) {
		fmt.Fprintf(s.out, "kindling: gvisor: sandbox %s: CPU quota: %v\n", s.id, err)
	}
}

// holdsFile reports whether process pid has file f open (and that pid's
// descriptors can be read).
func holdsFile(pid int, f fileID) bool {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, e := range ents {
		var st unix.Stat_t
		if unix.Stat(dir+"/"+e.Name(), &st) == nil && st.Dev == f.dev && st.Ino == f.ino {
			return true
		}
	}
	return false
}

// restoreArgs are the runsc restore command and its flags.
func (b *Backend) restoreArgs(imageDir string) []string {
	args := []string{"restore", "--detach", "--image-path=" + imageDir}
	if b.background {
		args = append(args, "--background")
	}
	if b.direct {
		args = append(args, "--direct")
	}
	return args
}

// launch makes a sandbox's bundle, channel and diagnostics pipe and starts
// it: with `runsc run --detach` when imageDir is "" (the agent runs), with
// `runsc create` when it is createOnly (the sandbox and gofer processes
// run, the container does not: Prepare), else with `runsc restore
// --detach` from imageDir. The CPU quotas are the caller's.
func (b *Backend) launch(ctx context.Context, spec sandbox.Spec, imageDir string) (_ *Sandbox, err error) {
	if err := validateSpec(spec); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	dir := filepath.Join(b.cfg.StateDir, spec.ID)
	if err := os.Mkdir(dir, 0o700); err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("%w: sandbox %s exists", errdefs.ErrConflict, spec.ID)
		}
		return nil, err
	}
	s := &Sandbox{
		b: b, id: spec.ID, memoryMB: spec.MemoryMB, dir: dir,
		done: make(chan struct{}), drained: make(chan struct{}),
		out: &tailWriter{copy: b.cfg.AgentOutput},
	}
	launched := false
	defer func() {
		if err != nil {
			err = errors.Join(err, s.abort(launched))
		}
	}()

	tmp := filepath.Join(dir, "tmp")
	if err := os.Mkdir(tmp, 0o777); err != nil {
		return nil, err
	}
	if err := os.Chmod(tmp, 0o1777); err != nil { // whatever the umask
		return nil, err
	}
	params := specParams{
		RootFS: b.cfg.RootFS, AgentDir: filepath.Join(b.cfg.StateDir, agentDir), TmpDir: tmp,
		CgroupsPath: b.cg.path(spec.ID), UID: b.cfg.UID, GID: b.cfg.GID,
	}
	if b.im != nil {
		params.RootFSImage, params.AgentImage, params.TmpImage = b.im.rootfs, b.im.agent, b.im.tmp
		// A code image that cannot be made leaves /var/task a bind mount:
		// the sandbox then has a gofer, and works as well.
		if img, err := b.im.code(spec.CodeDir); err == nil {
			params.CodeImage = img
		} else {
			fmt.Fprintf(s.out, "kindling: no EROFS image of the code, /var/task served by a gofer: %v\n", err)
		}
	}
	cfg, err := buildSpec(spec, params)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), cfg, 0o600); err != nil {
		return nil, err
	}
	host, agent, err := sandbox.SocketPair()
	if err != nil {
		return nil, err
	}
	s.conn = host
	defer agent.Close() // runsc's sandbox has its own copy
	logR, logW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	go s.drain(logR)
	defer logW.Close()

	pidFile := filepath.Join(dir, "pid")
	var args []string
	switch imageDir {
	case "":
		args = []string{"run", "--detach"}
	case createOnly:
		args = []string{"create"}
	default:
		args = b.restoreArgs(imageDir)
	}
	args = append(args, "--bundle="+dir, "--pid-file="+pidFile, spec.ID)
	cmd := b.runsc.command(ctx, []string{tmpOverlayFlag(dir, spec.EphemeralMB)}, args...)
	// The sandbox inherits runsc's stdio: stdin is the channel, stdout and
	// stderr (runsc's own messages included) the diagnostics pipe. Passed
	// as files, so that Wait does not wait for the sandbox to close them.
	// A restore keeps the stdio given to create.
	cmd.Stdin, cmd.Stdout, cmd.Stderr = agent, logW, logW
	launched = true
	if err := cmd.Run(); err != nil {
		logW.Close()
		s.waitDrained(time.Second)
		return nil, fmt.Errorf("runsc %s %s: %w: %s", args[0], spec.ID, err, lastLines(s.out.Bytes(), 20))
	}
	pid, err := readPid(pidFile)
	if err != nil {
		return nil, err
	}
	if err := s.watch(pid); err != nil {
		return nil, err
	}
	return s, nil
}

func readPid(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("runsc pid file: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("runsc pid file %s: %q", path, b)
	}
	return pid, nil
}

// Close removes the backend's parent cgroups if no sandbox is left in
// them (sandbox.Closer). Call it after every sandbox was destroyed.
func (b *Backend) Close() error { return b.cg.removeParent() }

// Reap removes what earlier runs of the server left: every cgroup under
// CgroupParent (with the processes in it), every container in runsc's root
// and every sandbox directory of StateDir. Run it before the first Create:
// it would destroy this run's sandboxes too.
func (b *Backend) Reap() error {
	ctx := context.Background()
	var errs []error
	// Cgroups first: killing every process in them, and removing the
	// functionCgroup children runsc does not know about, lets runsc delete
	// remove the rest.
	left, err := b.cg.leftovers()
	if err != nil {
		errs = append(errs, err)
	}
	for _, id := range left {
		if err := b.cg.remove(id, time.Now().Add(cleanupTimeout)); err != nil {
			errs = append(errs, err)
		}
	}
	ids, err := b.runsc.list(ctx)
	if err != nil {
		errs = append(errs, err)
	}
	for _, id := range ids {
		if err := b.runsc.delete(ctx, id); err != nil {
			errs = append(errs, err)
		}
	}
	ents, err := os.ReadDir(b.cfg.StateDir)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	for _, e := range ents {
		if e.Name() == agentDir || e.Name() == imagesDir {
			continue
		}
		p := filepath.Join(b.cfg.StateDir, e.Name())
		if err := os.RemoveAll(p); err != nil {
			errs = append(errs, err)
		}
	}
	if err := os.MkdirAll(b.runsc.root, 0o700); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// lastLines returns the last n lines of b, for error texts.
func lastLines(b []byte, n int) string {
	var lines []string
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	return strings.Join(lines[max(len(lines)-n, 0):], "\n")
}
