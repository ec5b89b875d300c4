package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"kindling/internal/agentproto"
)

// echoBin is the aws-lambda-go function of testdata/echo, built once.
var echoBin string

// helperEnv makes the test binary act as a raw runtime (helper_test.go).
const helperEnv = "KINDLING_AGENT_TEST_RUNTIME"

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(helperRuntime(mode))
	}
	// Built before any Run: a running agent reaps every child of the
	// process, which would steal exec.Cmd's.
	dir, err := os.MkdirTemp("", "agent-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	echoBin = filepath.Join(dir, "echo")
	cmd := exec.Command("go", "build", "-o", echoBin, "./testdata/echo")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building testdata/echo: %v\n%s", err, out)
		os.Exit(1)
	}
	// Orphans of the runtimes become ours, as they would be the agent's
	// as PID 1 of a pid namespace (TestOrphanReaped).
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	if err := os.RemoveAll(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	os.Exit(code)
}

const waitFor = 30 * time.Second

// worker plays the worker's side of the channel.
type worker struct {
	t      testing.TB
	conn   net.Conn
	enc    *agentproto.Encoder
	frames chan agentproto.Frame
	runErr chan error
	addr   string // Runtime API address
}

func socketpair(t testing.TB) (net.Conn, net.Conn) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	var conns [2]net.Conn
	for i, fd := range fds {
		f := os.NewFile(uintptr(fd), "socketpair")
		c, err := net.FileConn(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		conns[i] = c
	}
	return conns[0], conns[1]
}

func startAgent(t testing.TB) *worker {
	t.Helper()
	ours, theirs := socketpair(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	w := &worker{t: t, conn: ours, frames: make(chan agentproto.Frame, 1024), runErr: make(chan error, 1), addr: ln.Addr().String()}
	go func() {
		w.runErr <- Run(context.Background(), Config{Conn: theirs, Listener: ln, Logf: t.Logf})
	}()
	if err := agentproto.ReadHandshake(ours); err != nil {
		t.Fatal(err)
	}
	w.enc = agentproto.NewEncoder(ours)
	go func() {
		defer close(w.frames)
		dec := agentproto.NewDecoder(ours)
		for {
			f, err := dec.Read()
			if err != nil {
				return
			}
			w.frames <- f
		}
	}()
	t.Cleanup(func() {
		if err := ours.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			t.Error(err)
		}
		if err := w.wait(); err != nil && !errors.Is(err, ErrProtocol) {
			t.Errorf("Run: %v", err)
		}
	})
	return w
}

// wait waits for Run to return and returns its error.
func (w *worker) wait() error {
	w.t.Helper()
	select {
	case err := <-w.runErr:
		w.runErr <- err
		return err
	case <-time.After(waitFor):
		w.t.Fatal("Run did not return")
		return nil
	}
}

func (w *worker) send(typ agentproto.Type, meta any, body []byte) {
	w.t.Helper()
	if err := w.enc.Write(typ, meta, body); err != nil {
		w.t.Fatal(err)
	}
}

func (w *worker) start(path string, args []string, env ...string) {
	w.t.Helper()
	env = append(env, "AWS_LAMBDA_RUNTIME_API="+w.addr)
	w.send(agentproto.TypeStart, agentproto.StartMeta{Path: path, Args: args, Env: env, Dir: "/"}, nil)
}

func (w *worker) invoke(id, payload string) {
	w.t.Helper()
	w.send(agentproto.TypeInvoke, agentproto.InvokeMeta{
		RequestID:   id,
		DeadlineMs:  time.Now().Add(time.Minute).UnixMilli(),
		FunctionARN: "arn:aws:lambda:us-east-1:000000000000:function:echo",
		TraceID:     "Root=1-5759e988-bd862e3fe1be46a994272793",
	}, []byte(payload))
}

