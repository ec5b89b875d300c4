package gvisor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"kindling/internal/agentproto"
	"kindling/internal/sandbox"
	"kindling/internal/sandbox/sandboxtest"
	"kindling/internal/sandbox/sandboxtest/probeproto"
)

// checkpointProbe creates a probe sandbox of spec on be, has it fill mb MiB
// with random bytes and write /tmp/state (1234 bytes), checkpoints it to
// img and destroys it. It returns the touch sum of the filled memory.
func checkpointProbe(tb testing.TB, be *Backend, spec sandbox.Spec, mb int, img string) int64 {
	tb.Helper()
	sb, err := be.Create(context.Background(), spec)
	if err != nil {
		tb.Fatal(err)
	}
	defer func() {
		if err := sb.Destroy(); err != nil {
			tb.Error(err)
		}
	}()
	if err := agentproto.ReadHandshake(sb.Conn()); err != nil {
		tb.Fatalf("handshake: %v\n%s", err, sb.(*Sandbox).AgentOutput())
	}
	c := newProbeClient(sb)
	if r := c.do(tb, probeproto.Command{Op: "write", Path: "/tmp/state", Bytes: 1234}); !r.OK {
		tb.Fatalf("write: %+v", r)
	}
	if r := c.do(tb, probeproto.Command{Op: "fill", MB: mb}); !r.OK {
		tb.Fatalf("fill: %+v", r)
	}
	sum := c.do(tb, probeproto.Command{Op: "touch", Bytes: 8}).N
	if err := sb.(*Sandbox).Checkpoint(context.Background(), img); err != nil {
		tb.Fatalf("Checkpoint: %v\n%s", err, sb.(*Sandbox).AgentOutput())
	}
	return sum
}

