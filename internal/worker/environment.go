package worker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"

	"kindling/internal/agentproto"
	"kindling/internal/config"
	"kindling/internal/invoke"
	"kindling/internal/sandbox"
)

// TailBytes is how much of an invocation's log X-Amz-Log-Result carries.
const TailBytes = 4096

// maxInvocationLog bounds the log kept per invocation for the tail.
const maxInvocationLog = 64 << 10

// Environment is one execution environment: a sandbox, its agent and the
// runtime the agent started.
//
// States: starting (runtime started, init running) -> ready (first /next)
// -> serving invocations -> dead (runtime exited, timed out, channel lost
// or destroyed). dead is terminal; the caller destroys a dead environment.
type Environment struct {
	w      *Worker
	id     string
	fn     *config.Function
	sb     sandbox.Sandbox
	stream string

	encMu sync.Mutex
	enc   *agentproto.Encoder

	ready      chan struct{} // closed on TypeReady
	checkpoint chan struct{} // closed on TypeCheckpoint
	initErr    chan struct{} // closed on TypeInitError
	gone       chan struct{} // closed when the channel to the agent ends
	results    chan agentproto.Frame

	mu        sync.Mutex // guards the fields below
	started   time.Time
	initNanos int64
	initDoc   []byte // the init error document
	initType  string
	exit      *agentproto.ExitMeta
	log       []byte // output since the current invocation started
	served    int
	prewarmed bool // initialised ahead (Prewarm): no Init Duration reported
	readyAt   time.Time
	destroyed bool

	// Set before the environment is shared, then read-only.
	snapshot     bool      // to be checkpointed at the end of init (Worker.Snapshot)
	restored     bool      // started from a snapshot: no init, a restore
	restoreBegan time.Time // when the restore began (Restore Duration)
	releaseImage func()    // releases the snapshot image, after Destroy
}

func newEnvironment(w *Worker, id string, fn *config.Function, sb sandbox.Sandbox) *Environment {
	return &Environment{
		w:          w,
		id:         id,
		fn:         fn,
		sb:         sb,
		stream:     logStreamName(fn.Version, time.Now()),
		ready:      make(chan struct{}),
		checkpoint: make(chan struct{}),
		initErr:    make(chan struct{}),
		gone:       make(chan struct{}),
		results:    make(chan agentproto.Frame, 1),
	}
}

// ID returns the environment's id (its sandbox's id).
func (e *Environment) ID() string { return e.id }

// LogStream returns the environment's log stream name.
func (e *Environment) LogStream() string { return e.stream }

// start reads the agent's handshake and tells it to start the runtime.
func (e *Environment) start(bootstrap string) error {
	if err := agentproto.ReadHandshake(e.sb.Conn()); err != nil {
		return fmt.Errorf("agent handshake: %w", err)
	}
	e.attach(time.Now())
	initType := "on-demand"
	if e.snapshot {
		initType = "snap-start"
	}
	return e.send(agentproto.TypeStart, agentproto.StartMeta{
		Path:     bootstrap,
		Args:     []string{bootstrap},
		Env:      runtimeEnv(e.fn, e.stream, e.w.cfg.Region, initType),
		Dir:      "/var/task",
		Snapshot: e.snapshot,
	}, nil)
}

// attach starts talking agentproto on the sandbox's channel: the encoder
// and the reader goroutine. started is when the environment's init (or
// restore) began.
func (e *Environment) attach(started time.Time) {
	conn := e.sb.Conn()
	e.enc = agentproto.NewEncoder(conn)
	go e.readLoop(agentproto.NewDecoder(conn))
	e.mu.Lock()
	e.started = started
	e.mu.Unlock()
}

func (e *Environment) send(t agentproto.Type, meta any, body []byte) error {
	e.encMu.Lock()
	defer e.encMu.Unlock()
	return e.enc.Write(t, meta, body)
}

