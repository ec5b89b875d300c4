//go:build linux

package process

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"testing"
	"time"

	"kindling/internal/agentproto"
	"kindling/internal/sandbox"
	"kindling/internal/sandbox/sandboxtest"
)

func benchBackend(b *testing.B, memoryTmp bool) *Backend {
	probe := filepath.Join(b.TempDir(), "probe")
	cfg := testEnv(b, probe)
	sandboxtest.BuildProbe(b, probe)
	cfg.MemoryTmp = memoryTmp
	be, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	return be
}

// BenchmarkCreate is a cold start's share of the backend: Create, the
// agent's handshake, Destroy (sandboxtest.BenchCreate), for a few sizes
// (memory MB / ephemeral MB) and both kinds of /tmp.
func BenchmarkCreate(b *testing.B) {
	for _, c := range []struct {
		mem, tmp  int
		memoryTmp bool
	}{
		{128, 512, false}, {1769, 512, false}, {128, 10240, false},
		{128, 512, true}, {128, 10240, true},
	} {
		kind := "disk"
		if c.memoryTmp {
			kind = "tmpfs"
		}
		b.Run(fmt.Sprintf("mem=%d/tmp=%d/%s", c.mem, c.tmp, kind), func(b *testing.B) {
			sandboxtest.BenchCreate(b, benchBackend(b, c.memoryTmp), c.mem, c.tmp)
		})
	}
}

// BenchmarkCreateStages reports where Create's time goes, stage by stage
// (median and 99th percentile, microseconds), with the agent's set-up traced. Host stages are
// measured from the previous host stage; agent stages from the previous
// agent stage, its first (init-entry: fork, exec and the Go runtime's
// start) from the host's cmd.Start call.
func BenchmarkCreateStages(b *testing.B) {
	for _, memoryTmp := range []bool{false, true} {
		b.Run(fmt.Sprintf("memoryTmp=%v", memoryTmp), func(b *testing.B) {
			benchStages(b, benchBackend(b, memoryTmp))
		})
	}
}

func benchStages(b *testing.B, be *Backend) {
	be.trace = true
	code := b.TempDir()
	sums := map[string][]time.Duration{}
	n := 0
	for b.Loop() {
		n++
		spec := sandbox.Spec{ID: fmt.Sprintf("stages-%d-%d", os.Getpid(), n), CodeDir: code,
			MemoryMB: 128, EphemeralMB: 512, Hostname: "bench"}
		sb, err := be.Create(context.Background(), spec)
		if err != nil {
			b.Fatal(err)
		}
		s := sb.(*Sandbox)
		if err := agentproto.ReadHandshake(bufio.NewReader(s.Conn())); err != nil {
			b.Fatalf("handshake: %v\n%s", err, s.AgentOutput())
		}
		ready := time.Now()
		host := s.stages
		for i := 1; i < len(host); i++ {
			sums["host/"+host[i].name] = append(sums["host/"+host[i].name], host[i].at.Sub(host[i-1].at))
		}
		sums["host/handshake-read"] = append(sums["host/handshake-read"], ready.Sub(host[len(host)-1].at))
		sums["total/ready"] = append(sums["total/ready"], ready.Sub(host[0].at))
		t0 := time.Now()
		if err := s.Destroy(); err != nil {
			b.Fatal(err)
		}
		sums["total/destroy"] = append(sums["total/destroy"], time.Since(t0))
		// The agent's marks are complete once it has exited.
		agent := parseTrace(s.AgentOutput())
		i := slices.IndexFunc(host, func(m stageMark) bool { return m.name == "socketpair" })
		prev := host[i].at // just before the agent's clone
		for _, m := range agent {
			sums["agent/"+m.name] = append(sums["agent/"+m.name], m.at.Sub(prev))
			prev = m.at
		}
	}
	names := make([]string, 0, len(sums))
	for k := range sums {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		d := sums[k]
		slices.Sort(d)
		b.ReportMetric(float64(d[len(d)/2].Microseconds()), k+"-us")
		b.ReportMetric(float64(d[len(d)*99/100].Microseconds()), k+"-p99-us")
	}
}
