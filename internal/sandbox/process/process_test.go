//go:build linux

package process

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"kindling/internal/sandbox"
	"kindling/internal/sandbox/sandboxtest"
	"kindling/internal/sandbox/sandboxtest/probeproto"
)

// testEnv returns the backend configuration of one test, the same for every
// call with the same t (the conformance suite's Reap case restarts the
// backend on the same host state), or skips the test with the reason the
// machine cannot run the backend.
func testEnv(t testing.TB, agent string) Config {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the process backend needs root (namespaces, cgroups, mounts): run the tests as root")
	}
	mounts, err := readMountInfo("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := detectCgroups(mounts, "x"); err != nil {
		t.Skipf("cgroups missing: %v", err)
	}
	envMu.Lock()
	defer envMu.Unlock()
	if c, ok := envs[t]; ok {
		return c
	}
	if err := checkStamp(DefaultRootFS); err != nil {
		t.Fatalf("root filesystem %s: %v; run: sudo scripts/build-rootfs.sh", DefaultRootFS, err)
	}
	envSeq++
	c := Config{
		AgentPath:    agent,
		StateDir:     filepath.Join(t.TempDir(), "sandboxes"),
		CgroupParent: fmt.Sprintf("kindling-test-%d-%d", os.Getpid(), envSeq),
	}
	envs[t] = c
	t.Cleanup(func() {
		b, err := New(c)
		if err != nil {
			t.Errorf("cleanup: %v", err)
			return
		}
		if err := b.Reap(); err != nil {
			t.Errorf("cleanup: Reap: %v", err)
		}
		for _, d := range b.cg.roots() {
			if err := os.Remove(d); err != nil && !errors.Is(err, os.ErrNotExist) {
				t.Errorf("cleanup: %v", err)
			}
		}
		envMu.Lock()
		delete(envs, t)
		envMu.Unlock()
	})
	return c
}

var (
	envMu  sync.Mutex
	envs   = map[testing.TB]Config{} // by test: the same t gets the same host state
	envSeq int
)

func TestConformance(t *testing.T) {
	probe := filepath.Join(t.TempDir(), "probe")
	testEnv(t, probe) // skips here, before building anything, if the machine cannot run it
	sandboxtest.Run(t, func(t *testing.T) sandbox.Backend {
		b, err := New(testEnv(t, probe))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}, probe)
}

// TestMemoryTmp checks the tmpfs /tmp of Config.MemoryTmp, and its
// trade-off: what a function writes there counts as its memory.
func TestMemoryTmp(t *testing.T) {
	probe := filepath.Join(t.TempDir(), "probe")
	cfg := testEnv(t, probe)
	sandboxtest.BuildProbe(t, probe)
	cfg.MemoryTmp = true
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	spec := sandboxtest.NewSpec(t)
	spec.EphemeralMB = 8
	p := sandboxtest.Start(t, b, spec)
	if r := p.Do(probeproto.Command{Op: "write", Path: "/tmp/fill", Bytes: 32 << 20}); r.OK || r.Errno != "ENOSPC" {
		t.Errorf("writing 32 MiB to an 8 MiB /tmp: %+v, want ENOSPC", r)
	}
	mi := p.Do(probeproto.Command{Op: "mounts"}).Data
	if !strings.Contains(mi, " /tmp rw,nosuid,nodev") || !strings.Contains(mi, "- tmpfs tmpfs") {
		t.Errorf("/tmp is not a tmpfs:\n%s", mi)
	}

	spec = sandboxtest.NewSpec(t)
	spec.MemoryMB, spec.EphemeralMB = 128, 512
	p = sandboxtest.Start(t, b, spec)
	if _, err := p.Try(probeproto.Command{Op: "write", Path: "/tmp/big", Bytes: 256 << 20}); err == nil {
		t.Error("256 MiB written to a tmpfs /tmp with 128 MB of memory: want the OOM killer")
	}
	<-p.Done()
	if st, err := p.Stats(); err != nil || !st.OOMKilled {
		t.Errorf("Stats = %+v, %v; want OOMKilled", st, err)
	}
}
