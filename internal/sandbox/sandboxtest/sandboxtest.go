// Package sandboxtest is the conformance suite every sandbox backend
// passes, written once (containerd's snapshots/testsuite is the model).
//
// The suite does not use the real agent: it builds a probe agent
// (sandboxtest/probeagent) that starts the way the agent does
// (process.InitIfRequested, then the agentproto handshake) and then answers
// questions about its surroundings over the channel (package probeproto):
// what it can read, write, reach, allocate, spawn and call. Each case
// creates sandboxes with that probe as their agent and checks the answers
// and the host's state afterwards.
//
// Cases: lifecycle (handshake, exit, Kill, idempotent Destroy), limits
// (memory with the OOM killer, processes, /tmp size, /tmp not charged as
// memory), isolation (host
// files, network, processes, identity and capabilities, read-only code,
// denied system calls, environment, host name) and cleanup (Destroy, and
// Reap after a simulated server crash).
//
// Host-side checks (cgroups, state directories, mounts) need to know where a
// backend keeps a sandbox's host resources; a backend that implements
// HostPather gets them, others skip those checks with a logged reason.
package sandboxtest

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"go/build"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"kindling/internal/agentproto"
	"kindling/internal/sandbox"
	"kindling/internal/sandbox/sandboxtest/probeproto"
)

// HostPather is implemented by backends whose host resources the suite can
// inspect: the cgroup directories and the state directory of sandbox id.
type HostPather interface {
	HostPaths(id string) (cgroups []string, stateDir string)
}

// ProbePackage is the import path of the probe agent.
const ProbePackage = "kindling/internal/sandbox/sandboxtest/probeagent"

// Bounds of the suite's waits.
const (
	handshakeTimeout = 10 * time.Second
	replyTimeout     = 30 * time.Second
	exitTimeout      = 10 * time.Second
)

// Run runs the suite. It first builds the probe agent to the path probe
// (e.g. filepath.Join(t.TempDir(), "probe")); newBackend must return a
// backend whose agent is that file. newBackend is called once per case
// with the case's t; when it is called again with the same t it must return
// a backend sharing the first one's host state (state directory, cgroup
// parent), as a restarted server would: the Reap case relies on it. Cases
// must not see each other's sandboxes (give each t its own state), since
// the Reap case calls Reap.
func Run(t *testing.T, newBackend func(t *testing.T) sandbox.Backend, probe string) {
	BuildProbe(t, probe)
	cases := []struct {
		name string
		f    func(t *testing.T, h *harness)
	}{
		{"Lifecycle", testLifecycle},
		{"Kill", testKill},
		{"Concurrent", testConcurrent},
		{"MemoryLimit", testMemoryLimit},
		{"ProcessLimit", testProcessLimit},
		{"ForkBomb", testForkBomb},
		{"TmpSize", testTmpSize},
		{"TmpNotMemory", testTmpNotMemory},
		{"HostFiles", testHostFiles},
		{"Network", testNetwork},
		{"Processes", testProcesses},
		{"Identity", testIdentity},
		{"Filesystem", testFilesystem},
		{"DeniedCalls", testDeniedCalls},
		{"Cleanup", testCleanup},
		{"Reap", testReap},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.f(t, &harness{t: t, newBackend: newBackend, b: newBackend(t)})
		})
	}
}

// BuildProbe builds the probe agent (static, CGO_ENABLED=0) to path.
func BuildProbe(tb testing.TB, path string) {
	tb.Helper()
	// go test puts GOROOT/bin first in PATH; go/build knows it otherwise.
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(build.Default.GOROOT, "bin", "go")
	}
	cmd := exec.Command(goTool, "build", "-o", path, ProbePackage)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("build probe agent: %v\n%s", err, out)
	}
}

// harness creates sandboxes for one case and destroys them at its end.
type harness struct {
	t          *testing.T
	newBackend func(t *testing.T) sandbox.Backend
	b          sandbox.Backend
}

func (h *harness) spec() sandbox.Spec                      { return NewSpec(h.t) }
func (h *harness) create(spec sandbox.Spec) *Probe         { h.t.Helper(); return Start(h.t, h.b, spec) }
func (h *harness) start(spec sandbox.Spec) (*Probe, error) { return start(h.t, h.b, spec) }

// specSeq numbers the ids NewSpec makes.
var specSeq atomic.Int64

