package gvisor

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"kindling/internal/agentproto"
	"kindling/internal/sandbox"
	"kindling/internal/sandbox/sandboxtest"
	"kindling/internal/sandbox/sandboxtest/probeproto"
)

// Test environment: envRequired turns the skips for a missing runsc or root
// into failures (set it in CI, where runsc is built first); envFlags adds
// global runsc flags, space-separated (e.g. "--debug --debug-log=/tmp/r/");
// envRunsc names another runsc binary than DefaultRunsc (to compare builds),
// envRootFS another root filesystem than DefaultRootFS (one with an EROFS
// image, to test that layout).
const (
	envRequired = "KINDLING_GVISOR_REQUIRED"
	envFlags    = "KINDLING_GVISOR_RUNSC_FLAGS"
	envRunsc    = "KINDLING_GVISOR_RUNSC"
	envRootFS   = "KINDLING_GVISOR_ROOTFS"
)

// testEnv returns the backend configuration of one test, the same for every
// call with the same t (the conformance suite's Reap case restarts the
// backend on the same host state), or skips the test with the reason the
// machine cannot run the backend.
func testEnv(t testing.TB, agent string) Config {
	t.Helper()
	skip := t.Skipf
	if os.Getenv(envRequired) != "" {
		skip = t.Fatalf
	}
	if os.Geteuid() != 0 {
		skip("the gvisor backend needs root (runsc as root): run the tests as root")
	}
	runscPath := cmp.Or(os.Getenv(envRunsc), DefaultRunsc)
	if !isExecutable(runscPath) {
		skip("runsc missing at %s: build it with scripts/build-runsc.sh (set %s=1 to fail instead)", runscPath, envRequired)
	}
	if _, err := detectCgroups("x"); err != nil {
		skip("%v", err)
	}
	rootfs := cmp.Or(os.Getenv(envRootFS), DefaultRootFS)
	if err := checkRootFS(rootfs); err != nil {
		t.Fatalf("root filesystem %s: %v; run: sudo scripts/build-rootfs.sh %s", rootfs, err, rootfs)
	}
	envMu.Lock()
	defer envMu.Unlock()
	// Keyed by the agent too: with -count=N the same test runs again with
	// a new temporary directory.
	key := t.Name() + "\x00" + agent
	if c, ok := envs[key]; ok {
		return c
	}
	envSeq++
	c := Config{
		Runsc:        runscPath,
		RootFS:       rootfs,
		AgentPath:    agent,
		StateDir:     filepath.Join(t.TempDir(), "sandboxes"),
		CgroupParent: fmt.Sprintf("kindling-gvisor-test-%d-%d", os.Getpid(), envSeq),
		RunscFlags:   strings.Fields(os.Getenv(envFlags)),
	}
	envs[key] = c
	t.Cleanup(func() {
		b, err := New(c)
		if err != nil {
			t.Errorf("cleanup: %v", err)
			return
		}
		if err := b.Reap(); err != nil {
			t.Errorf("cleanup: Reap: %v", err)
		}
		for _, m := range b.cg.mounts {
			if err := os.Remove(filepath.Join(m, c.CgroupParent)); err != nil && !errors.Is(err, os.ErrNotExist) {
				t.Errorf("cleanup: %v", err)
			}
		}
	})
	return c
}

var (
	envMu  sync.Mutex
	envs   = map[string]Config{}
	envSeq int
)

func newBackend(t testing.TB, agent string) *Backend {
	t.Helper()
	b, err := New(testEnv(t, agent))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestConformance(t *testing.T) {
	probe := filepath.Join(t.TempDir(), "probe")
	testEnv(t, probe) // skips here, before building anything, if the machine cannot run it
	sandboxtest.Run(t, func(t *testing.T) sandbox.Backend { return newBackend(t, probe) }, probe)
}

func TestNewSaysHowToBuildRunsc(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("New checks for root before runsc")
	}
	_, err := New(Config{Runsc: "/nonexistent/runsc", AgentPath: "/bin/true", StateDir: t.TempDir()})
	if !errors.Is(err, sandbox.ErrUnavailable) || !strings.Contains(err.Error(), "scripts/build-runsc.sh") {
		t.Fatalf("New with a missing runsc: %v", err)
	}
}

// probeClient speaks the probe protocol without a handshake: a restored
// probe does not send one again.
type probeClient struct {
	conn net.Conn
	r    *bufio.Reader
}

func newProbeClient(sb sandbox.Sandbox) *probeClient {
	c := sb.Conn().(net.Conn)
	return &probeClient{conn: c, r: bufio.NewReader(c)}
}