// readLoop is the environment's reader goroutine.
func (e *Environment) readLoop(dec *agentproto.Decoder) {
	defer close(e.gone)
	for {
		f, err := dec.Read()
		if err != nil {
			if err != io.EOF {
				e.w.cfg.Logger.Debug("agent channel", "env", e.id, "err", err)
			}
			return
		}
		switch f.Type {
		case agentproto.TypeLog:
			e.appendLog(f.Body)
		case agentproto.TypeReady:
			var m agentproto.ReadyMeta
			if f.DecodeMeta(&m) != nil {
				return
			}
			e.mu.Lock()
			select {
			case <-e.ready:
			default:
				e.initNanos, e.readyAt = m.InitNanos, time.Now()
				close(e.ready)
			}
			e.mu.Unlock()
		case agentproto.TypeCheckpoint:
			var m agentproto.CheckpointMeta
			if !e.snapshot || f.DecodeMeta(&m) != nil {
				return
			}
			e.mu.Lock()
			select {
			case <-e.checkpoint:
			default:
				e.initNanos = m.InitNanos
				close(e.checkpoint)
			}
			e.mu.Unlock()
		case agentproto.TypeInitError:
			var m agentproto.ErrorMeta
			if f.DecodeMeta(&m) != nil {
				return
			}
			e.mu.Lock()
			select {
			case <-e.initErr:
			default:
				e.initDoc, e.initType = f.Body, m.ErrorType
				close(e.initErr)
			}
			e.mu.Unlock()
		case agentproto.TypeResponse, agentproto.TypeError:
			select {
			case e.results <- f:
			default:
				// A result nobody asked for: a misbehaving agent.
				return
			}
		case agentproto.TypeExit:
			var m agentproto.ExitMeta
			if f.DecodeMeta(&m) != nil {
				return
			}
			e.mu.Lock()
			e.exit = &m
			e.mu.Unlock()
			return
		default:
			return
		}
	}
}

func (e *Environment) appendLog(b []byte) {
	now := time.Now()
	e.mu.Lock()
	e.log = append(e.log, b...)
	if over := len(e.log) - maxInvocationLog; over > 0 {
		e.log = append(e.log[:0], e.log[over:]...)
	}
	e.mu.Unlock()
	if s := e.w.cfg.Logs; s != nil {
		s.Append(e.fn, e.stream, now, b)
	}
}

// outcome is how an invocation ended, from the environment's view.
type outcome int

const (
	outResult  outcome = iota // the runtime answered
	outExit                   // the runtime exited or the channel broke
	outTimeout                // the deadline passed
	outInitErr                // init failed with /init/error
	outInitTimeout
)

// ErrNotServed is returned by Invoke when the runtime exited without
// taking the event: the function never saw it and it can run elsewhere.
var ErrNotServed = errors.New("environment ended before its runtime took the event")

// Alive reports whether the runtime is still running (as far as the worker
// knows).
func (e *Environment) Alive() bool {
	select {
	case <-e.gone:
		return false
	default:
		return true
	}
}

