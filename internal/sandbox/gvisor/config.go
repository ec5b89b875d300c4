package gvisor

import (
	"io"

	"kindling/internal/sandbox"
)

// Name is the backend's name as given to --sandbox.
const Name = "gvisor"

// Defaults of Config.
const (
	// DefaultRunsc is where scripts/build-runsc.sh puts runsc.
	DefaultRunsc        = "/var/lib/kindling/bin/runsc"
	DefaultRootFS       = "/var/lib/kindling/rootfs"
	DefaultCgroupParent = "kindling-gvisor"
	// DefaultUID and DefaultGID are Lambda's sbx_user1051.
	DefaultUID = 993
	DefaultGID = 993
)

// Inside the sandbox.
const (
	// EnvAgentFD names the agent's channel descriptor: its stdin (see the
	// package documentation).
	EnvAgentFD = "KINDLING_AGENT_FD"
	agentFD    = "0"
	// agentMount is the existing, empty directory of the root filesystem
	// on which the directory holding the agent is bound.
	agentMount = "/srv"
	// agentName is the agent's file name there.
	agentName = "kindling-agent"
)

// Names under StateDir that are not sandboxes (ids cannot start with a dot).
const (
	runscRootDir = ".runsc"
	agentDir     = ".agent"
)

// Checkpoint image format and restore mode (see the package
// documentation, "Checkpoint and restore"): an uncompressed image, whose
// memory is a separate page-aligned pages file, restored with the memory
// loaded in the background while the sandbox already runs (faults on pages
// not loaded yet are served first). runsc ignores --background for a
// compressed image.
const (
	checkpointCompression = "none"
	restoreBackground     = true
)

// Lambda's limits applied to every sandbox.
const (
	// nproc bounds the function's processes plus threads (Lambda: 1024),
	// as RLIMIT_NPROC, which the sentry enforces at fork and clone with
	// EAGAIN.
	nproc = 1024
	// hostPidsMax is pids.max of the sandbox's host cgroup: the host
	// tasks of the sentry, the gofer and the systrap stubs (one stub
	// process per address space of the function, plus threads). It must
	// stay above what nproc allows inside: reaching it first makes the
	// sentry fail to create a stub, and panic.
	hostPidsMax = 4 * nproc
	// nofile is RLIMIT_NOFILE (Lambda: 1024).
	nofile = 1024
	// cpuPeriod is the CFS period; the quota is proportional to memory.
	cpuPeriod = sandbox.CPUPeriod
	// minSentryQuota is the least CPU (per cpuPeriod) the sentry and gofer
	// get on top of the function's share: 25% of a CPU. See sandboxQuota.
	minSentryQuota = cpuPeriod / 4
)

// Config configures the backend.
type Config struct {
	// Runsc is the runsc binary. Default DefaultRunsc (build it with
	// scripts/build-runsc.sh).
	Runsc string
	// AgentPath is the host path of the agent binary (cmd/kindling-agent,
	// static). New copies it into StateDir, from where every sandbox sees
	// it read-only.
	AgentPath string
	// RootFS is the shared read-only base userland made by
	// scripts/build-rootfs.sh. Default DefaultRootFS.
	RootFS string
	// StateDir holds one directory per sandbox, runsc's state and the
	// agent's copy; it must be private to the server. Required.
	StateDir string
	// CgroupParent is the cgroup under which each sandbox gets
	// <CgroupParent>/<id> in every hierarchy. It must not be shared with
	// another server: Reap empties it. Default DefaultCgroupParent.
	CgroupParent string
	// UID and GID are the identity functions run as. Default 993.
	UID, GID int
	// AgentOutput, when set, receives what the agent itself (and runsc)
	// writes to stdout and stderr: its own failures, not the function's
	// logs, which travel over the channel. Whatever is set, the last few
	// KiB are kept per sandbox (see (*Sandbox).AgentOutput).
	AgentOutput io.Writer
	// RunscFlags are extra global runsc flags (e.g. "--debug",
	// "--debug-log=/tmp/runsc/"), for diagnosis only.
	RunscFlags []string
}

func (c *Config) setDefaults() {
	if c.Runsc == "" {
		c.Runsc = DefaultRunsc
	}
	if c.RootFS == "" {
		c.RootFS = DefaultRootFS
	}
	if c.CgroupParent == "" {
		c.CgroupParent = DefaultCgroupParent
	}
	if c.UID == 0 {
		c.UID = DefaultUID
	}
	if c.GID == 0 {
		c.GID = DefaultGID
	}
}

// idPattern is what a sandbox id looks like.
var idPattern = sandbox.IDPattern

// minMemoryMB is this backend's floor for Spec.MemoryMB.
const minMemoryMB = 64 // the sentry (and gofer, if any) need ~10-15 MB of it

func validateSpec(s sandbox.Spec) error { return s.Validate(minMemoryMB) }

// cpuQuota is the CFS quota for a sandbox of memoryMB (sandbox.CPUQuota).
func cpuQuota(memoryMB, cpus int) int64 { return sandbox.CPUQuota(memoryMB, cpus) }

// sandboxQuota is the CFS quota per cpuPeriod of a whole sandbox of
// memoryMB: the sentry, the gofer and the function together. The function's
// own instructions (the systrap stubs) are capped at cpuQuota in a child
// cgroup; on top of that share the sentry, which does the work a guest
// kernel and a VMM would, gets as much again, at least minSentryQuota: its
// fixed costs (~2.5% of a CPU while idle, ~1 ms per warm invoke of an echo
// function, the runtime's exec) would otherwise eat most of a small
// function's share and stall it at every CFS period (see the package
// documentation, "CPU"). At most every CPU of the machine.
func sandboxQuota(memoryMB, cpus int) int64 {
	share := cpuQuota(memoryMB, cpus)
	q := share + max(share, minSentryQuota)
	return min(q, int64(max(cpus, 1))*cpuPeriod)
}
