package agent

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"kindling/internal/agentproto"
)

// startSnapshot starts the test binary as a raw runtime in helper mode,
// with Start{Snapshot: true}.
func (w *worker) startSnapshot(mode string, env ...string) {
	w.t.Helper()
	self, err := os.Executable()
	if err != nil {
		w.t.Fatal(err)
	}
	env = append(env, helperEnv+"="+mode, "AWS_LAMBDA_INITIALIZATION_TYPE=snap-start", "AWS_LAMBDA_RUNTIME_API="+w.addr)
	w.send(agentproto.TypeStart, agentproto.StartMeta{
		Path: self, Args: []string{self, "-test.run=^$"}, Env: env, Dir: "/", Snapshot: true,
	}, nil)
}

// quiet fails the test if any frame arrives within d.
func (w *worker) quiet(d time.Duration) {
	w.t.Helper()
	select {
	case f, ok := <-w.frames:
		if !ok {
			w.t.Fatal("channel closed while it should be quiet")
		}
		w.t.Fatalf("got %v (meta %s, body %.300q) while the agent should hold its sends back", f.Type, f.Meta, f.Body)
	case <-time.After(d):
	}
}

// checkpoint reads frames up to Checkpoint and checks it.
func (w *worker) checkpoint(hooks bool) (agentproto.CheckpointMeta, string) {
	w.t.Helper()
	f, logs := w.expect(agentproto.TypeCheckpoint)
	m := decode[agentproto.CheckpointMeta](w.t, f)
	if m.Hooks != hooks || m.InitNanos <= 0 {
		w.t.Fatalf("checkpoint %+v, want hooks %v", m, hooks)
	}
	return m, logs
}

func (w *worker) restored() {
	w.t.Helper()
	w.send(agentproto.TypeRestored, agentproto.RestoredMeta{Seed: []byte("0123456789abcdef")}, nil)
}

// TestSnapshotRestoreNext: a runtime with hooks calls restore/next. The
// agent sends its init output, then Checkpoint, then nothing at all (the
// output the runtime writes meanwhile included) until Restored; then the
// held output, the runtime's answer to restore/next and Ready follow, and
// invocations work.
func TestSnapshotRestoreNext(t *testing.T) {
	dir := t.TempDir()
	w := startAgent(t)
	w.startSnapshot("snaphooks", helperDirEnv+"="+dir)
	_, logs := w.checkpoint(true)
	if !strings.Contains(logs, "init: snap starting\n") {
		t.Fatalf("init output not before the checkpoint: %q", logs)
	}

	// The runtime calls restore/next again and prints the answer: that
	// output stays in the sandbox while it is held.
	if err := os.WriteFile(filepath.Join(dir, "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if !waitFile(filepath.Join(dir, "written")) {
		t.Fatal("the runtime did not write its output")
	}
	w.quiet(300 * time.Millisecond)

	sent := time.Now()
	w.restored()
	f, logs := w.expect(agentproto.TypeReady)
	elapsed := time.Since(sent)
	held := strings.Index(logs, "second restore/next: 403 InvalidStateTransition\n")
	after := strings.Index(logs, "after restore\n")
	if held < 0 || after < held {
		t.Fatalf("logs before ready %q: want the held output, then the runtime's after-restore output", logs)
	}
	// Init counts from Restored.
	if m := decode[agentproto.ReadyMeta](t, f); m.InitNanos <= 0 || m.InitNanos > elapsed.Nanoseconds() {
		t.Fatalf("ready InitNanos %d, %v between Restored and Ready", m.InitNanos, elapsed)
	}

	w.invoke("req-1", `{"n":1}`)
	f, logs = w.expect(agentproto.TypeResponse)
	if m := decode[agentproto.ResultMeta](t, f); m.RequestID != "req-1" || string(f.Body) != `{"n":1}` {
		t.Fatalf("response %+v %s", m, f.Body)
	}
	if !strings.Contains(logs, "handling req-1\n") {
		t.Fatalf("logs %q", logs)
	}

	// A second Restored breaks the protocol.
	w.restored()
	if err := w.wait(); !errors.Is(err, ErrProtocol) {
		t.Fatalf("Run: %v", err)
	}
}

// TestSnapshotAtNext: a runtime without hooks is checkpointed at its first
// /next, which stays pending; Restored sends Ready at once, and the first
// event goes to that /next.
func TestSnapshotAtNext(t *testing.T) {
	w := startAgent(t)
	w.startSnapshot("snapnext")
	ck, logs := w.checkpoint(false)
	if !strings.Contains(logs, "init: no hooks\n") {
		t.Fatalf("init output not before the checkpoint: %q", logs)
	}
	// The helper sleeps 100ms during init.
	if ck.InitNanos < (100 * time.Millisecond).Nanoseconds() {
		t.Fatalf("checkpoint InitNanos %d", ck.InitNanos)
	}
	w.quiet(200 * time.Millisecond)

	sent := time.Now()
	w.restored()
	f, _ := w.expect(agentproto.TypeReady)
	elapsed := time.Since(sent)
	if m := decode[agentproto.ReadyMeta](t, f); m.InitNanos <= 0 || m.InitNanos > elapsed.Nanoseconds() {
		t.Fatalf("ready InitNanos %d, %v between Restored and Ready", m.InitNanos, elapsed)
	}
	for _, id := range []string{"req-1", "req-2"} {
		w.invoke(id, `{"id":"`+id+`"}`)
		f, logs := w.expect(agentproto.TypeResponse)
		if m := decode[agentproto.ResultMeta](t, f); m.RequestID != id || string(f.Body) != `{"id":"`+id+`"}` {
			t.Fatalf("response %+v %s", m, f.Body)
		}
		if !strings.Contains(logs, "handling "+id+"\n") {
			t.Fatalf("logs %q", logs)
		}
	}
}

// TestSnapshotRestoreError: after-restore hooks fail; restore/error becomes
// InitError with the runtime's type, Runtime.AfterRestoreError by default.
func TestSnapshotRestoreError(t *testing.T) {
	for _, tc := range []struct{ hdr, want string }{
		{"Runtime.CustomHookError", "Runtime.CustomHookError"},
		{"", "Runtime.AfterRestoreError"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			dir := t.TempDir()
			w := startAgent(t)
			w.startSnapshot("snaprestoreerror", helperDirEnv+"="+dir, helperErrTypeEnv+"="+tc.hdr)
			w.checkpoint(true)
			// The helper's second restore/next: not the point here,
			// but it must come after the first.
			if err := os.WriteFile(filepath.Join(dir, "go"), nil, 0o644); err != nil {
				t.Fatal(err)
			}
			if !waitFile(filepath.Join(dir, "written")) {
				t.Fatal("the runtime did not write its output")
			}
			w.restored()
			f, logs := w.expect(agentproto.TypeInitError)
			if m := decode[agentproto.ErrorMeta](t, f); m.ErrorType != tc.want || m.RequestID != "" {
				t.Fatalf("init error %+v", m)
			}
			if string(f.Body) != helperRestoreErrorDoc {
				t.Fatalf("document %s", f.Body)
			}
			if !strings.Contains(logs, "after restore\n") {
				t.Fatalf("logs before the init error %q", logs)
			}
			f, logs = w.expect(agentproto.TypeExit)
			if m := decode[agentproto.ExitMeta](t, f); m.Code != 1 {
				t.Fatalf("exit %+v", m)
			}
			if !strings.Contains(logs, "second restore/error: 403 InvalidStateTransition <nil>\n") {
				t.Fatalf("logs before exit %q", logs)
			}
		})
	}
}