// NewSpec returns a Spec with a fresh id and code directory (holding a
// "bootstrap" script), 256 MB of memory and 64 MB of /tmp. The code
// directory is world-writable so that only the read-only mount stops
// writes to it.
func NewSpec(t *testing.T) sandbox.Spec {
	t.Helper()
	code := t.TempDir()
	if err := os.WriteFile(filepath.Join(code, "bootstrap"), []byte("#!/bin/sh\necho hello\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(code, 0o777); err != nil {
		t.Fatal(err)
	}
	name := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			return r
		}
		return '-'
	}, strings.ToLower(t.Name()))
	if len(name) > 40 {
		name = name[len(name)-40:]
	}
	id := strings.Trim(fmt.Sprintf("t%d-%s-%d", os.Getpid(), name, specSeq.Add(1)), "-")
	return sandbox.Spec{ID: id, CodeDir: code, MemoryMB: 256, EphemeralMB: 64, Hostname: "probe-host"}
}

// Start creates a sandbox whose agent is the probe (b must have been made
// with it as its agent), reads the handshake and destroys the sandbox when
// t ends.
func Start(t *testing.T, b sandbox.Backend, spec sandbox.Spec) *Probe {
	t.Helper()
	p, err := start(t, b, spec)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// start is Start for any goroutine: it returns its error.
func start(t *testing.T, b sandbox.Backend, spec sandbox.Spec) (*Probe, error) {
	sb, err := b.Create(context.Background(), spec)
	if err != nil {
		return nil, fmt.Errorf("Create(%s): %w", spec.ID, err)
	}
	t.Cleanup(func() {
		if err := sb.Destroy(); err != nil {
			t.Errorf("Destroy(%s) at cleanup: %v", spec.ID, err)
		}
	})
	p := &Probe{t: t, Sandbox: sb, r: bufio.NewReader(sb.Conn()), spec: spec}
	if err := p.deadline(handshakeTimeout, func() error { return agentproto.ReadHandshake(p.r) }); err != nil {
		return nil, fmt.Errorf("handshake of %s: %w%s", spec.ID, err, agentOutput(sb))
	}
	return p, nil
}

// hostPaths returns the backend's HostPaths, or skips the check.
func (h *harness) hostPaths(id string) (cgroups []string, stateDir string, ok bool) {
	hp, ok := h.b.(HostPather)
	if !ok {
		h.t.Logf("backend %s does not implement HostPather: host-side checks skipped", h.b.Name())
		return nil, "", false
	}
	c, s := hp.HostPaths(id)
	return c, s, true
}

// Probe is a sandbox whose agent is the probe.
type Probe struct {
	sandbox.Sandbox
	t    *testing.T
	r    *bufio.Reader
	spec sandbox.Spec
}

// deadline runs f, a read or write on the channel, failing after d. It
// uses the connection's deadline when it has one (a net.Conn) and a timer
// otherwise.
func (p *Probe) deadline(d time.Duration, f func() error) error {
	if c, ok := p.Conn().(interface{ SetDeadline(time.Time) error }); ok {
		if err := c.SetDeadline(time.Now().Add(d)); err != nil {
			return err
		}
		return f()
	}
	errc := make(chan error, 1)
	go func() { errc <- f() }()
	select {
	case err := <-errc:
		return err
	case <-time.After(d):
		return fmt.Errorf("no answer within %v", d)
	}
}

// Try sends a command and returns the probe's reply, or the error that
// stopped it (io.EOF when the probe died).
func (p *Probe) Try(c probeproto.Command) (probeproto.Reply, error) {
	var r probeproto.Reply
	b, err := json.Marshal(c)
	if err != nil {
		return r, err
	}
	err = p.deadline(replyTimeout, func() error {
		if _, err := p.Conn().Write(append(b, '\n')); err != nil {
			return err
		}
		line, err := p.r.ReadBytes('\n')
		if err != nil {
			return err
		}
		return json.Unmarshal(line, &r)
	})
	return r, err
}

// Do sends a command and fails the test if no reply comes.
func (p *Probe) Do(c probeproto.Command) probeproto.Reply {
	p.t.Helper()
	r, err := p.Try(c)
	if err != nil {
		p.t.Fatalf("probe %s: %v%s", c.Op, err, agentOutput(p.Sandbox))
	}
	return r
}

// waitDone waits for the agent to exit.
func waitDone(t *testing.T, sb sandbox.Sandbox, d time.Duration) {
	t.Helper()
	select {
	case <-sb.Done():
	case <-time.After(d):
		t.Fatalf("sandbox %s still running after %v", sb.ID(), d)
	}
}

// agentOutput returns the agent's own output when the backend keeps it.
func agentOutput(sb sandbox.Sandbox) string {
	if o, ok := sb.(interface{ AgentOutput() []byte }); ok {
		if b := o.AgentOutput(); len(b) > 0 {
			return "\nagent output:\n" + string(b)
		}
	}
	return ""
}

// isEOF reports whether err means the probe's end of the channel closed.
func isEOF(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		strings.Contains(fmt.Sprint(err), "connection reset")
}
