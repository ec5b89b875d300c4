package gvisor

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"kindling/internal/sandbox"
	"kindling/internal/sandbox/sandboxtest"
	"kindling/internal/sandbox/sandboxtest/probeproto"
)

// cpuUsage reads the CPU time charged to sandbox id's cpuacct cgroup (every
// host process of the sandbox).
func cpuUsage(t *testing.T, b *Backend, id string) time.Duration {
	t.Helper()
	for _, d := range b.cg.dirs(id) {
		v, err := os.ReadFile(filepath.Join(d, "cpuacct.usage"))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		n, err := strconv.ParseInt(strings.TrimSpace(string(v)), 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		return time.Duration(n)
	}
	t.Skip("no cpuacct hierarchy")
	return 0
}

func freezerState(t *testing.T, b *Backend, id string) string {
	t.Helper()
	v, err := os.ReadFile(b.cg.freezeState(id))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(v))
}

// checkFrozen checks that the freezer reports sandbox id frozen and that
// its host processes (sentry, gofer, stubs) are all in the freezer's
// cgroup.
func checkFrozen(t *testing.T, b *Backend, id string) {
	t.Helper()
	if st := freezerState(t, b, id); st != "FROZEN" {
		t.Fatalf("freezer.state: %s", st)
	}
	all, err := b.cg.procs(id)
	if err != nil {
		t.Fatal(err)
	}
	fz, err := os.ReadFile(filepath.Join(b.cg.freezer, b.cg.parent, id, "cgroup.procs"))
	if err != nil {
		t.Fatal(err)
	}
	in := strings.Fields(string(fz))
	for _, pid := range all {
		found := false
		for _, p := range in {
			found = found || p == strconv.Itoa(pid)
		}
		if !found {
			t.Errorf("process %d of sandbox %s is not in its freezer cgroup", pid, id)
		}
	}
}

