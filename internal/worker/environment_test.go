package worker

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"kindling/internal/agentproto"
	"kindling/internal/clock"
	"kindling/internal/config"
	"kindling/internal/invoke"
	"kindling/internal/sandbox"
)

// fakeSandbox plays the agent over a net.Pipe with a script per test.
type fakeSandbox struct {
	id     string
	host   net.Conn
	done   chan struct{}
	once   sync.Once
	oom    bool
	killed chan struct{}
	kOnce  sync.Once
}

func (s *fakeSandbox) ID() string               { return s.id }
func (s *fakeSandbox) Conn() io.ReadWriteCloser { return s.host }
func (s *fakeSandbox) Done() <-chan struct{}    { return s.done }
func (s *fakeSandbox) Stats() (sandbox.Stats, error) {
	return sandbox.Stats{MaxMemoryBytes: 20 << 20, OOMKilled: s.oom}, nil
}
func (s *fakeSandbox) Kill() error {
	s.kOnce.Do(func() { close(s.killed) })
	s.host.Close()
	return nil
}
func (s *fakeSandbox) Destroy() error {
	s.Kill()
	s.once.Do(func() { close(s.done) })
	return nil
}

// agentScript is the fake agent: it gets the start frame and then the
// decoder/encoder to play its part.
type agentScript func(dec *agentproto.Decoder, enc *agentproto.Encoder, sb *fakeSandbox)

type fakeBackend struct {
	script agentScript
	last   *fakeSandbox
}

func (b *fakeBackend) Name() string { return "fake" }
func (b *fakeBackend) Reap() error  { return nil }
func (b *fakeBackend) Create(ctx context.Context, spec sandbox.Spec) (sandbox.Sandbox, error) {
	host, agent := net.Pipe()
	sb := &fakeSandbox{id: spec.ID, host: host, done: make(chan struct{}), killed: make(chan struct{})}
	b.last = sb
	go func() {
		defer agent.Close()
		if agentproto.WriteHandshake(agent) != nil {
			return
		}
		dec, enc := agentproto.NewDecoder(agent), agentproto.NewEncoder(agent)
		f, err := dec.Read()
		if err != nil || f.Type != agentproto.TypeStart {
			return
		}
		b.script(dec, enc, sb)
	}()
	return sb, nil
}

