package gvisor

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"kindling/internal/sandbox"

	"golang.org/x/sys/unix"
)

// cgroups knows where runsc puts a sandbox's cgroups: <parent>/<id> in every
// v1 hierarchy (runsc creates them in all it finds, from the spec's
// cgroupsPath, and removes them on delete). This type reads them, sets the
// CPU quota after start, and cleans up what runsc left.
type cgroups struct {
	parent string
	// mounts are the v1 hierarchies' mount points, one per hierarchy.
	mounts []string
	// memory, cpu and pids are the mount points of those controllers.
	memory, cpu, pids string
	// freezer is the freezer controller's mount point, "" without one
	// (then sandboxes cannot be frozen: Freeze fails, Thaw does nothing).
	freezer string
}

// detectCgroups finds the v1 hierarchies in /proc/self/mountinfo.
func detectCgroups(parent string) (*cgroups, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	c := &cgroups{parent: parent}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// 36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - cgroup cgroup rw,memory
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		pf, qf := strings.Fields(pre), strings.Fields(post)
		if !ok || len(pf) < 5 || len(qf) < 3 || qf[0] != "cgroup" {
			continue
		}
		mp := pf[4]
		c.mounts = append(c.mounts, mp)
		for opt := range strings.SplitSeq(qf[2], ",") {
			switch opt {
			case "memory":
				c.memory = mp
			case "cpu":
				c.cpu = mp
			case "pids":
				c.pids = mp
			case "freezer":
				c.freezer = mp
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if c.memory == "" || c.cpu == "" || c.pids == "" {
		return nil, errors.New("the gvisor backend needs the cgroup v1 memory, cpu and pids hierarchies (found " +
			strings.Join(c.mounts, ", ") + "); a host with only cgroup v2 is not supported yet")
	}
	return c, nil
}

// path is cgroupsPath in the OCI spec of sandbox id.
func (c *cgroups) path(id string) string { return "/" + c.parent + "/" + id }

// dirs are the sandbox's directories in every hierarchy.
func (c *cgroups) dirs(id string) []string {
	d := make([]string, len(c.mounts))
	for i, m := range c.mounts {
		d[i] = filepath.Join(m, c.parent, id)
	}
	return d
}

// removeParent removes <parent> from every hierarchy where it is empty (a
// parent that still holds a sandbox's cgroup stays).
func (c *cgroups) removeParent() error {
	var errs []error
	for _, m := range c.mounts {
		err := os.Remove(filepath.Join(m, c.parent))
		if err != nil && !errors.Is(err, os.ErrNotExist) && !errors.Is(err, unix.EBUSY) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// functionCgroup is the child of a sandbox's cpu cgroup that holds the
// processes running the function's own instructions: the systrap stubs.
const functionCgroup = "function"

// setCPU applies the CPU limits of a started sandbox of memoryMB whose
// sentry is sentryPid: sandboxQuota on its cpu cgroup (every host process
// of the sandbox), cpuQuota on the child functionCgroup, into which it
// moves the systrap stubs (setFunctionCPU).
func (c *cgroups) setCPU(id string, memoryMB, cpus, sentryPid int) error {
	if err := c.setSandboxCPU(id, memoryMB, cpus); err != nil {
		return err
	}
	return c.setFunctionCPU(id, memoryMB, cpus, sentryPid)
}

// setSandboxCPU sets sandboxQuota on sandbox id's cpu cgroup.
func (c *cgroups) setSandboxCPU(id string, memoryMB, cpus int) error {
	dir := filepath.Join(c.cpu, c.parent, id)
	for _, w := range []struct{ file, v string }{
		{"cpu.cfs_period_us", strconv.Itoa(cpuPeriod)},
		{"cpu.cfs_quota_us", strconv.FormatInt(sandboxQuota(memoryMB, cpus), 10)},
	} {
		if err := writeFile(filepath.Join(dir, w.file), w.v); err != nil {
			return err
		}
	}
	return nil
}

// setFunctionCPU sets cpuQuota on the child functionCgroup of sandbox id's
// cpu cgroup (made here) and moves the systrap stubs into it. Every stub
// after the first is cloned from the first one (systrap's source
// subprocess), so once that one is in the child the stubs made later are
// born there; the loop catches stubs cloned while it ran. The sentry and
// the gofer stay in the parent. The parent's quota, if set, must be at
// least cpuQuota (sandboxQuota is).
func (c *cgroups) setFunctionCPU(id string, memoryMB, cpus, sentryPid int) error {
	dir := filepath.Join(c.cpu, c.parent, id)
	fn := filepath.Join(dir, functionCgroup)
	if err := os.Mkdir(fn, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	for _, w := range []struct{ file, v string }{
		{"cpu.cfs_period_us", strconv.Itoa(cpuPeriod)},
		{"cpu.cfs_quota_us", strconv.FormatInt(cpuQuota(memoryMB, cpus), 10)},
	} {
		if err := writeFile(filepath.Join(fn, w.file), w.v); err != nil {
			return err
		}
	}
	for range 10 {
		moved, err := c.moveStubs(dir, fn, sentryPid)
		if err != nil || moved == 0 {
			return err
		}
	}
	return fmt.Errorf("cgroup %s: systrap stubs keep appearing outside %s", dir, functionCgroup)
}

// moveStubs moves every process of the cgroup dir except the sentry and the
// gofer into the cgroup to, and returns how many it moved.
func (c *cgroups) moveStubs(dir, to string, sentryPid int) (int, error) {
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return 0, err
	}
	moved := 0
	for f := range strings.FieldsSeq(string(b)) {
		pid, err := strconv.Atoi(f)
		if err != nil || pid == sentryPid || isGofer(pid) {
			continue
		}
		err = writeFile(filepath.Join(to, "cgroup.procs"), f)
		if errors.Is(err, syscall.ESRCH) {
			continue // exited meanwhile
		}
		if err != nil {
			return moved, err
		}
		moved++
	}
	return moved, nil
}

// isGofer reports whether pid is runsc's gofer (by its argv[0]).
func isGofer(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return err == nil && bytes.HasPrefix(b, []byte("runsc-gofer\x00"))
}

// unlimitCPU removes sandbox id's CPU quotas.
func (c *cgroups) unlimitCPU(id string) error {
	dir := filepath.Join(c.cpu, c.parent, id)
	// The child first: its quota may not exceed its parent's.
	if err := writeFile(filepath.Join(dir, functionCgroup, "cpu.cfs_quota_us"), "-1"); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return writeFile(filepath.Join(dir, "cpu.cfs_quota_us"), "-1")
}

// errNoFreezer is returned by freeze without a freezer hierarchy.
var errNoFreezer = fmt.Errorf("gvisor: no cgroup v1 freezer hierarchy: %w", errors.ErrUnsupported)

// freezeState is the state file of sandbox id's freezer cgroup.
func (c *cgroups) freezeState(id string) string {
	return filepath.Join(c.freezer, c.parent, id, "freezer.state")
}

// freeze freezes every process of sandbox id (runsc puts the sentry, the
// gofer and the stubs in <freezer>/<parent>/<id>; the stubs' move into the
// function cgroup is in the cpu hierarchy only) and waits until the kernel
// reports FROZEN: the v1 freezer stops each task at its next return to
// user space or interruptible sleep, FREEZING meanwhile. If that does not
// happen by deadline, it thaws the cgroup again and fails.
func (c *cgroups) freeze(id string, deadline time.Time) error {
	if c.freezer == "" {
		return errNoFreezer
	}
	state := c.freezeState(id)
	if err := writeFile(state, "FROZEN"); err != nil {
		return err
	}
	for wait := 100 * time.Microsecond; ; wait = min(2*wait, 5*time.Millisecond) {
		b, err := os.ReadFile(state)
		if err != nil {
			return errors.Join(err, c.thaw(id))
		}
		st := string(bytes.TrimSpace(b))
		if st == "FROZEN" {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.Join(fmt.Errorf("freeze %s: freezer.state still %s", id, st), c.thaw(id))
		}
		time.Sleep(wait)
		// Reading the state is what completes a freeze in progress (the
		// kernel checks the tasks then); writing FROZEN again retries a
		// task that could not be frozen yet.
		if err := writeFile(state, "FROZEN"); err != nil {
			return errors.Join(err, c.thaw(id))
		}
	}
}

// thaw lets sandbox id's processes run again; THAWED is immediate (the
// kernel wakes every task before the write returns). A missing cgroup
// (sandbox removed) or freezer hierarchy is not an error: nothing is frozen
// then.
func (c *cgroups) thaw(id string) error {
	if c.freezer == "" {
		return nil
	}
	err := writeFile(c.freezeState(id), "THAWED")
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

// stats reads the memory figures of sandbox id.
func (c *cgroups) stats(id string) (sandbox.Stats, error) {
	dir := filepath.Join(c.memory, c.parent, id)
	var st sandbox.Stats
	b, err := os.ReadFile(filepath.Join(dir, "memory.max_usage_in_bytes"))
	if err != nil {
		return st, err
	}
	if st.MaxMemoryBytes, err = strconv.ParseInt(string(bytes.TrimSpace(b)), 10, 64); err != nil {
		return st, fmt.Errorf("memory.max_usage_in_bytes: %w", err)
	}
	if b, err = os.ReadFile(filepath.Join(dir, "memory.oom_control")); err != nil {
		return st, err
	}
	st.OOMKilled = keyedValue(b, "oom_kill") > 0
	return st, nil
}

// keyedValue returns the value of "key N" in a flat-keyed cgroup file, or 0.
func keyedValue(b []byte, key string) int64 {
	for line := range strings.SplitSeq(string(b), "\n") {
		if k, v, ok := strings.Cut(line, " "); ok && k == key {
			n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64) // a malformed value reads as 0
			return n
		}
	}
	return 0
}

// procs lists the processes in sandbox id's cgroups, each once.
func (c *cgroups) procs(id string) ([]int, error) {
	seen := map[int]bool{}
	var out []int
	for _, d := range c.dirs(id) {
		b, err := os.ReadFile(filepath.Join(d, "cgroup.procs"))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		for f := range strings.FieldsSeq(string(b)) {
			pid, err := strconv.Atoi(f)
			if err == nil && !seen[pid] {
				seen[pid] = true
				out = append(out, pid)
			}
		}
	}
	return out, nil
}

// killAll sends SIGKILL to every process in sandbox id's cgroups, and
// thaws them if they are frozen, until they are empty or deadline passes.
func (c *cgroups) killAll(id string, deadline time.Time) error {
	for {
		pids, err := c.procs(id)
		if err != nil {
			return err
		}
		if len(pids) == 0 {
			return nil
		}
		for _, pid := range pids {
			if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && err != syscall.ESRCH {
				return fmt.Errorf("kill %d: %w", pid, err)
			}
		}
		// A frozen task (a sandbox frozen while idle, maybe by an earlier
		// run of the server) acts on SIGKILL only once thawed; thawing
		// after the signals lets nothing run but the exits.
		if err := c.thaw(id); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cgroups of %s still hold processes %v", id, pids)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// remove kills what is left in sandbox id's cgroups and removes them.
func (c *cgroups) remove(id string, deadline time.Time) error {
	if err := c.killAll(id, deadline); err != nil {
		return err
	}
	var errs []error
	var dirs []string
	for _, d := range c.dirs(id) {
		// Children (functionCgroup) before their parent.
		dirs = append(dirs, filepath.Join(d, functionCgroup), d)
	}
	for _, d := range dirs {
		// An emptied cgroup can stay busy for a moment (EBUSY) while the
		// kernel finishes the exits.
		for {
			err := os.Remove(d)
			if err == nil || errors.Is(err, os.ErrNotExist) {
				break
			}
			if !errors.Is(err, syscall.EBUSY) || time.Now().After(deadline) {
				errs = append(errs, err)
				break
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	return errors.Join(errs...)
}

// leftovers lists the sandbox ids that have a cgroup under the parent in
// any hierarchy.
func (c *cgroups) leftovers() ([]string, error) {
	seen := map[string]bool{}
	var ids []string
	for _, m := range c.mounts {
		ents, err := os.ReadDir(filepath.Join(m, c.parent))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, e := range ents {
			if e.IsDir() && idPattern.MatchString(e.Name()) && !seen[e.Name()] {
				seen[e.Name()] = true
				ids = append(ids, e.Name())
			}
		}
	}
	return ids, nil
}

func writeFile(path, v string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(v)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