// TestFreeze freezes an idle sandbox: its host processes are frozen and
// use no CPU, it does not answer, Stats still works; after Thaw the probe
// answers with its state intact. Then freezes and thaws a busy sandbox
// many times, in the middle of its work (new processes, whose address
// spaces the sentry makes through a stub's syscall thread: the case in
// which systrap lost the thread before the
// systrap-seccomp-notify-enoent patch). A frozen sandbox is destroyed or
// killed as cleanly as a running one.
func TestFreeze(t *testing.T) {
	probe := filepath.Join(t.TempDir(), "probe")
	testEnv(t, probe)
	sandboxtest.BuildProbe(t, probe)
	b := newBackend(t, probe)
	if b.cg.freezer == "" {
		t.Skip("no cgroup v1 freezer hierarchy")
	}
	p := sandboxtest.Start(t, b, sandboxtest.NewSpec(t))
	if r := p.Do(probeproto.Command{Op: "write", Path: "/tmp/state", Bytes: 321}); !r.OK {
		t.Fatalf("write: %+v", r)
	}
	fz := p.Sandbox.(sandbox.Freezer)
	id := p.Sandbox.ID()

	time.Sleep(200 * time.Millisecond) // let the start settle
	u0 := cpuUsage(t, b, id)
	time.Sleep(time.Second)
	idle := cpuUsage(t, b, id) - u0

	start := time.Now()
	if err := fz.Freeze(); err != nil {
		t.Fatalf("Freeze: %v", err)
	}
	freezeTook := time.Since(start)
	checkFrozen(t, b, id)
	if err := fz.Freeze(); err != nil { // idempotent
		t.Fatalf("second Freeze: %v", err)
	}
	u1 := cpuUsage(t, b, id)
	// A command sent now is not answered until Thaw.
	type reply struct {
		r   probeproto.Reply
		err error
		at  time.Time
	}
	replies := make(chan reply, 1)
	go func() {
		r, err := p.Try(probeproto.Command{Op: "read", Path: "/tmp/state"})
		replies <- reply{r, err, time.Now()}
	}()
	select {
	case r := <-replies:
		t.Fatalf("a frozen sandbox answered: %+v, %v", r.r, r.err)
	case <-time.After(time.Second):
	}
	frozen := cpuUsage(t, b, id) - u1
	t.Logf("idle sandbox: %v of CPU over 1 s running, %v frozen; Freeze took %v", idle, frozen, freezeTook)
	if frozen != 0 {
		t.Errorf("frozen sandbox used %v of CPU in 1 s", frozen)
	}
	if st, err := p.Sandbox.Stats(); err != nil || st.MaxMemoryBytes == 0 {
		t.Errorf("Stats while frozen: %+v, %v", st, err)
	}
	start = time.Now()
	if err := fz.Thaw(); err != nil {
		t.Fatalf("Thaw: %v", err)
	}
	thawTook := time.Since(start)
	r := <-replies
	t.Logf("Thaw took %v, the answer came %v after Thaw began", thawTook, r.at.Sub(start))
	if r.err != nil || !r.r.OK || r.r.N != 321 {
		t.Errorf("/tmp/state after Thaw: %+v, %v", r.r, r.err)
	}
	if st := freezerState(t, b, id); st != "THAWED" {
		t.Errorf("freezer.state after Thaw: %s", st)
	}
	if err := fz.Thaw(); err != nil { // idempotent
		t.Fatalf("second Thaw: %v", err)
	}

	// Idle, then busy: freeze at a random point of the work, thaw, and the
	// work completes.
	const cycles = 30
	var worst time.Duration
	for i := range cycles {
		if err := fz.Freeze(); err != nil {
			t.Fatalf("Freeze %d (idle): %v", i, err)
		}
		checkFrozen(t, b, id)
		start := time.Now()
		if err := fz.Thaw(); err != nil {
			t.Fatalf("Thaw %d (idle): %v", i, err)
		}
		if r := p.Do(probeproto.Command{Op: "ps"}); !r.OK || len(r.List) != 1 {
			t.Fatalf("ps after idle thaw %d: %+v%s", i, r, p.Sandbox.(*Sandbox).AgentOutput())
		}
		worst = max(worst, time.Since(start))

		done := make(chan reply, 1)
		go func() {
			r, err := p.Try(probeproto.Command{Op: "sh", Path: "i=0; while [ $i -lt 10 ]; do /bin/true; i=$((i+1)); done; echo ok"})
			done <- reply{r, err, time.Now()}
		}()
		time.Sleep(time.Duration(i%10) * 3 * time.Millisecond)
		if err := fz.Freeze(); err != nil {
			t.Fatalf("Freeze %d (busy): %v", i, err)
		}
		time.Sleep(20 * time.Millisecond)
		if err := fz.Thaw(); err != nil {
			t.Fatalf("Thaw %d (busy): %v", i, err)
		}
		r := <-done
		if r.err != nil || !r.r.OK || strings.TrimSpace(r.r.Data) != "ok" {
			t.Fatalf("work across freeze %d: %+v, %v%s", i, r.r, r.err, p.Sandbox.(*Sandbox).AgentOutput())
		}
	}
	t.Logf("%d freeze/thaw cycles idle and busy: slowest answer after an idle Thaw %v", cycles, worst)
	if out := string(p.Sandbox.(*Sandbox).AgentOutput()); strings.Contains(out, "seccomp notify") {
		t.Errorf("systrap complained:\n%s", out)
	}

	// Destroy while frozen: nothing left behind.
	if err := fz.Freeze(); err != nil {
		t.Fatal(err)
	}
	pids, err := b.cg.procs(id)
	if err != nil || len(pids) == 0 {
		t.Fatalf("processes of the frozen sandbox: %v, %v", pids, err)
	}
	start = time.Now()
	if err := p.Sandbox.Destroy(); err != nil {
		t.Fatalf("Destroy while frozen: %v", err)
	}
	t.Logf("Destroy of a frozen sandbox took %v", time.Since(start))
	checkNothingLeft(t, b, id, pids)
	if err := fz.Freeze(); !errors.Is(err, errDestroyed) {
		t.Errorf("Freeze after Destroy: %v", err)
	}
	if err := fz.Thaw(); !errors.Is(err, errDestroyed) {
		t.Errorf("Thaw after Destroy: %v", err)
	}

	// Kill while frozen: the sandbox exits (Done), then Destroy cleans up.
	k := sandboxtest.Start(t, b, sandboxtest.NewSpec(t))
	if err := k.Sandbox.(sandbox.Freezer).Freeze(); err != nil {
		t.Fatal(err)
	}
	kpids, err := b.cg.procs(k.Sandbox.ID())
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Sandbox.Kill(); err != nil {
		t.Fatalf("Kill while frozen: %v", err)
	}
	select {
	case <-k.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("a frozen sandbox did not exit after Kill")
	}
	if err := k.Sandbox.Destroy(); err != nil {
		t.Fatal(err)
	}
	checkNothingLeft(t, b, k.Sandbox.ID(), kpids)
}

// TestReapFrozen checks that Reap removes a sandbox an earlier run left
// frozen.
func TestReapFrozen(t *testing.T) {
	probe := filepath.Join(t.TempDir(), "probe")
	testEnv(t, probe)
	sandboxtest.BuildProbe(t, probe)
	b := newBackend(t, probe)
	if b.cg.freezer == "" {
		t.Skip("no cgroup v1 freezer hierarchy")
	}
	p := sandboxtest.Start(t, b, sandboxtest.NewSpec(t))
	if err := p.Sandbox.(sandbox.Freezer).Freeze(); err != nil {
		t.Fatal(err)
	}
	id := p.Sandbox.ID()
	pids, err := b.cg.procs(id)
	if err != nil {
		t.Fatal(err)
	}
	b2 := newBackend(t, probe) // a restarted server
	if err := b2.Reap(); err != nil {
		t.Fatalf("Reap of a frozen sandbox: %v", err)
	}
	checkNothingLeft(t, b, id, pids)
}

// checkNothingLeft checks that sandbox id's processes, cgroups and state
// directory are gone.
func checkNothingLeft(t *testing.T, b *Backend, id string, pids []int) {
	t.Helper()
	cgs, dir := b.HostPaths(id)
	for _, c := range cgs {
		if _, err := os.Stat(c); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("cgroup %s left (%v)", c, err)
		}
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state directory %s left (%v)", dir, err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for _, pid := range pids {
		for unix.Kill(pid, 0) == nil {
			// A zombie until its parent reaps it is gone enough; anything
			// else is a survivor.
			if st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err != nil || strings.Contains(string(st), ") Z ") {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("process %d of %s still running", pid, id)
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}
