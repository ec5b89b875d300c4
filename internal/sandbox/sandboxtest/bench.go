package sandboxtest

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"kindling/internal/agentproto"
	"kindling/internal/sandbox"
)

// BenchCreate measures the backend's share of a cold start: Create, then
// reading the agent's handshake from Conn, then Destroy, one sandbox at a
// time. ns/op is the whole cycle; it also reports the mean of each part
// (create-ns, handshake-ns, destroy-ns) and the 50th and 99th percentile of
// Create plus handshake (ready-p50-ns, ready-p99-ns).
func BenchCreate(b *testing.B, be sandbox.Backend, memoryMB, ephemeralMB int) {
	code := b.TempDir()
	if err := os.WriteFile(filepath.Join(code, "bootstrap"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		b.Fatal(err)
	}
	var create, handshake, destroy time.Duration
	ready := make([]time.Duration, 0, b.N)
	i := 0
	for b.Loop() {
		i++
		spec := sandbox.Spec{ID: fmt.Sprintf("bench-%d-%d", os.Getpid(), i), CodeDir: code,
			MemoryMB: memoryMB, EphemeralMB: ephemeralMB, Hostname: "bench"}
		t0 := time.Now()
		sb, err := be.Create(context.Background(), spec)
		if err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if err := agentproto.ReadHandshake(bufio.NewReader(sb.Conn())); err != nil {
			b.Fatalf("handshake: %v%s", err, agentOutput(sb))
		}
		t2 := time.Now()
		if err := sb.Destroy(); err != nil {
			b.Fatal(err)
		}
		t3 := time.Now()
		create += t1.Sub(t0)
		handshake += t2.Sub(t1)
		destroy += t3.Sub(t2)
		ready = append(ready, t2.Sub(t0))
	}
	n := float64(i)
	b.ReportMetric(float64(create.Nanoseconds())/n, "create-ns")
	b.ReportMetric(float64(handshake.Nanoseconds())/n, "handshake-ns")
	b.ReportMetric(float64(destroy.Nanoseconds())/n, "destroy-ns")
	b.ReportMetric(float64(percentile(ready, 50).Nanoseconds()), "ready-p50-ns")
	b.ReportMetric(float64(percentile(ready, 99).Nanoseconds()), "ready-p99-ns")
}

func percentile(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), d...)
	for i := 1; i < len(s); i++ { // insertion sort: b.N is small
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
	return s[min(len(s)-1, len(s)*p/100)]
}
