package process

import (
	"encoding/json"
	"fmt"
	"io"

	"kindling/internal/sandbox"
)

// Name is the backend's name as given to --sandbox.
const Name = "process"

// Root filesystem stamp. scripts/build-rootfs.sh writes StampFile at the
// top of the tree with a "format=N" line; New accepts only RootFSFormat.
const (
	StampFile    = ".kindling-rootfs"
	RootFSFormat = 2
)

// The environment between Create and the agent.
const (
	// EnvAgentFD names the agent's end of the channel (always 3).
	EnvAgentFD = "KINDLING_AGENT_FD"
	// EnvInit carries the set-up parameters (JSON, see initParams) to
	// InitIfRequested, which unsets it.
	EnvInit = "KINDLING_PROCESS_INIT"
)

// Defaults of Config.
const (
	DefaultCgroupParent = "kindling"
	DefaultRootFS       = "/var/lib/kindling/rootfs"
	// DefaultUID and DefaultGID are Lambda's sbx_user1051.
	DefaultUID = 993
	DefaultGID = 993
)

// Lambda's limits applied to every sandbox.
const (
	// pidsMax bounds processes plus threads (Lambda: 1024).
	pidsMax = 1024
	// cpuPeriod is the CFS period; the quota is proportional to memory.
	cpuPeriod = sandbox.CPUPeriod
)

// Config configures the backend.
type Config struct {
	// AgentPath is the host path of the agent binary (cmd/kindling-agent,
	// static). It is executed directly from the host, before the sandbox's
	// root is switched.
	AgentPath string
	// AgentArgs follow the path on the agent's command line, e.g.
	// []string{"agent"} when the agent is the server's own binary.
	AgentArgs []string
	// RootFS is the shared read-only base userland made by
	// scripts/build-rootfs.sh. Default DefaultRootFS.
	RootFS string
	// StateDir holds one directory per sandbox (DATA_DIR/sandboxes); it
	// must be private to the server. Required.
	StateDir string
	// CgroupParent is the cgroup under which each sandbox gets
	// <CgroupParent>/<id> in every controller. It must not be shared with
	// another server: Reap empties it. Default DefaultCgroupParent.
	CgroupParent string
	// UID and GID are the identity functions run as. Default 993.
	UID, GID int
	// MemoryTmp puts /tmp on a tmpfs instead of a per-sandbox ext4 image:
	// Create is cheaper (no image, no loop device) but whatever a function
	// writes to /tmp then counts against its MemorySize, unlike Lambda's.
	MemoryTmp bool
	// AgentOutput, when set, receives what the agent itself writes to
	// stdout and stderr (its own failures, not the function's logs, which
	// travel over the channel). Whatever is set, the last few KiB are kept
	// per sandbox (see (*Sandbox).AgentOutput).
	AgentOutput io.Writer
}

func (c *Config) setDefaults() {
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
const minMemoryMB = 16

func validateSpec(s sandbox.Spec) error { return s.Validate(minMemoryMB) }

// cpuQuota is the CFS quota for a sandbox of memoryMB (sandbox.CPUQuota).
func cpuQuota(memoryMB, cpus int) int64 { return sandbox.CPUQuota(memoryMB, cpus) }

// initVersion is bumped when initParams changes incompatibly; an agent
// built from another version refuses to run rather than half set up.
const initVersion = 1

// initParams is what Create tells InitIfRequested, JSON in EnvInit.
type initParams struct {
	Version int `json:"v"`
	// RootFS is bind-mounted read-only on Root, the per-sandbox mount
	// point, which then becomes "/".
	RootFS string `json:"rootfs"`
	Root   string `json:"root"`
	// CodeDir appears read-only at /var/task.
	CodeDir string `json:"code"`
	// TmpMB sizes /tmp. With TmpDisk, /tmp is the ext4 loop device that
	// comes with the go-ahead (see tmpdisk_linux.go); otherwise a tmpfs.
	TmpMB   int  `json:"tmpMB"`
	TmpDisk bool `json:"tmpDisk,omitempty"`
	// ShmMB sizes /dev/shm.
	ShmMB    int    `json:"shmMB"`
	Hostname string `json:"hostname"`
	UID      int    `json:"uid"`
	GID      int    `json:"gid"`
	// Trace makes the set-up report its stage timings (see trace.go).
	Trace bool `json:"trace,omitempty"`
}

func (p initParams) encode() (string, error) {
	b, err := json.Marshal(p)
	return string(b), err
}

func decodeInitParams(s string) (initParams, error) {
	var p initParams
	if err := json.Unmarshal([]byte(s), &p); err != nil {
		return p, fmt.Errorf("bad %s: %v", EnvInit, err)
	}
	if p.Version != initVersion {
		return p, fmt.Errorf("%s version %d, this agent speaks %d", EnvInit, p.Version, initVersion)
	}
	if p.RootFS == "" || p.Root == "" || p.CodeDir == "" || p.TmpMB <= 0 || p.UID <= 0 || p.GID <= 0 {
		return p, fmt.Errorf("incomplete %s: %s", EnvInit, s)
	}
	return p, nil
}