func (p *probeClient) do(t testing.TB, c probeproto.Command) probeproto.Reply {
	t.Helper()
	r, err := p.try(c)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// try is do for goroutines other than the test's.
func (p *probeClient) try(c probeproto.Command) (probeproto.Reply, error) {
	var r probeproto.Reply
	b, err := json.Marshal(c)
	if err != nil {
		return r, err
	}
	if err := p.conn.SetDeadline(time.Now().Add(30 * time.Second)); err != nil {
		return r, err
	}
	if _, err := p.conn.Write(append(b, '\n')); err != nil {
		return r, fmt.Errorf("probe %s: %w", c.Op, err)
	}
	line, err := p.r.ReadBytes('\n')
	if err != nil {
		return r, fmt.Errorf("probe %s: %w", c.Op, err)
	}
	err = json.Unmarshal(line, &r)
	return r, err
}

// TestCheckpointRestore checkpoints a sandbox whose probe holds state in
// memory and in /tmp, and restores two clones from the image: each answers
// on its own new channel with that state.
func TestCheckpointRestore(t *testing.T) {
	probe := filepath.Join(t.TempDir(), "probe")
	testEnv(t, probe)
	sandboxtest.BuildProbe(t, probe)
	b := newBackend(t, probe)
	spec := sandboxtest.NewSpec(t)
	p := sandboxtest.Start(t, b, spec)
	if r := p.Do(probeproto.Command{Op: "write", Path: "/tmp/state", Bytes: 1234}); !r.OK {
		t.Fatalf("write: %+v", r)
	}
	if r := p.Do(probeproto.Command{Op: "alloc", MB: 16}); !r.OK {
		t.Fatalf("alloc: %+v", r)
	}
	img := filepath.Join(t.TempDir(), "image")
	start := time.Now()
	if err := p.Sandbox.(*Sandbox).Checkpoint(t.Context(), img); err != nil {
		t.Fatalf("Checkpoint: %v\n%s", err, p.Sandbox.(*Sandbox).AgentOutput())
	}
	t.Logf("checkpoint took %v", time.Since(start))
	select {
	case <-p.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("sandbox still running after checkpoint")
	}
	if _, err := p.Try(probeproto.Command{Op: "ps"}); err == nil {
		t.Error("the checkpointed sandbox still answers")
	}
	for i := range 2 {
		rspec := sandboxtest.NewSpec(t)
		rspec.Hostname = fmt.Sprintf("clone-%d", i)
		start := time.Now()
		rs, err := b.Restore(t.Context(), rspec, img)
		if err != nil {
			t.Fatalf("Restore: %v", err)
		}
		t.Cleanup(func() {
			if err := rs.Destroy(); err != nil {
				t.Errorf("Destroy: %v", err)
			}
		})
		c := newProbeClient(rs)
		r := c.do(t, probeproto.Command{Op: "read", Path: "/tmp/state"})
		t.Logf("clone %d: restore to first answer %v", i, time.Since(start))
		if !r.OK || r.N != 1234 {
			t.Errorf("clone %d: /tmp/state after restore: %+v", i, r)
		}
		if r := c.do(t, probeproto.Command{Op: "ps"}); len(r.List) != 1 {
			t.Errorf("clone %d sees processes %v", i, r.List)
		}
		if r := c.do(t, probeproto.Command{Op: "alloc", MB: 8}); !r.OK {
			t.Errorf("clone %d: alloc after restore: %+v", i, r)
		}
		// Both CPU quotas are in place once the memory is loaded (the
		// sandbox's waits for that: limitRestored).
		cpuDir := filepath.Join(b.cg.cpu, b.cg.parent, rspec.ID)
		want := map[string]int64{
			filepath.Join(cpuDir, "cpu.cfs_quota_us"):                 sandboxQuota(rspec.MemoryMB, b.cpus),
			filepath.Join(cpuDir, functionCgroup, "cpu.cfs_quota_us"): cpuQuota(rspec.MemoryMB, b.cpus),
		}
		for f, q := range want {
			deadline := time.Now().Add(pagesLoadTimeout + time.Second)
			for {
				got, err := os.ReadFile(f)
				if err == nil && strings.TrimSpace(string(got)) == fmt.Sprint(q) {
					break
				}
				if time.Now().After(deadline) {
					t.Errorf("clone %d: %s = %q (%v), want %d", i, f, got, err, q)
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
		}
	}
}

// TestDestroyForgetsRunscState checks that Destroy's direct removal of
// runsc's state (runsc.forget) leaves nothing runsc still knows about, for
// a sandbox destroyed while running and one whose agent exited first.
func TestDestroyForgetsRunscState(t *testing.T) {
	probe := filepath.Join(t.TempDir(), "probe")
	testEnv(t, probe)
	sandboxtest.BuildProbe(t, probe)
	b := newBackend(t, probe)
	running := sandboxtest.Start(t, b, sandboxtest.NewSpec(t))
	exited := sandboxtest.Start(t, b, sandboxtest.NewSpec(t))
	if _, err := exited.Try(probeproto.Command{Op: "exit", Code: 3}); err == nil {
		t.Fatal("the probe answered exit")
	}
	<-exited.Done()
	for _, p := range []*sandboxtest.Probe{running, exited} {
		if err := p.Destroy(); err != nil {
			t.Fatal(err)
		}
	}
	ents, err := os.ReadDir(b.runsc.root)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		t.Errorf("left in runsc's root: %s", e.Name())
	}
	if ids, err := b.runsc.list(t.Context()); err != nil || len(ids) != 0 {
		t.Errorf("runsc list after Destroy: %v, %v", ids, err)
	}
}

// TestRealAgent starts cmd/kindling-agent unchanged in a sandbox: it finds
// its channel through KINDLING_AGENT_FD=0, says hello, starts a runtime and
// reports its output and exit.
func TestRealAgent(t *testing.T) {
	agent := filepath.Join(t.TempDir(), "kindling-agent")
	cfg := testEnv(t, agent)
	build := exec.Command("go", "build", "-o", agent, "kindling/cmd/kindling-agent")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build agent: %v\n%s", err, out)
	}
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	spec := sandboxtest.NewSpec(t)
	sb, err := b.Create(t.Context(), spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := sb.Destroy(); err != nil {
			t.Error(err)
		}
	})
	conn := sb.Conn().(net.Conn)
	if err := conn.SetDeadline(time.Now().Add(20 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := agentproto.ReadHandshake(conn); err != nil {
		t.Fatalf("handshake: %v\n%s", err, sb.(*Sandbox).AgentOutput())
	}
	enc := agentproto.NewEncoder(conn)
	start := agentproto.StartMeta{Path: "/var/task/bootstrap", Args: []string{"/var/task/bootstrap"}, Env: []string{"PATH=/usr/bin:/bin"}, Dir: "/var/task"}
	if err := enc.Write(agentproto.TypeStart, start, nil); err != nil {
		t.Fatal(err)
	}
	dec := agentproto.NewDecoder(conn)
	var logs []byte
	for {
		f, err := dec.Read()
		if err != nil {
			t.Fatalf("reading frames: %v (logs %q)\n%s", err, logs, sb.(*Sandbox).AgentOutput())
		}
		if f.Type == agentproto.TypeLog {
			logs = append(logs, f.Body...)
		}
		if f.Type == agentproto.TypeExit {
			var m agentproto.ExitMeta
			if err := f.DecodeMeta(&m); err != nil {
				t.Fatal(err)
			}
			if m.Code != 0 || !strings.Contains(string(logs), "hello") {
				t.Errorf("runtime exit %+v, logs %q", m, logs)
			}
			return
		}
	}
}

// BenchmarkCreate measures Create until the probe's handshake is read, then
// Destroy (outside the timed part); it reports the medians, and that of
// Create alone (runsc run and the CPU limits).
func BenchmarkCreate(b *testing.B) {
	probe := filepath.Join(b.TempDir(), "probe")
	cfg := testEnv(b, probe)
	sandboxtest.BuildProbe(b, probe)
	be, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	var ds, creates, destroys []time.Duration
	for i := 0; b.Loop(); i++ {
		spec := sandbox.Spec{ID: fmt.Sprintf("bench-%d-%d", os.Getpid(), i), CodeDir: b.TempDir(), MemoryMB: 256, EphemeralMB: 64}
		start := time.Now()
		sb, err := be.Create(context.Background(), spec)
		if err != nil {
			b.Fatal(err)
		}
		creates = append(creates, time.Since(start))
		if err := agentproto.ReadHandshake(sb.Conn()); err != nil {
			b.Fatalf("handshake: %v\n%s", err, sb.(*Sandbox).AgentOutput())
		}
		ds = append(ds, time.Since(start))
		b.StopTimer()
		start = time.Now()
		if err := sb.Destroy(); err != nil {
			b.Fatal(err)
		}
		destroys = append(destroys, time.Since(start))
		b.StartTimer()
	}
	b.ReportMetric(float64(median(ds).Microseconds())/1000, "ms-median-create")
	b.ReportMetric(float64(median(creates).Microseconds())/1000, "ms-median-create-return")
	b.ReportMetric(float64(median(destroys).Microseconds())/1000, "ms-median-destroy")
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}
