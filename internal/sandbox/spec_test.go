package sandbox

import (
	"errors"
	"testing"

	"kindling/internal/errdefs"
)

func TestCPUQuota(t *testing.T) {
	for _, c := range []struct {
		memoryMB, cpus int
		want           int64
	}{
		{1769, 2, CPUPeriod},      // one vCPU
		{128, 2, 7235},            // 128/1769 of a CPU
		{3538, 2, 2 * CPUPeriod},  // two vCPUs
		{10240, 2, 2 * CPUPeriod}, // never more than the machine has
		{1, 2, MinCPUQuota},       // never less than 1 %
	} {
		if got := CPUQuota(c.memoryMB, c.cpus); got != c.want {
			t.Errorf("CPUQuota(%d, %d) = %d, want %d", c.memoryMB, c.cpus, got, c.want)
		}
	}
}

func TestSpecValidate(t *testing.T) {
	ok := Spec{ID: "abc-1", CodeDir: "/code", MemoryMB: 128, EphemeralMB: 512, Hostname: "sandbox"}
	if err := ok.Validate(64); err != nil {
		t.Fatalf("valid spec: %v", err)
	}
	for name, mutate := range map[string]func(*Spec){
		"id":        func(s *Spec) { s.ID = "Bad_ID" },
		"code dir":  func(s *Spec) { s.CodeDir = "relative" },
		"memory":    func(s *Spec) { s.MemoryMB = 32 },
		"too much":  func(s *Spec) { s.MemoryMB = MaxMemoryMB + 1 },
		"ephemeral": func(s *Spec) { s.EphemeralMB = 0 },
		"hostname":  func(s *Spec) { s.Hostname = string(make([]byte, 65)) },
	} {
		s := ok
		mutate(&s)
		if err := s.Validate(64); !errors.Is(err, errdefs.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
}
