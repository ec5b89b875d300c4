package process

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"kindling/internal/sandbox"

	"golang.org/x/sys/unix"
)

// cgroups places sandboxes in per-sandbox cgroups <parent>/<id>, on the v1
// hierarchies memory, cpu and pids (each mounted on its own or co-mounted),
// or on the unified v2 hierarchy when the v1 ones are absent.
type cgroups struct {
	v2      bool
	unified string // v2: the hierarchy's mount point
	// memory, cpu and pids are the directories of <parent> in each
	// controller's hierarchy; in v2 all three are the same directory.
	memory, cpu, pids string
	// memsw is true when memory.memsw.* exists (v1 with swap accounting).
	memsw bool
}

// detectCgroups finds the hierarchies from mountinfo. It does not create
// anything.
func detectCgroups(mounts []mountInfo, parent string) (*cgroups, error) {
	v1 := map[string]string{}
	var unified string
	for _, m := range mounts {
		switch m.FSType {
		case "cgroup":
			for _, c := range []string{"memory", "cpu", "pids"} {
				if hasOpt(m.SuperOpts, c) && v1[c] == "" {
					v1[c] = m.MountPoint
				}
			}
		case "cgroup2":
			if unified == "" {
				unified = m.MountPoint
			}
		}
	}
	if v1["memory"] != "" && v1["cpu"] != "" && v1["pids"] != "" {
		c := &cgroups{
			memory: filepath.Join(v1["memory"], parent),
			cpu:    filepath.Join(v1["cpu"], parent),
			pids:   filepath.Join(v1["pids"], parent),
		}
		_, err := os.Stat(filepath.Join(v1["memory"], "memory.memsw.limit_in_bytes"))
		c.memsw = err == nil
		return c, nil
	}
	if unified != "" {
		b, err := os.ReadFile(filepath.Join(unified, "cgroup.controllers"))
		if err == nil {
			have := strings.Fields(string(b))
			ok := 0
			for _, c := range have {
				if c == "memory" || c == "cpu" || c == "pids" {
					ok++
				}
			}
			if ok == 3 {
				dir := filepath.Join(unified, parent)
				return &cgroups{v2: true, unified: unified, memory: dir, cpu: dir, pids: dir}, nil
			}
		}
	}
	var missing []string
	for _, c := range []string{"memory", "cpu", "pids"} {
		if v1[c] == "" {
			missing = append(missing, c)
		}
	}
	return nil, fmt.Errorf("cgroup controllers %s are not mounted (v1) and no cgroup2 mount offers memory, cpu and pids; "+
		"mount them, e.g. `mount -t cgroup -o %s cgroup /sys/fs/cgroup/%s`, or boot with a cgroup v2 hierarchy",
		strings.Join(missing, ", "), missing[0], missing[0])
}

// roots are the distinct <parent> directories.
func (c *cgroups) roots() []string {
	if c.v2 {
		return []string{c.memory}
	}
	return []string{c.memory, c.cpu, c.pids}
}