// TestRestoreNextNotSupported: without Snapshot, restore/next answers 403
// Runtime.NotSupported as it always did.
func TestRestoreNextNotSupported(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	w := startAgent(t)
	w.start(self, []string{self, "-test.run=^$"}, helperEnv+"=restorenext")
	f, logs := w.expect(agentproto.TypeExit)
	if m := decode[agentproto.ExitMeta](t, f); m.Code != 0 {
		t.Fatalf("exit %+v, logs %q", m, logs)
	}
	if logs != "restore/next: 403 Runtime.NotSupported\n" {
		t.Fatalf("logs %q", logs)
	}
	// And Restored is a protocol violation.
	w.restored()
	if err := w.wait(); !errors.Is(err, ErrProtocol) {
		t.Fatalf("Run: %v", err)
	}
}

func TestSnapshotProtocolViolations(t *testing.T) {
	for _, tc := range []struct {
		name  string
		frame func(w *worker)
	}{
		{"restored-before-checkpoint", func(w *worker) { w.restored() }},
		{"invoke-before-restored", func(w *worker) { w.invoke("too-early", "{}") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := startAgent(t)
			// A runtime that never reaches the checkpoint point.
			w.send(agentproto.TypeStart, agentproto.StartMeta{
				Path: "/bin/sh", Args: []string{"sh", "-c", "sleep 60"}, Dir: "/", Snapshot: true,
			}, nil)
			tc.frame(w)
			if err := w.wait(); !errors.Is(err, ErrProtocol) {
				t.Fatalf("Run: %v", err)
			}
		})
	}

	// Restored before Start: no snapshot mode.
	w := startAgent(t)
	w.restored()
	if err := w.wait(); !errors.Is(err, ErrProtocol) {
		t.Fatalf("Run: %v", err)
	}
}

// TestSnapshotChannelCloseWhileHeld: the worker closes the channel while
// sends are held back (output pending): Run returns nil, nothing hangs.
func TestSnapshotChannelCloseWhileHeld(t *testing.T) {
	dir := t.TempDir()
	w := startAgent(t)
	w.startSnapshot("snaphooks", helperDirEnv+"="+dir)
	w.checkpoint(true)
	if err := os.WriteFile(filepath.Join(dir, "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if !waitFile(filepath.Join(dir, "written")) {
		t.Fatal("the runtime did not write its output")
	}
	if err := w.conn.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.wait(); err != nil {
		t.Fatalf("Run: %v", err)
	}
}