// Invoke runs one invocation and reports whether the environment can serve
// another. A dead environment must be destroyed by the caller. The error is
// ErrNotServed when the event never reached the function; otherwise nil,
// and function failures are in the result.
func (e *Environment) Invoke(ctx context.Context, req *invoke.Request) (*invoke.Result, bool, error) {
	e.mu.Lock()
	cold := e.served == 0
	prewarmed := e.prewarmed
	e.served++
	e.mu.Unlock()
	if !cold && !e.Alive() {
		return nil, false, ErrNotServed
	}

	var initDur time.Duration
	if cold {
		out := e.waitInit()
		if out != outResult {
			if e.restored {
				return nil, false, e.restoreFailure(req, out)
			}
			return e.initFailure(req, out), false, nil
		}
		e.mu.Lock()
		initDur = time.Duration(e.initNanos)
		if e.restored {
			initDur = e.readyAt.Sub(e.restoreBegan)
		}
		e.mu.Unlock()
	}

	timeout := time.Duration(e.fn.TimeoutSec) * time.Second
	start := time.Now()
	e.mu.Lock()
	prefix := e.log // init output, on a cold start
	if !cold {
		prefix = nil
	}
	e.log = nil
	e.mu.Unlock()
	startLine := fmt.Sprintf("START RequestId: %s Version: %s\n", req.RequestID, e.fn.Version)
	head := append(prefix, startLine...)
	if sink := e.w.cfg.Logs; sink != nil {
		sink.Platform(e.fn, e.stream, start, startLine)
	}

	if err := e.send(agentproto.TypeInvoke, agentproto.InvokeMeta{
		RequestID:     req.RequestID,
		DeadlineMs:    start.Add(timeout).UnixMilli(),
		FunctionARN:   invokedARN(e.fn, req.Qualifier),
		TraceID:       req.TraceID,
		ClientContext: req.ClientContext,
	}, req.Payload); err != nil {
		e.sb.Kill()
	}

	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var (
		f   agentproto.Frame
		out outcome
	)
	select {
	case f = <-e.results:
		out = outResult
	case <-e.gone:
		// The result may have arrived just before the channel closed.
		select {
		case f = <-e.results:
			out = outResult
		default:
			out = outExit
		}
	case <-timer.C:
		out = outTimeout
		e.sb.Kill()
	}
	dur := time.Since(start)
	if out == outExit && !cold {
		e.mu.Lock()
		// Not taken: still queued in the agent, or still on its way there
		// when the runtime exited (the exit frame then crossed the event).
		undelivered := e.exit != nil && (e.exit.Undelivered == req.RequestID || e.exit.Taken != req.RequestID)
		e.mu.Unlock()
		if undelivered {
			return nil, false, ErrNotServed
		}
	}

	res := &invoke.Result{ExecutedVersion: e.fn.Version}
	var tailMsg []byte
	switch out {
	case outResult:
		res.Payload = f.Body
		if f.Type == agentproto.TypeError {
			res.FunctionError = "Unhandled"
		}
	case outTimeout:
		msg := fmt.Sprintf("%s %s Task timed out after %.2f seconds", time.Now().UTC().Format("2006-01-02T15:04:05.000Z"), req.RequestID, timeout.Seconds())
		res.Payload = errorDoc(msg, "Sandbox.Timedout")
		res.FunctionError = "Unhandled"
		tailMsg = []byte(msg + "\n")
	case outExit:
		errType, msg := e.exitError(req.RequestID)
		res.Payload = errorDoc(msg, errType)
		res.FunctionError = "Unhandled"
		tailMsg = []byte(msg + "\n" + errType + "\n")
	}

	var maxMB int64
	if st, err := e.sb.Stats(); err == nil {
		maxMB = (st.MaxMemoryBytes + (1<<20 - 1)) >> 20
	}
	if maxMB > int64(e.fn.MemoryMB) {
		maxMB = int64(e.fn.MemoryMB)
	}
	e.mu.Lock()
	body := e.log
	e.log = nil
	e.mu.Unlock()
	endLine := fmt.Sprintf("END RequestId: %s\n", req.RequestID)
	report := fmt.Sprintf("REPORT RequestId: %s\tDuration: %.2f ms\tBilled Duration: %d ms\tMemory Size: %d MB\tMax Memory Used: %d MB\t",
		req.RequestID, float64(dur.Microseconds())/1000, billedMs(dur), e.fn.MemoryMB, maxMB)
	switch {
	case cold && e.restored && !prewarmed:
		report += fmt.Sprintf("Restore Duration: %.2f ms\tBilled Restore Duration: %d ms\t", float64(initDur.Microseconds())/1000, billedMs(initDur))
	case cold && !prewarmed:
		report += fmt.Sprintf("Init Duration: %.2f ms\t", float64(initDur.Microseconds())/1000)
	}
	if out == outTimeout {
		report += "Status: timeout"
	}
	report += "\n"
	if sink := e.w.cfg.Logs; sink != nil {
		now := time.Now()
		if len(tailMsg) > 0 {
			sink.Platform(e.fn, e.stream, now, string(tailMsg))
		}
		sink.Platform(e.fn, e.stream, now, endLine)
		sink.Platform(e.fn, e.stream, now, report)
	}
	if req.Tail {
		res.LogTail = tail(head, body, tailMsg, []byte(endLine), []byte(report))
	}
	return res, out == outResult, nil
}