func newTestWorker(t *testing.T, script agentScript) (*Worker, *config.Function, *fakeBackend) {
	t.Helper()
	code := t.TempDir()
	if err := os.WriteFile(filepath.Join(code, "bootstrap"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	be := &fakeBackend{script: script}
	w := New(Config{
		Backend:  be,
		Region:   "us-east-1",
		Clock:    clock.Scaled(0.001),
		CodeDir:  func(string) (string, error) { return code, nil },
		MemoryMB: 1024,
	})
	fn := &config.Function{Account: "000000000000", Region: "us-east-1", Name: "f", Version: "$LATEST",
		MemoryMB: 128, TimeoutSec: 1, EphemeralMB: 512, CodeKey: "k", RevisionID: "r"}
	return w, fn, be
}

func ready(enc *agentproto.Encoder) {
	enc.Write(agentproto.TypeLog, nil, []byte("init output\n"))
	enc.Write(agentproto.TypeReady, agentproto.ReadyMeta{InitNanos: 1500000}, nil)
}

func TestInvokeEchoWithTail(t *testing.T) {
	w, fn, _ := newTestWorker(t, func(dec *agentproto.Decoder, enc *agentproto.Encoder, _ *fakeSandbox) {
		ready(enc)
		for {
			f, err := dec.Read()
			if err != nil {
				return
			}
			var m agentproto.InvokeMeta
			f.DecodeMeta(&m)
			enc.Write(agentproto.TypeLog, nil, []byte("handling "+m.RequestID+"\n"))
			enc.Write(agentproto.TypeResponse, agentproto.ResultMeta{RequestID: m.RequestID}, f.Body)
		}
	})
	env, err := w.Create(context.Background(), fn)
	if err != nil {
		t.Fatal(err)
	}
	defer env.Destroy()
	for i, id := range []string{"req-1", "req-2"} {
		res, healthy, _ := env.Invoke(context.Background(), &invoke.Request{RequestID: id, Function: fn, Payload: []byte(`{"x":1}`), Tail: true})
		if !healthy || res.FunctionError != "" || string(res.Payload) != `{"x":1}` {
			t.Fatalf("invoke %d: healthy=%v %+v", i, healthy, res)
		}
		log := string(res.LogTail)
		for _, want := range []string{"START RequestId: " + id + " Version: $LATEST\n", "handling " + id + "\n", "END RequestId: " + id + "\n", "REPORT RequestId: " + id + "\tDuration: ", "\tMemory Size: 128 MB\tMax Memory Used: 20 MB\t"} {
			if !strings.Contains(log, want) {
				t.Errorf("invoke %d: tail lacks %q:\n%s", i, want, log)
			}
		}
		cold := i == 0
		if strings.Contains(log, "Init Duration: 1.50 ms") != cold || strings.Contains(log, "init output") != cold {
			t.Errorf("invoke %d (cold=%v): init lines wrong:\n%s", i, cold, log)
		}
	}
}

func TestInvokeTimeoutKills(t *testing.T) {
	w, fn, be := newTestWorker(t, func(dec *agentproto.Decoder, enc *agentproto.Encoder, sb *fakeSandbox) {
		ready(enc)
		dec.Read() // the invoke, never answered
		<-sb.killed
	})
	env, err := w.Create(context.Background(), fn)
	if err != nil {
		t.Fatal(err)
	}
	defer env.Destroy()
	res, healthy, _ := env.Invoke(context.Background(), &invoke.Request{RequestID: "r", Function: fn, Tail: true})
	if healthy {
		t.Fatal("timed-out environment reported healthy")
	}
	select {
	case <-be.last.killed:
	default:
		t.Fatal("sandbox not killed on timeout")
	}
	var doc struct{ ErrorMessage, ErrorType string }
	if err := json.Unmarshal(res.Payload, &doc); err != nil {
		t.Fatal(err)
	}
	if res.FunctionError != "Unhandled" || !strings.HasSuffix(doc.ErrorMessage, " r Task timed out after 1.00 seconds") {
		t.Fatalf("timeout result %+v %q", res, res.Payload)
	}
	if !strings.Contains(string(res.LogTail), "Task timed out after 1.00 seconds") {
		t.Fatalf("tail lacks the timeout line:\n%s", res.LogTail)
	}
}

func TestRuntimeExitAndOOM(t *testing.T) {
	for _, oom := range []bool{false, true} {
		w, fn, _ := newTestWorker(t, func(dec *agentproto.Decoder, enc *agentproto.Encoder, sb *fakeSandbox) {
			sb.oom = oom
			ready(enc)
			dec.Read()
			if oom {
				enc.Write(agentproto.TypeExit, agentproto.ExitMeta{Code: -1, Signal: "killed"}, nil)
			} else {
				enc.Write(agentproto.TypeExit, agentproto.ExitMeta{Code: 2}, nil)
			}
		})
		env, err := w.Create(context.Background(), fn)
		if err != nil {
			t.Fatal(err)
		}
		res, healthy, _ := env.Invoke(context.Background(), &invoke.Request{RequestID: "r", Function: fn})
		env.Destroy()
		var doc struct{ ErrorMessage, ErrorType string }
		json.Unmarshal(res.Payload, &doc)
		wantType, wantMsg := "Runtime.ExitError", "RequestId: r Error: Runtime exited with error: exit status 2"
		if oom {
			wantType, wantMsg = "Runtime.OutOfMemory", "RequestId: r Error: Runtime exited with error: signal: killed"
		}
		if healthy || doc.ErrorType != wantType || doc.ErrorMessage != wantMsg {
			t.Errorf("oom=%v: healthy=%v %+v", oom, healthy, doc)
		}
	}
}

func TestInitErrorAndInitTimeout(t *testing.T) {
	w, fn, _ := newTestWorker(t, func(dec *agentproto.Decoder, enc *agentproto.Encoder, _ *fakeSandbox) {
		enc.Write(agentproto.TypeInitError, agentproto.ErrorMeta{ErrorType: "Runtime.Custom"}, []byte(`{"errorMessage":"bad config","errorType":"Runtime.Custom"}`))
		dec.Read()
	})
	env, err := w.Create(context.Background(), fn)
	if err != nil {
		t.Fatal(err)
	}
	res, healthy, _ := env.Invoke(context.Background(), &invoke.Request{RequestID: "r", Function: fn})
	env.Destroy()
	if healthy || res.FunctionError != "Unhandled" || !strings.Contains(string(res.Payload), "bad config") {
		t.Fatalf("init error: healthy=%v %+v", healthy, res)
	}

	// Never ready: the (scaled) init limit ends it.
	w, fn, _ = newTestWorker(t, func(dec *agentproto.Decoder, enc *agentproto.Encoder, sb *fakeSandbox) {
		<-sb.killed
	})
	env, err = w.Create(context.Background(), fn)
	if err != nil {
		t.Fatal(err)
	}
	res, healthy, _ = env.Invoke(context.Background(), &invoke.Request{RequestID: "r", Function: fn})
	env.Destroy()
	if healthy || !strings.Contains(string(res.Payload), "Runtime.InitTimeout") {
		t.Fatalf("init timeout: healthy=%v %s", healthy, res.Payload)
	}
}

func TestCapacityAndEntrypoint(t *testing.T) {
	w, fn, _ := newTestWorker(t, func(dec *agentproto.Decoder, enc *agentproto.Encoder, sb *fakeSandbox) { <-sb.killed })
	big := *fn
	big.MemoryMB = 2048
	if _, err := w.Create(context.Background(), &big); err == nil {
		t.Fatal("created a sandbox larger than the worker")
	}
	env, err := w.Create(context.Background(), fn)
	if err != nil {
		t.Fatal(err)
	}
	if _, used := w.Capacity(); used != 128 {
		t.Fatalf("used %d MB, want 128", used)
	}
	env.Destroy()
	env.Destroy()
	if _, used := w.Capacity(); used != 0 {
		t.Fatalf("used %d MB after destroy, want 0", used)
	}
	w.cfg.CodeDir = func(string) (string, error) { return t.TempDir(), nil }
	if _, err := w.Create(context.Background(), fn); err != ErrInvalidEntrypoint {
		t.Fatalf("code without bootstrap: %v", err)
	}
}

func TestBilledMs(t *testing.T) {
	for d, want := range map[time.Duration]int64{0: 1, 300 * time.Microsecond: 1, time.Millisecond: 1, 1001 * time.Microsecond: 2, 12 * time.Millisecond: 12} {
		if got := billedMs(d); got != want {
			t.Errorf("billedMs(%v) = %d, want %d", d, got, want)
		}
	}
}