// TestRestoreConcurrent restores two clones from one image at the same
// time: both answer, each on its own channel with the checkpointed memory
// and /tmp, their /tmp writes stay their own, and each has its cgroup
// limits (memory, the CPU quotas with the stubs in the function cgroup).
func TestRestoreConcurrent(t *testing.T) {
	probe := filepath.Join(t.TempDir(), "probe")
	testEnv(t, probe)
	sandboxtest.BuildProbe(t, probe)
	b := newBackend(t, probe)
	img := filepath.Join(t.TempDir(), "image")
	spec := sandboxtest.NewSpec(t)
	spec.MemoryMB = 512
	sum := checkpointProbe(t, b, spec, 32, img)
	for _, f := range []string{"pages.img", "pages_meta.img", "checkpoint.img"} {
		if _, err := os.Stat(filepath.Join(img, f)); err != nil {
			t.Errorf("image: %v (want an uncompressed image)", err)
		}
	}

	const n = 2
	specs := make([]sandbox.Spec, n)
	for i := range specs {
		specs[i] = sandboxtest.NewSpec(t)
		specs[i].MemoryMB = spec.MemoryMB
	}
	// Clone 1 goes through Prepare, clone 0 through Restore.
	prepared, err := b.Prepare(t.Context(), specs[1])
	if err != nil {
		t.Fatal(err)
	}
	sbs := make([]sandbox.Sandbox, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			var sb sandbox.Sandbox
			var err error
			if i == 1 {
				sb, err = prepared.Restore(t.Context(), img)
			} else {
				sb, err = b.Restore(t.Context(), specs[i], img)
			}
			if err != nil {
				errs[i] = err
				return
			}
			sbs[i] = sb
			c := newProbeClient(sb)
			r, err := c.try(probeproto.Command{Op: "touch", Bytes: 8})
			if err == nil && r.N != sum {
				err = fmt.Errorf("touch sum %d, want %d", r.N, sum)
			}
			if err == nil {
				// Each clone writes its own size, then reads it back.
				r, err = c.try(probeproto.Command{Op: "write", Path: "/tmp/own", Bytes: int64(100 + i)})
			}
			if err == nil {
				r, err = c.try(probeproto.Command{Op: "read", Path: "/tmp/own"})
				if err == nil && r.N != int64(100+i) {
					err = fmt.Errorf("/tmp/own has %d bytes, want %d", r.N, 100+i)
				}
			}
			if err == nil {
				r, err = c.try(probeproto.Command{Op: "read", Path: "/tmp/state"})
				if err == nil && r.N != 1234 {
					err = fmt.Errorf("/tmp/state: %+v", r)
				}
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, sb := range sbs {
		if sb != nil {
			t.Cleanup(func() {
				if err := sb.Destroy(); err != nil {
					t.Error(err)
				}
			})
		}
		if errs[i] != nil {
			t.Errorf("clone %d: %v", i, errs[i])
		}
	}
	if t.Failed() {
		return
	}
	for i, sb := range sbs {
		checkLimits(t, b, sb.(*Sandbox), specs[i].MemoryMB)
		if _, err := sb.Stats(); err != nil {
			t.Errorf("clone %d: Stats: %v", i, err)
		}
	}
}

// TestPrepareDestroy destroys a prepared sandbox that was never restored:
// nothing of it is left, and a Prepared is restored at most once.
func TestPrepareDestroy(t *testing.T) {
	probe := filepath.Join(t.TempDir(), "probe")
	testEnv(t, probe)
	sandboxtest.BuildProbe(t, probe)
	b := newBackend(t, probe)
	spec := sandboxtest.NewSpec(t)
	p, err := b.Prepare(t.Context(), spec)
	if err != nil {
		t.Fatal(err)
	}
	if p.ID() != spec.ID {
		t.Errorf("ID %q, want %q", p.ID(), spec.ID)
	}
	if err := p.Destroy(); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Restore(t.Context(), t.TempDir()); err == nil {
		t.Error("Restore after Destroy succeeded")
	}
	if _, err := p.Restore(t.Context(), t.TempDir()); err == nil {
		t.Error("second Restore succeeded")
	}
	cgs, dir := b.HostPaths(spec.ID)
	for _, d := range append(cgs, dir) {
		if _, err := os.Stat(d); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left after Destroy: %v", d, err)
		}
	}
	if ids, err := b.runsc.list(t.Context()); err != nil || len(ids) != 0 {
		t.Errorf("runsc list after Destroy: %v, %v", ids, err)
	}
}

// checkLimits checks a sandbox's cgroups: the memory limit, both CPU
// quotas, and every process but the sentry and the gofer in the function
// cgroup.
func checkLimits(t *testing.T, b *Backend, s *Sandbox, memoryMB int) {
	t.Helper()
	read := func(path string) string {
		t.Helper()
		v, err := os.ReadFile(path)
		if err != nil {
			t.Error(err)
		}
		return strings.TrimSpace(string(v))
	}
	mem := filepath.Join(b.cg.memory, b.cg.parent, s.id)
	if v := read(filepath.Join(mem, "memory.limit_in_bytes")); v != strconv.Itoa(memoryMB<<20) {
		t.Errorf("%s: memory.limit_in_bytes %s, want %d", s.id, v, memoryMB<<20)
	}
	cpu := filepath.Join(b.cg.cpu, b.cg.parent, s.id)
	if v := read(filepath.Join(cpu, "cpu.cfs_quota_us")); v != strconv.FormatInt(sandboxQuota(memoryMB, b.cpus), 10) {
		t.Errorf("%s: sandbox cpu.cfs_quota_us %s, want %d", s.id, v, sandboxQuota(memoryMB, b.cpus))
	}
	fn := filepath.Join(cpu, functionCgroup)
	if v := read(filepath.Join(fn, "cpu.cfs_quota_us")); v != strconv.FormatInt(cpuQuota(memoryMB, b.cpus), 10) {
		t.Errorf("%s: function cpu.cfs_quota_us %s, want %d", s.id, v, cpuQuota(memoryMB, b.cpus))
	}
	if len(strings.Fields(read(filepath.Join(fn, "cgroup.procs")))) == 0 {
		t.Errorf("%s: no systrap stub in the function cgroup", s.id)
	}
	for f := range strings.FieldsSeq(read(filepath.Join(cpu, "cgroup.procs"))) {
		pid, _ := strconv.Atoi(f)
		if pid != s.pid && !isGofer(pid) {
			t.Errorf("%s: process %d outside the function cgroup", s.id, pid)
		}
	}
}

// BenchmarkRestore measures restoring a probe that filled 64 or 256 MiB
// with random bytes: each iteration restores from one image (made once per
// sub-benchmark, outside the timing) until the restored probe answers a
// touch of a few pages spread over that memory, then destroys it (not
// timed). Modes: the image's compression (runsc's default flate or none)
// and restore --background. Run with e.g. -benchtime=15x.
func BenchmarkRestore(b *testing.B) {
	probe := filepath.Join(b.TempDir(), "probe")
	cfg := testEnv(b, probe)
	sandboxtest.BuildProbe(b, probe)
	base, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	modes := []struct {
		name        string
		compression string
		background  bool
		prepared    bool // Prepare untimed, then time Prepared.Restore
	}{
		{"flate", "", false, false},
		{"none", "none", false, false},
		{"none-background", "none", true, false},
		{"flate-prepared", "", false, true},
		{"none-background-prepared", "none", true, true},
		{"none-background-direct-prepared", "none", true, true},
	}
	seq := 0
	for _, size := range restoreSizes() {
		for _, m := range modes {
			b.Run(fmt.Sprintf("%dMiB/%s", size, m.name), func(b *testing.B) {
				be := *base
				be.compression, be.background = m.compression, m.background
				be.direct = strings.Contains(m.name, "direct")
				newSpec := func() sandbox.Spec {
					seq++
					return sandbox.Spec{ID: fmt.Sprintf("bench-%d-%d", os.Getpid(), seq), CodeDir: b.TempDir(), MemoryMB: restoreMemoryMB(), EphemeralMB: 64}
				}
				img := filepath.Join(b.TempDir(), "image")
				start := time.Now()
				sum := checkpointProbe(b, &be, newSpec(), size, img)
				checkpoint := time.Since(start)
				var restores, returns []time.Duration
				for b.Loop() {
					spec := newSpec()
					var p *Prepared
					if m.prepared {
						b.StopTimer()
						var err error
						if p, err = be.Prepare(context.Background(), spec); err != nil {
							b.Fatal(err)
						}
						b.StartTimer()
					}
					start := time.Now()
					var sb sandbox.Sandbox
					var err error
					if p != nil {
						sb, err = p.Restore(context.Background(), img)
					} else {
						sb, err = be.Restore(context.Background(), spec, img)
					}
					if err != nil {
						b.Fatal(err)
					}
					returns = append(returns, time.Since(start))
					r := newProbeClient(sb).do(b, probeproto.Command{Op: "touch", Bytes: 8})
					restores = append(restores, time.Since(start))
					if r.N != sum {
						b.Fatalf("touch sum %d, want %d", r.N, sum)
					}
					b.StopTimer()
					if err := sb.Destroy(); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
				}
				b.ReportMetric(ms(median(restores)), "ms/restore-p50")
				b.ReportMetric(ms(median(returns)), "ms/restore-return-p50")
				b.ReportMetric(ms(checkpoint), "ms/checkpoint")
				b.ReportMetric(float64(dirBytes(b, img))/(1<<20), "MiB/image")
			})
		}
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// dirBytes is the disk use of the files in dir.
func dirBytes(tb testing.TB, dir string) int64 {
	ents, err := os.ReadDir(dir)
	if err != nil {
		tb.Fatal(err)
	}
	var n int64
	for _, e := range ents {
		fi, err := e.Info()
		if err != nil {
			tb.Fatal(err)
		}
		n += fi.Size()
	}
	return n
}

// restoreSizes are BenchmarkRestore's sizes in MiB: 64 and 256, or those
// of KINDLING_BENCH_RESTORE_MIB (space-separated).
func restoreSizes() []int {
	env := strings.Fields(os.Getenv("KINDLING_BENCH_RESTORE_MIB"))
	if len(env) == 0 {
		return []int{64, 256}
	}
	var sizes []int
	for _, f := range env {
		if n, err := strconv.Atoi(f); err == nil && n > 0 {
			sizes = append(sizes, n)
		}
	}
	return sizes
}

// restoreMemoryMB is the MemoryMB of BenchmarkRestore's sandboxes: 512, or
// KINDLING_BENCH_RESTORE_MEMORY_MB (the CPU quotas follow it).
func restoreMemoryMB() int {
	if n, err := strconv.Atoi(os.Getenv("KINDLING_BENCH_RESTORE_MEMORY_MB")); err == nil && n >= minMemoryMB {
		return n
	}
	return 512
}
