package process

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestKeyedValue(t *testing.T) {
	b := []byte("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n")
	if got := keyedValue(b, "oom_kill"); got != 3 {
		t.Errorf("oom_kill = %d", got)
	}
	if got := keyedValue(b, "missing"); got != 0 {
		t.Errorf("missing = %d", got)
	}
}

// TestCgroupsV2Detection runs detection and setup of a unified hierarchy
// against a fake one (this machine has v1): the parent directories and the
// delegation of controllers down to them.
func TestCgroupsV2Detection(t *testing.T) {
	root := t.TempDir()
	for _, f := range []string{"cgroup.controllers", "cgroup.subtree_control"} {
		if err := os.WriteFile(filepath.Join(root, f), []byte("cpu io memory pids\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mounts := []mountInfo{{MountPoint: root, FSType: "cgroup2"}}
	c, err := detectCgroups(mounts, "a/b")
	if err != nil {
		t.Fatal(err)
	}
	if !c.v2 || c.memory != filepath.Join(root, "a/b") || len(c.dirs("x")) != 1 {
		t.Fatalf("detected %+v", c)
	}
	// A real cgroupfs creates the control files with each directory.
	for _, d := range []string{"a", "a/b"} {
		if err := os.Mkdir(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, d, "cgroup.subtree_control"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.setup(); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"", "a", "a/b"} {
		b, err := os.ReadFile(filepath.Join(root, d, "cgroup.subtree_control"))
		if err != nil || !strings.HasPrefix(string(b), "+memory +cpu +pids") {
			t.Errorf("%s/cgroup.subtree_control = %q, %v", d, b, err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "cgroup.controllers"), []byte("cpu io\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := detectCgroups(mounts, "a/b"); err == nil {
		t.Error("a v2 hierarchy without memory and pids accepted")
	}
}
