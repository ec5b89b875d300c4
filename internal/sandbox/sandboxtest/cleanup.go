package sandboxtest

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"kindling/internal/sandbox"
)

func testCleanup(t *testing.T, h *harness) {
	spec := h.spec()
	p := h.create(spec)
	if r := p.Do(cmd{Op: "write", Path: "/tmp/data", Bytes: 1 << 20}); !r.OK {
		t.Fatalf("write /tmp/data: %+v", r)
	}
	if err := p.Destroy(); err != nil {
		t.Fatalf("Destroy: %v", err)
	}
	select {
	case <-p.Done():
	default:
		t.Error("Done not closed after Destroy returned")
	}
	if _, err := p.Conn().Write([]byte("x")); err == nil {
		t.Error("the channel is still open after Destroy")
	}
	checkGone(t, h, spec.ID)
}

// testReap simulates a server crash: one sandbox whose agent was killed and
// one still running are left without Destroy; a new backend on the same
// host state must remove both.
func testReap(t *testing.T, h *harness) {
	specKilled, specRunning := h.spec(), h.spec()
	var sbs []sandbox.Sandbox
	for _, spec := range []sandbox.Spec{specKilled, specRunning} {
		sb, err := h.b.Create(t.Context(), spec)
		if err != nil {
			t.Fatalf("Create: %v", err)
		}
		sbs = append(sbs, sb)
		// The backend is dropped: only the processes are cleaned up here,
		// whatever happens, so that a failing Reap leaves no orphans.
		t.Cleanup(func() {
			if err := sb.Kill(); err != nil {
				t.Logf("cleanup: kill %s: %v", sb.ID(), err)
			}
			if err := sb.Conn().Close(); err != nil {
				t.Logf("cleanup: close %s: %v", sb.ID(), err)
			}
		})
	}
	if err := sbs[0].Kill(); err != nil {
		t.Fatalf("Kill: %v", err)
	}
	waitDone(t, sbs[0], exitTimeout)

	restarted := h.newBackend(t)
	if err := restarted.Reap(); err != nil {
		t.Fatalf("Reap: %v", err)
	}
	waitDone(t, sbs[1], exitTimeout) // Reap killed the running one
	h.b = restarted
	checkGone(t, h, specKilled.ID)
	checkGone(t, h, specRunning.ID)
	if err := restarted.Reap(); err != nil {
		t.Errorf("second Reap: %v", err)
	}
	// The restarted backend works, with the same ids even.
	p := h.create(specKilled)
	if r := p.Do(cmd{Op: "ps"}); len(r.List) != 1 {
		t.Errorf("after Reap, a new sandbox sees %v", r.List)
	}
}

// checkGone asserts that nothing of sandbox id is left on the host: no
// cgroup directory, no process in a cgroup named after it, no state
// directory, no mount under it.
func checkGone(t *testing.T, h *harness, id string) {
	t.Helper()
	cgroups, stateDir, ok := h.hostPaths(id)
	if !ok {
		return
	}
	for _, c := range cgroups {
		if _, err := os.Stat(c); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("cgroup %s still exists (%v)", c, err)
		}
	}
	if _, err := os.Stat(stateDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state directory %s still exists (%v)", stateDir, err)
	}
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(mi), "\n") {
		if f := strings.Fields(line); len(f) > 4 && (f[4] == stateDir || strings.HasPrefix(f[4], stateDir+"/")) {
			t.Errorf("mount left under the state directory: %s", line)
		}
	}
	procs, err := filepath.Glob("/proc/[0-9]*/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(exitTimeout)
	for _, f := range procs {
		for {
			b, err := os.ReadFile(f)
			if err != nil || !strings.Contains(string(b), "/"+id+"\n") {
				break // gone, or not in the sandbox's cgroups
			}
			if time.Now().After(deadline) {
				t.Errorf("%s is still in a cgroup of %s", filepath.Dir(f), id)
				break
			}
			time.Sleep(time.Millisecond)
		}
	}
}
