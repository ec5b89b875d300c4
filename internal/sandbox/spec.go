package sandbox

import (
	"fmt"
	"regexp"

	"kindling/internal/errdefs"
)

// CPU as Lambda allots it: in proportion to memory, one full vCPU at
// MemoryPerVCPU, enforced as a CFS quota per CPUPeriod. Every backend
// applies the same rule.
const (
	// CPUPeriod is the CFS period, in microseconds.
	CPUPeriod = 100000
	// MemoryPerVCPU is the MemorySize that buys one full vCPU.
	MemoryPerVCPU = 1769
	// MinCPUQuota keeps tiny functions schedulable (1 % of a CPU).
	MinCPUQuota = 1000
)

// CPUQuota is the CFS quota per CPUPeriod for a sandbox of memoryMB: one
// full CPU at MemoryPerVCPU, proportionally less or more, at least
// MinCPUQuota and at most every one of the machine's cpus.
func CPUQuota(memoryMB, cpus int) int64 {
	q := int64(memoryMB) * CPUPeriod / MemoryPerVCPU
	q = max(q, MinCPUQuota)
	return min(q, int64(max(cpus, 1))*CPUPeriod)
}

// Bounds of Spec's sizes (Lambda: memory 128-10240 MB, /tmp 512-10240 MB;
// the floors are lower so that tests stay small, and each backend sets its
// own memory floor).
const (
	MaxMemoryMB    = 10240
	MinEphemeralMB = 1
	MaxEphemeralMB = 10240
)

// IDPattern is what a sandbox id looks like (Spec.ID).
var IDPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,63}$`)

// Validate checks a spec before a backend acts on it; minMemoryMB is the
// backend's floor. Errors wrap errdefs.ErrInvalid.
func (s Spec) Validate(minMemoryMB int) error {
	switch {
	case !IDPattern.MatchString(s.ID):
		return fmt.Errorf("%w: sandbox id %q: want [a-z0-9-], at most 64 characters", errdefs.ErrInvalid, s.ID)
	case s.CodeDir == "" || s.CodeDir[0] != '/':
		return fmt.Errorf("%w: code dir %q must be an absolute path", errdefs.ErrInvalid, s.CodeDir)
	case s.MemoryMB < minMemoryMB || s.MemoryMB > MaxMemoryMB:
		return fmt.Errorf("%w: memory %d MB out of [%d, %d]", errdefs.ErrInvalid, s.MemoryMB, minMemoryMB, MaxMemoryMB)
	case s.EphemeralMB < MinEphemeralMB || s.EphemeralMB > MaxEphemeralMB:
		return fmt.Errorf("%w: ephemeral storage %d MB out of [%d, %d]", errdefs.ErrInvalid, s.EphemeralMB, MinEphemeralMB, MaxEphemeralMB)
	case len(s.Hostname) > 64:
		return fmt.Errorf("%w: hostname longer than 64 bytes", errdefs.ErrInvalid)
	}
	return nil
}