// waitInit waits for the end of init: the runtime's first /next, an init
// error, its exit, or the init limit.
// Prewarm waits for the runtime's init to end, for an environment created
// ahead of invocations (provisioned concurrency), and reports whether it
// succeeded. Its first invocation then reports no Init Duration: as in
// Lambda, the init of a provisioned environment is not on any request.
func (e *Environment) Prewarm() error {
	if out := e.waitInit(); out != outResult {
		return fmt.Errorf("worker: provisioned environment %s: init failed (%d)", e.id, out)
	}
	e.mu.Lock()
	e.prewarmed = true
	e.mu.Unlock()
	return nil
}

func (e *Environment) waitInit() outcome {
	limit := time.NewTimer(e.w.cfg.Clock.Scale(InitLimit))
	defer limit.Stop()
	select {
	case <-e.ready:
		return outResult
	case <-e.initErr:
		return outInitErr
	case <-e.gone:
		select {
		case <-e.ready:
			return outResult
		default:
		}
		return outExit
	case <-limit.C:
		e.sb.Kill()
		return outInitTimeout
	}
}

// restoreFailure reports why a restored environment did not get ready:
// Lambda fails the Invoke call itself (SnapStartException,
// SnapStartTimeoutException) rather than returning a function error.
func (e *Environment) restoreFailure(req *invoke.Request, out outcome) error {
	e.mu.Lock()
	doc, errType := e.initDoc, e.initType
	e.mu.Unlock()
	var line string
	var err error
	switch out {
	case outInitErr:
		line = "RESTORE_REPORT Status: error\tError Type: " + errType
		err = fmt.Errorf("%w: %s: %s", invoke.ErrAfterRestore, errType, shorten(doc, 256))
	case outInitTimeout:
		line = "RESTORE_REPORT Status: timeout"
		err = invoke.ErrRestoreTimeout
	default:
		errType, msg := e.exitError(req.RequestID)
		line = msg + "\n" + errType
		err = fmt.Errorf("%w: %s", invoke.ErrAfterRestore, msg)
	}
	if sink := e.w.cfg.Logs; sink != nil {
		sink.Platform(e.fn, e.stream, time.Now(), line+"\n")
	}
	return err
}

func shorten(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}

func (e *Environment) initFailure(req *invoke.Request, out outcome) *invoke.Result {
	res := &invoke.Result{ExecutedVersion: e.fn.Version, FunctionError: "Unhandled"}
	var extra string
	e.mu.Lock()
	initOut := e.log
	e.log = nil
	e.mu.Unlock()
	switch out {
	case outInitErr:
		e.mu.Lock()
		res.Payload, extra = e.initDoc, e.initType
		e.mu.Unlock()
		if len(res.Payload) == 0 {
			res.Payload = errorDoc("Init error", extra)
		}
		extra = "INIT_REPORT Status: error\tError Type: " + extra
	case outInitTimeout:
		msg := fmt.Sprintf("RequestId: %s Error: Init timed out after %.2f seconds", req.RequestID, InitLimit.Seconds())
		res.Payload = errorDoc(msg, "Runtime.InitTimeout")
		extra = "INIT_REPORT Status: timeout"
	default:
		errType, msg := e.exitError(req.RequestID)
		res.Payload = errorDoc(msg, errType)
		extra = msg + "\n" + errType
	}
	if sink := e.w.cfg.Logs; sink != nil {
		sink.Platform(e.fn, e.stream, time.Now(), extra+"\n")
	}
	if req.Tail {
		res.LogTail = tail(initOut, []byte(extra+"\n"))
	}
	return res
}

