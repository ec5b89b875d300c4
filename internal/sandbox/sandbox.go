// Package sandbox defines the interface every sandbox backend implements and
// the conformance suite they all pass (package sandboxtest).
//
// A sandbox is one execution environment: an isolated set of processes whose
// first process is the agent (cmd/kindling-agent). The backend creates it,
// gives the worker a byte channel to the agent, enforces resource limits and
// tears it down. What travels over the channel (package agentproto) is not
// the backend's business.
//
// Lifecycle of a Sandbox:
//
//	Create ──> running ──(agent exits, is killed, OOM, Kill)──> exited ──Destroy──> destroyed
//	                └────────────────────Destroy────────────────────────────────────┘
//
// exited and destroyed are terminal for the processes; only destroyed has
// released every host resource (cgroups, mounts, directories). Destroy is
// idempotent and may be called in any state.
package sandbox

import (
	"context"
	"errors"
	"io"
)

// Spec describes the sandbox to create.
type Spec struct {
	// ID names the sandbox uniquely on this worker ([a-z0-9-], at most 64
	// characters). Host resources (cgroups, directories) are named after it.
	ID string
	// CodeDir is a host directory holding the unpacked function code. It
	// appears read-only at /var/task.
	CodeDir string
	// MemoryMB is the function's MemorySize: the memory limit of the whole
	// sandbox, and the basis of its CPU share (1769 MB = one vCPU).
	MemoryMB int
	// EphemeralMB is the size of the private, writable /tmp.
	EphemeralMB int
	// Hostname is the sandbox's UTS host name.
	Hostname string
}

// Stats are resource figures of a sandbox.
type Stats struct {
	// MaxMemoryBytes is the peak memory charged to the sandbox.
	MaxMemoryBytes int64
	// OOMKilled is true when the kernel killed a process of the sandbox
	// because it reached its memory limit.
	OOMKilled bool
}

// Sandbox is a running (or exited) execution environment. Methods are safe
// for concurrent use.
type Sandbox interface {
	// ID returns Spec.ID.
	ID() string
	// Conn is the channel to the agent. The agent writes the agentproto
	// handshake first. Closed by Destroy.
	Conn() io.ReadWriteCloser
	// Done is closed once the agent process has exited.
	Done() <-chan struct{}
	// Stats reads the sandbox's resource figures. Valid until Destroy.
	Stats() (Stats, error)
	// Kill stops every process of the sandbox at once. The sandbox is
	// exited after Done is closed.
	Kill() error
	// Destroy kills what still runs and releases every host resource.
	Destroy() error
}

// Backend creates sandboxes on this machine.
type Backend interface {
	// Name is the backend's name as given to --sandbox ("process", "gvisor").
	Name() string
	// Create starts a sandbox whose agent is running and connected to
	// Conn when it returns. The runtime is not started yet: that is the
	// agent's first instruction over the channel.
	Create(ctx context.Context, spec Spec) (Sandbox, error)
	// Reap removes what earlier runs of the server left behind
	// (processes, cgroups, mounts, directories). Called once at start.
	Reap() error
}

// Closer is implemented by backends that made something of their own at
// start (their parent cgroups). Close removes it once every sandbox of the
// backend has been destroyed; what is still in use stays (and Reap at the
// next start deals with it). Optional: callers check with a type assertion.
type Closer interface {
	Close() error
}

// Checkpointer is implemented by sandboxes that can save themselves
// (SnapStart). Checkpoint writes the sandbox's whole state (memory,
// processes, its /tmp) into imageDir, an empty directory; the sandbox has
// exited when it returns, successfully or not; Destroy it as usual. Call it
// only while the channel is quiet both ways: bytes in flight are not saved.
type Checkpointer interface {
	Checkpoint(ctx context.Context, imageDir string) error
}

// Freezer is implemented by sandboxes that can be suspended while idle, so
// that an idle sandbox costs no CPU (Lambda freezes an execution
// environment between invocations). It is optional: callers check for it
// with a type assertion; a backend whose idle sandboxes use no CPU of their
// own (the process backend) need not implement it.
//
// Freeze stops every process of the sandbox where it is and waits
// (bounded) until all are stopped; a failed Freeze leaves the sandbox
// thawed if it can. Thaw lets them run again. Both are idempotent. Call
// them only between invocations, while the channel is quiet, one at a
// time per sandbox; never hand a frozen sandbox work before Thaw
// succeeded (destroy it if Thaw fails). While frozen, Stats, Kill,
// Destroy and Checkpoint work as usual (they thaw as needed).
type Freezer interface {
	Freeze() error
	Thaw() error
}

// Restorer is implemented by backends that can start sandboxes from a
// Checkpointer's image. spec must have the layout (MemoryMB, EphemeralMB,
// CodeDir contents) of the checkpointed sandbox; ID and Hostname may differ.
// The restored agent sends no handshake: it continues where it was, now on
// the new sandbox's Conn, and waits for the worker to speak first. Many
// sandboxes may be restored from one image at once; the image is only read.
type Restorer interface {
	Restore(ctx context.Context, spec Spec, imageDir string) (Sandbox, error)
}

// ErrUnavailable reports that a backend cannot run on this machine; the
// wrapped message says what is missing and how to fix it.
var ErrUnavailable = errors.New("sandbox backend unavailable")