// removeParent removes the <parent> directories where they are empty (one
// that still holds a sandbox's cgroup stays).
func (c *cgroups) removeParent() error {
	var errs []error
	for _, d := range c.roots() {
		err := os.Remove(d)
		if err != nil && !errors.Is(err, os.ErrNotExist) && !errors.Is(err, unix.EBUSY) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// dirs are the distinct per-sandbox directories.
func (c *cgroups) dirs(id string) []string {
	r := c.roots()
	out := make([]string, len(r))
	for i, d := range r {
		out[i] = filepath.Join(d, id)
	}
	return out
}

// setup creates the <parent> directories (and in v2 delegates the
// controllers to them).
func (c *cgroups) setup() error {
	for _, d := range c.roots() {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	if c.v2 {
		// Enable the controllers on every level from the hierarchy root
		// down to <parent> itself, so that <parent>/<id> has them.
		rel, err := filepath.Rel(c.unified, c.memory)
		if err != nil {
			return err
		}
		d := c.unified
		for _, part := range append([]string{""}, strings.Split(rel, "/")...) {
			d = filepath.Join(d, part)
			if err := writeFile(filepath.Join(d, "cgroup.subtree_control"), "+memory +cpu +pids"); err != nil {
				return err
			}
		}
	}
	return nil
}

// create makes the sandbox's cgroups and sets its limits. On error nothing
// is left behind.
func (c *cgroups) create(id string, memoryMB, cpus int) (err error) {
	dirs := c.dirs(id)
	made := 0
	defer func() {
		if err != nil { // nothing was placed yet: they are empty
			for _, d := range dirs[:made] {
				if rerr := syscall.Rmdir(d); rerr != nil {
					err = errors.Join(err, fmt.Errorf("rmdir %s: %w", d, rerr))
				}
			}
		}
	}()
	for _, d := range dirs {
		if err := syscall.Mkdir(d, 0o755); err != nil {
			return fmt.Errorf("cgroup %s: %w", d, err)
		}
		made++
	}
	mem := strconv.FormatInt(int64(memoryMB)<<20, 10)
	quota := cpuQuota(memoryMB, cpus)
	mdir, cdir, pdir := filepath.Join(c.memory, id), filepath.Join(c.cpu, id), filepath.Join(c.pids, id)
	var writes [][2]string
	if c.v2 {
		writes = [][2]string{
			{filepath.Join(mdir, "memory.max"), mem},
			{filepath.Join(mdir, "memory.swap.max"), "0"},
			{filepath.Join(cdir, "cpu.max"), fmt.Sprintf("%d %d", quota, cpuPeriod)},
			{filepath.Join(pdir, "pids.max"), strconv.Itoa(pidsMax)},
		}
	} else {
		writes = [][2]string{
			{filepath.Join(mdir, "memory.limit_in_bytes"), mem},
			{filepath.Join(mdir, "memory.swappiness"), "0"},
			{filepath.Join(cdir, "cpu.cfs_period_us"), strconv.Itoa(cpuPeriod)},
			{filepath.Join(cdir, "cpu.cfs_quota_us"), strconv.FormatInt(quota, 10)},
			{filepath.Join(pdir, "pids.max"), strconv.Itoa(pidsMax)},
		}
		if c.memsw {
			// After memory.limit_in_bytes: memsw may not go below it.
			writes = append(writes, [2]string{filepath.Join(mdir, "memory.memsw.limit_in_bytes"), mem})
		}
	}
	for _, w := range writes {
		if err := writeFile(w[0], w[1]); err != nil {
			return err
		}
	}
	return nil
}

// place moves process pid, all its threads, into the sandbox's cgroups
// (cgroup.procs moves a whole thread group; tasks would move one thread).
func (c *cgroups) place(id string, pid int) error {
	p := strconv.Itoa(pid)
	for _, d := range c.dirs(id) {
		if err := writeFile(filepath.Join(d, "cgroup.procs"), p); err != nil {
			return err
		}
	}
	return nil
}

// stats reads the peak memory and whether the OOM killer struck.
// statFiles are a sandbox's open memory statistics files.
type statFiles struct {
	peak, events *os.File
	eventsName   string
	buf          []byte
}

// openStats opens the files stats are read from.
func (c *cgroups) openStats(id string) (*statFiles, error) {
	dir := filepath.Join(c.memory, id)
	peakFile, eventsFile := "memory.max_usage_in_bytes", "memory.oom_control"
	if c.v2 {
		peakFile, eventsFile = "memory.peak", "memory.events"
	}
	peak, err := os.Open(filepath.Join(dir, peakFile))
	if err != nil {
		return nil, err
	}
	events, err := os.Open(filepath.Join(dir, eventsFile))
	if err != nil {
		peak.Close()
		return nil, err
	}
	return &statFiles{peak: peak, events: events, eventsName: eventsFile, buf: make([]byte, 4096)}, nil
}

// read reads the figures afresh (cgroup files answer each pread from the
// start with current values).
func (f *statFiles) read() (sandbox.Stats, error) {
	var st sandbox.Stats
	n, err := f.peak.ReadAt(f.buf, 0)
	if err != nil && err != io.EOF {
		return st, err
	}
	if st.MaxMemoryBytes, err = strconv.ParseInt(string(bytes.TrimSpace(f.buf[:n])), 10, 64); err != nil {
		return st, fmt.Errorf("%s: %w", f.peak.Name(), err)
	}
	n, err = f.events.ReadAt(f.buf, 0)
	if err != nil && err != io.EOF {
		return st, err
	}
	st.OOMKilled = keyedValue(f.buf[:n], "oom_kill") > 0
	return st, nil
}

func (f *statFiles) close() error {
	return errors.Join(f.peak.Close(), f.events.Close())
}

// keyedValue returns the value of "key N" in a flat keyed cgroup file, 0
// when absent.
func keyedValue(b []byte, key string) int64 {
	for line := range strings.SplitSeq(string(b), "\n") {
		k, v, ok := strings.Cut(line, " ")
		if ok && k == key {
			n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64) // malformed counts as 0
			return n
		}
	}
	return 0
}

// procs lists the processes in the sandbox's pids cgroup.
func (c *cgroups) procs(id string) ([]int, error) {
	return readProcs(filepath.Join(c.pids, id, "cgroup.procs"))
}

func readProcs(file string) ([]int, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var out []int
	for f := range strings.FieldsSeq(string(b)) {
		if pid, err := strconv.Atoi(f); err == nil {
			out = append(out, pid)
		}
	}
	return out, nil
}

// killAll SIGKILLs every process in the sandbox's cgroups until they are
// empty or the deadline passes. Killing the pid namespace's init (always
// among them) takes the rest of the namespace with it.
func (c *cgroups) killAll(id string, deadline time.Time) error {
	if c.v2 {
		if err := writeFile(filepath.Join(c.memory, id, "cgroup.kill"), "1"); err == nil {
			return c.waitEmpty(id, deadline)
		}
	}
	for {
		pids, err := c.procs(id)
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if len(pids) == 0 {
			return nil
		}
		for _, pid := range pids {
			// ESRCH: it exited between the read and the kill.
			if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && err != syscall.ESRCH {
				return fmt.Errorf("kill %d: %w", pid, err)
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cgroup %s still has processes %v", id, pids)
		}
		time.Sleep(time.Millisecond)
	}
}

func (c *cgroups) waitEmpty(id string, deadline time.Time) error {
	for {
		pids, err := c.procs(id)
		if err != nil || len(pids) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cgroup %s still has processes %v", id, pids)
		}
		time.Sleep(time.Millisecond)
	}
}

// remove deletes the sandbox's cgroups, retrying while exiting tasks drain
// (rmdir fails with EBUSY until the last one is gone). Missing directories
// are not an error.
func (c *cgroups) remove(id string, deadline time.Time) error {
	for _, d := range c.dirs(id) {
		for {
			err := syscall.Rmdir(d)
			if err == nil || err == syscall.ENOENT {
				break
			}
			if err != syscall.EBUSY || time.Now().After(deadline) {
				return fmt.Errorf("rmdir %s: %w", d, err)
			}
			time.Sleep(time.Millisecond)
		}
	}
	return nil
}

// leftovers lists the sandbox ids that have a cgroup under <parent> in any
// controller.
func (c *cgroups) leftovers() ([]string, error) {
	seen := map[string]bool{}
	var ids []string
	for _, r := range c.roots() {
		ents, err := os.ReadDir(r)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, e := range ents {
			if e.IsDir() && !seen[e.Name()] {
				seen[e.Name()] = true
				ids = append(ids, e.Name())
			}
		}
	}
	return ids, nil
}

// writeFile writes a cgroup control file (which exists already: no create,
// no truncate).
func writeFile(path, v string) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(v); err != nil {
		f.Close() // the write error is the one to report
		return fmt.Errorf("write %q to %s: %w", v, path, err)
	}
	return f.Close()
}