// exitError describes why the runtime is gone, as Lambda does.
func (e *Environment) exitError(requestID string) (errType, msg string) {
	// Wait briefly for the exit frame that explains a closed channel.
	e.mu.Lock()
	ex := e.exit
	e.mu.Unlock()
	what := "Runtime exited without providing a reason"
	if ex != nil {
		if ex.Signal != "" {
			what = "Runtime exited with error: signal: " + ex.Signal
		} else {
			what = "Runtime exited with error: exit status " + strconv.Itoa(ex.Code)
		}
	}
	errType = "Runtime.ExitError"
	if st, err := e.sb.Stats(); err == nil && st.OOMKilled {
		errType = "Runtime.OutOfMemory"
		if ex == nil {
			what = "Runtime exited with error: signal: killed"
		}
	}
	return errType, fmt.Sprintf("RequestId: %s Error: %s", requestID, what)
}

// Destroy tears the environment down. Safe to call more than once.
func (e *Environment) Destroy() {
	e.mu.Lock()
	if e.destroyed {
		e.mu.Unlock()
		return
	}
	e.destroyed = true
	e.mu.Unlock()
	if err := e.sb.Destroy(); err != nil {
		e.w.cfg.Logger.Warn("destroy sandbox", "env", e.id, "err", err)
	}
	if e.releaseImage != nil {
		e.releaseImage()
	}
	e.w.forget(e)
}

func tail(parts ...[]byte) []byte {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	out := make([]byte, 0, n)
	for _, p := range parts {
		out = append(out, p...)
	}
	if len(out) > TailBytes {
		out = out[len(out)-TailBytes:]
	}
	return out
}

func billedMs(d time.Duration) int64 {
	ms := d.Milliseconds()
	if d%time.Millisecond != 0 || ms == 0 {
		ms++
	}
	return ms
}

func errorDoc(msg, errType string) []byte {
	b := []byte(`{"errorMessage":`)
	b = strconv.AppendQuote(b, msg)
	if errType != "" {
		b = append(b, `,"errorType":`...)
		b = strconv.AppendQuote(b, errType)
	}
	return append(b, '}')
}

// logStreamName names an environment's log stream as Lambda does:
// YYYY/MM/DD/[VERSION]<32 hex digits>.
func logStreamName(version string, now time.Time) string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return now.UTC().Format("2006/01/02") + "/[" + version + "]" + hex.EncodeToString(b[:])
}

// runtimeEnv is the runtime's environment: the function's variables, then
// Lambda's reserved ones. No credentials of any kind.
func runtimeEnv(fn *config.Function, stream, region, initType string) []string {
	env := make([]string, 0, len(fn.Env)+20)
	for k, v := range fn.Env {
		env = append(env, k+"="+v)
	}
	return append(env,
		"AWS_LAMBDA_FUNCTION_NAME="+fn.Name,
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE="+strconv.Itoa(fn.MemoryMB),
		"AWS_LAMBDA_FUNCTION_VERSION="+fn.Version,
		"AWS_LAMBDA_INITIALIZATION_TYPE="+initType,
		"AWS_LAMBDA_LOG_GROUP_NAME=/aws/lambda/"+fn.Name,
		"AWS_LAMBDA_LOG_STREAM_NAME="+stream,
		"AWS_LAMBDA_RUNTIME_API=127.0.0.1:9001",
		"AWS_REGION="+region,
		"AWS_DEFAULT_REGION="+region,
		"LAMBDA_TASK_ROOT=/var/task",
		"LAMBDA_RUNTIME_DIR=/var/runtime",
		"_HANDLER="+fn.Handler,
		"TZ=:UTC",
		"LANG=en_US.UTF-8",
		"PATH=/usr/local/bin:/usr/bin/:/bin:/opt/bin",
		"LD_LIBRARY_PATH=/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:/var/task:/var/task/lib:/opt/lib",
	)
}

// invokedARN is the ARN the caller invoked the function by: unqualified, or
// with the version or alias it named.
func invokedARN(fn *config.Function, qualifier string) string {
	if qualifier == "" {
		return fn.ARN()
	}
	return fn.ARN() + ":" + qualifier
}