// expect reads frames until one of type typ, collecting the Log bytes
// before it. Any other frame type fails the test.
func (w *worker) expect(typ agentproto.Type) (agentproto.Frame, string) {
	w.t.Helper()
	var logs bytes.Buffer
	timeout := time.After(waitFor)
	for {
		select {
		case f, ok := <-w.frames:
			if !ok {
				w.t.Fatalf("channel closed waiting for %v; logs so far:\n%s", typ, logs.String())
			}
			switch f.Type {
			case typ:
				return f, logs.String()
			case agentproto.TypeLog:
				if len(f.Body) == 0 || len(f.Body) > maxLogFrame {
					w.t.Fatalf("log frame of %d bytes", len(f.Body))
				}
				logs.Write(f.Body)
			default:
				w.t.Fatalf("got %v (meta %s, body %.300s) waiting for %v; logs:\n%s", f.Type, f.Meta, f.Body, typ, logs.String())
			}
		case <-timeout:
			w.t.Fatalf("no %v frame; logs so far:\n%s", typ, logs.String())
		}
	}
}

func decode[T any](t testing.TB, f agentproto.Frame) T {
	t.Helper()
	var v T
	if err := f.DecodeMeta(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// startEcho starts testdata/echo and waits for Ready.
func startEcho(t testing.TB) *worker {
	t.Helper()
	w := startAgent(t)
	w.start(echoBin, nil)
	f, logs := w.expect(agentproto.TypeReady)
	if m := decode[agentproto.ReadyMeta](t, f); m.InitNanos <= 0 {
		t.Fatalf("InitNanos %d", m.InitNanos)
	}
	if !strings.Contains(logs, "init: echo starting\n") {
		t.Fatalf("init output not before ready: %q", logs)
	}
	return w
}

func TestEchoRoundTrip(t *testing.T) {
	w := startEcho(t)
	for i := range 3 {
		id := "req-" + strconv.Itoa(i)
		payload := fmt.Sprintf(`{"mode":"echo","log":"hello %d","n":%d}`, i, i)
		w.invoke(id, payload)
		f, logs := w.expect(agentproto.TypeResponse)
		if m := decode[agentproto.ResultMeta](t, f); m.RequestID != id {
			t.Fatalf("response for %q", m.RequestID)
		}
		if string(f.Body) != payload {
			t.Fatalf("response %s, want %s", f.Body, payload)
		}
		// Everything the handler printed came before the response.
		for _, want := range []string{"stdout: hello " + strconv.Itoa(i) + "\n", "stderr: hello " + strconv.Itoa(i) + "\n"} {
			if !strings.Contains(logs, want) {
				t.Fatalf("invocation %d: %q missing from logs before the response: %q", i, want, logs)
			}
		}
	}
}

// TestRuntimeDescriptors checks the runtime's stdio: stdin /dev/null,
// stdout and stderr one pipe.
func TestRuntimeDescriptors(t *testing.T) {
	w := startEcho(t)
	w.invoke("req-fds", `{"mode":"fds"}`)
	f, _ := w.expect(agentproto.TypeResponse)
	var fds map[string]string
	if err := json.Unmarshal(f.Body, &fds); err != nil {
		t.Fatal(err)
	}
	if fds["0"] != os.DevNull || !strings.HasPrefix(fds["1"], "pipe:") || fds["1"] != fds["2"] {
		t.Fatalf("runtime descriptors %v", fds)
	}
}

func TestInvokeContext(t *testing.T) {
	w := startEcho(t)
	w.invoke("req-ctx", `{"mode":"context"}`)
	f, _ := w.expect(agentproto.TypeResponse)
	var got struct {
		RequestID   string `json:"requestId"`
		FunctionARN string `json:"functionArn"`
		DeadlineMs  int64  `json:"deadlineMs"`
		TraceID     string `json:"traceId"`
	}
	if err := json.Unmarshal(f.Body, &got); err != nil {
		t.Fatal(err)
	}
	if got.RequestID != "req-ctx" || !strings.HasSuffix(got.FunctionARN, ":function:echo") ||
		got.DeadlineMs < time.Now().UnixMilli() || got.TraceID != "Root=1-5759e988-bd862e3fe1be46a994272793" {
		t.Fatalf("context %+v", got)
	}
}

// TestInvokeBeforeNext sends the event right after Start: it waits in the
// queue until the runtime's first /next.
func TestInvokeBeforeNext(t *testing.T) {
	w := startAgent(t)
	w.start(echoBin, nil)
	w.invoke("early", `{"mode":"echo"}`)
	w.expect(agentproto.TypeReady)
	f, _ := w.expect(agentproto.TypeResponse)
	if string(f.Body) != `{"mode":"echo"}` {
		t.Fatalf("response %s", f.Body)
	}
}

func TestBigLogBeforeResponse(t *testing.T) {
	w := startEcho(t)
	w.invoke("req-log", `{"mode":"biglog","size":1048576}`)
	_, logs := w.expect(agentproto.TypeResponse)
	if len(logs) < 1<<20 || !strings.HasSuffix(logs, "biglog: last line\n") {
		t.Fatalf("%d bytes of logs before the response, ending %q", len(logs), logs[max(0, len(logs)-40):])
	}
}

func TestHandlerError(t *testing.T) {
	w := startEcho(t)
	w.invoke("req-err", `{"mode":"error","log":"failing"}`)
	f, logs := w.expect(agentproto.TypeError)
	m := decode[agentproto.ErrorMeta](t, f)
	if m.RequestID != "req-err" || m.ErrorType != "handlerError" {
		t.Fatalf("meta %+v", m)
	}
	var doc struct{ ErrorMessage, ErrorType string }
	if err := json.Unmarshal(f.Body, &doc); err != nil || doc.ErrorMessage != "handler failed" || doc.ErrorType != "handlerError" {
		t.Fatalf("document %s (%v)", f.Body, err)
	}
	if !strings.Contains(logs, "stdout: failing\n") {
		t.Fatalf("logs %q", logs)
	}
	// The runtime lives on.
	w.invoke("req-after", `{"mode":"echo"}`)
	w.expect(agentproto.TypeResponse)
}

func TestHandlerPanic(t *testing.T) {
	w := startEcho(t)
	w.invoke("req-panic", `{"mode":"panic"}`)
	f, _ := w.expect(agentproto.TypeError)
	m := decode[agentproto.ErrorMeta](t, f)
	if m.RequestID != "req-panic" || m.ErrorType == "" || !bytes.Contains(f.Body, []byte("handler panicked")) {
		t.Fatalf("meta %+v body %s", m, f.Body)
	}
	// aws-lambda-go exits after reporting a panic.
	f, _ = w.expect(agentproto.TypeExit)
	if m := decode[agentproto.ExitMeta](t, f); m.Code != 1 || m.Signal != "" {
		t.Fatalf("exit %+v", m)
	}
}

func TestRuntimeExit(t *testing.T) {
	w := startEcho(t)
	w.invoke("req-exit", `{"mode":"exit","log":"last words"}`)
	f, logs := w.expect(agentproto.TypeExit)
	if m := decode[agentproto.ExitMeta](t, f); m.Code != 3 || m.Signal != "" {
		t.Fatalf("exit %+v", m)
	}
	if !strings.Contains(logs, "stderr: last words\n") {
		t.Fatalf("logs before exit %q", logs)
	}
}

func TestRuntimeKilled(t *testing.T) {
	w := startEcho(t)
	w.invoke("req-kill", `{"mode":"sigkill"}`)
	f, _ := w.expect(agentproto.TypeExit)
	if m := decode[agentproto.ExitMeta](t, f); m.Code != -1 || m.Signal != "killed" {
		t.Fatalf("exit %+v", m)
	}
}

func TestResponseTooLarge(t *testing.T) {
	w := startEcho(t)
	w.invoke("req-big", `{"mode":"big","size":7000000}`)
	f, _ := w.expect(agentproto.TypeError)
	m := decode[agentproto.ErrorMeta](t, f)
	want := `{"errorMessage":"Response payload size exceeded maximum allowed payload size (6291556 bytes).","errorType":"Function.ResponseSizeTooLarge"}`
	if m.RequestID != "req-big" || m.ErrorType != "Function.ResponseSizeTooLarge" || string(f.Body) != want {
		t.Fatalf("meta %+v body %s", m, f.Body)
	}
}

// TestShellBootstrapInitError starts a /bin/sh bootstrap that prints and
// execs a raw runtime (this test binary) posting /runtime/init/error.
func TestShellBootstrapInitError(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	boot := filepath.Join(t.TempDir(), "bootstrap")
	script := "#!/bin/sh\necho 'bootstrap: sh is here'\nexec \"$SELF\" -test.run='^$'\n"
	if err := os.WriteFile(boot, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	w := startAgent(t)
	w.start(boot, nil, "SELF="+self, helperEnv+"=initerror")
	f, logs := w.expect(agentproto.TypeInitError)
	if m := decode[agentproto.ErrorMeta](t, f); m.ErrorType != "Runtime.HelperInitFailed" {
		t.Fatalf("meta %+v", m)
	}
	if string(f.Body) != helperInitErrorDoc {
		t.Fatalf("document %s", f.Body)
	}
	if !strings.Contains(logs, "bootstrap: sh is here\n") || !strings.Contains(logs, "helper: init failing\n") {
		t.Fatalf("logs before init error %q", logs)
	}
	f, _ = w.expect(agentproto.TypeExit)
	if m := decode[agentproto.ExitMeta](t, f); m.Code != 1 {
		t.Fatalf("exit %+v", m)
	}
}

func TestInvalidEntrypoint(t *testing.T) {
	w := startAgent(t)
	w.start(filepath.Join(t.TempDir(), "missing"), nil)
	f, _ := w.expect(agentproto.TypeInitError)
	m := decode[agentproto.ErrorMeta](t, f)
	if m.ErrorType != "Runtime.InvalidEntrypoint" || !bytes.Contains(f.Body, []byte("no such file or directory")) {
		t.Fatalf("meta %+v body %s", m, f.Body)
	}
}

// TestChannelCloseKillsRuntime closes the worker side: Run kills the
// runtime, reaps it and returns nil.
func TestChannelCloseKillsRuntime(t *testing.T) {
	w := startEcho(t)
	w.invoke("req-pid", `{"mode":"pid"}`)
	f, _ := w.expect(agentproto.TypeResponse)
	pid, err := strconv.Atoi(string(f.Body))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.conn.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.wait(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	// Reaped, not a zombie: the pid is gone.
	if err := unix.Kill(pid, 0); !errors.Is(err, unix.ESRCH) {
		t.Fatalf("runtime pid %d still there: %v", pid, err)
	}
}

func TestProtocolViolation(t *testing.T) {
	w := startAgent(t)
	w.send(agentproto.TypeReady, nil, nil)
	if err := w.wait(); !errors.Is(err, ErrProtocol) {
		t.Fatalf("Run: %v", err)
	}

	w = startAgent(t)
	w.invoke("too-early", "{}")
	if err := w.wait(); !errors.Is(err, ErrProtocol) {
		t.Fatalf("Run: %v", err)
	}
}

// TestOrphanReaped has the runtime leave a grandchild behind, which is
// reparented to the agent's process (a subreaper here, PID 1 in a sandbox):
// the reaper must collect it although it is not the runtime.
func TestOrphanReaped(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	w := startAgent(t)
	w.start(self, []string{self, "-test.run=^$"}, helperEnv+"=orphan")
	f, logs := w.expect(agentproto.TypeExit)
	if m := decode[agentproto.ExitMeta](t, f); m.Code != 0 {
		t.Fatalf("exit %+v, logs %q", m, logs)
	}
	var pid int
	if _, err := fmt.Sscanf(logs, "grandchild %d", &pid); err != nil {
		t.Fatalf("logs %q: %v", logs, err)
	}
	// The grandchild ends on its own; nothing signals its reaping, so
	// look until it is gone rather than a zombie.
	deadline := time.Now().Add(waitFor)
	for {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if errors.Is(err, os.ErrNotExist) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("grandchild %d not reaped: %s (%v)", pid, stat, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestListenFailure(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	ours, theirs := socketpair(t)
	defer ours.Close()
	if err := Run(context.Background(), Config{Conn: theirs, Listen: busy.Addr().String()}); err == nil {
		t.Fatal("Run listened on a busy address")
	}
	// Run closed its end: we read EOF, no handshake.
	if n, err := ours.Read(make([]byte, 8)); n != 0 || !errors.Is(err, io.EOF) {
		t.Fatalf("read %d, %v", n, err)
	}
}

// BenchmarkInvoke measures a warm invocation through the agent: Invoke
// frame, /next, handler, /response, drain, Response frame.
func BenchmarkInvoke(b *testing.B) {
	w := startEcho(b)
	payload := `{"mode":"echo"}`
	b.ResetTimer()
	for i := range b.N {
		w.invoke("bench-"+strconv.Itoa(i), payload)
		w.expect(agentproto.TypeResponse)
	}
}
