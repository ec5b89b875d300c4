// Package agent is the logic of the in-sandbox agent (cmd/kindling-agent):
// it talks agentproto to its worker over one channel, serves the Lambda
// Runtime API (package runtimeapi) to the function's runtime, starts that
// runtime, and captures its output as logs.
//
// The agent runs inside the sandbox, beside hostile tenant code: the worker
// does not trust it, and it does not trust the runtime. What the runtime
// sends is bounded by runtimeapi; what the worker sends is trusted, and a
// frame that breaks the protocol ends Run with ErrProtocol.
//
// # Flow
//
//	agent -> worker  handshake
//	worker -> agent  Start{path, args, env, dir}    runtime starts; its output -> Log frames
//	agent -> worker  Ready{initNanos}               on the runtime's first /next
//	             or  InitError{type} + document     on /runtime/init/error
//	worker -> agent  Invoke{requestId, ...} + event handed to /next
//	agent -> worker  Response{requestId} + payload  on .../response
//	             or  Error{requestId, type} + doc   on .../error, an oversized response
//	                                                or a stream ending in error trailers
//	agent -> worker  Exit{code, signal}             when the runtime process ends
//
// With Start{snapshot: true} (SnapStart), init ends at a checkpoint:
//
//	worker -> agent  Start{..., snapshot}
//	agent -> worker  Checkpoint{initNanos, hooks}   on /runtime/restore/next (hooks) or
//	                                                the first /next (no hooks); then
//	                                                nothing until Restored
//	                 (the worker checkpoints the sandbox; each restored copy goes on)
//	worker -> agent  Restored{seed}                 held-back output is sent, then:
//	agent -> worker  Ready{initNanos}               at once (no hooks), or on the /next
//	                                                after restore/next returned 200
//	             or  InitError{type} + document     on /runtime/restore/error
//	                 ... Invoke, Response as above
//
// Every byte the runtime wrote to stdout or stderr before it asked for its
// first event, reached the checkpoint, posted an init or restore error or a
// result, or exited, is sent as Log frames before the Ready, Checkpoint,
// InitError, Response, Error or Exit frame: the
// worker's log tail of an invocation includes the function's output. (The
// callback measures the pipe's backlog with FIONREAD and sends that much
// first; see logPipe.) Output written later may arrive before or after it.
//
// The runtime starts with exactly Start's environment, stdin /dev/null, and
// stdout and stderr on one pipe, leading its own process group and killed
// (SIGKILL) if the agent dies. If it cannot be started, the agent sends
// InitError with type Runtime.InvalidEntrypoint and no Exit follows. When
// the worker closes the channel, Run kills the runtime's process group,
// waits for it to be reaped and returns nil.
//
// # Snapshot mode
//
// When Start says Snapshot, the Runtime API serves restore/next and
// restore/error (runtimeapi's snapshot mode). At the checkpoint point the
// agent sends the output so far, then Checkpoint, and from then on holds
// every send back (sendFrame waits on agent.hold: Log frames too, the log
// reader simply blocks holding logPipe.mu), so that the channel is quiet
// while the sandbox is checkpointed: a frame half written across the
// checkpoint would corrupt the stream, and after a restore the channel is
// a new socket (the same descriptor) to another worker. Restored (a
// protocol error unless Checkpoint was sent and no Restored came yet, or
// outside snapshot mode) releases the held sends, drains the output, and
// only then tells the Runtime API (runtimeapi.Server.Restored), so that
// held output precedes anything the runtime does after the restore. (A
// runtime that writes more than the pipe holds while sends are held back
// blocks in its write until then.) The handshake is not sent again: the
// worker's Restored is the first frame on the new channel. Ready's
// InitNanos then counts from Restored's arrival; Checkpoint's from the
// runtime's start. restore/error is sent as InitError with the runtime's
// error type (runtimeapi defaults it to Runtime.AfterRestoreError). An
// Invoke before Restored is a protocol error in snapshot mode: it would be
// in every copy of the snapshot.
//
// Uniqueness of restored copies: the agent keeps no random state of its own
// (no math/rand, no generated ids; request ids come from the worker), so it
// has nothing to reseed and ignores RestoredMeta.Seed. Randomness the
// runtime needs comes from the kernel's getrandom, which gVisor serves from
// the host's entropy at each call, so it differs between copies; state the
// runtime derived from it during init (a seeded PRNG, cached UUIDs) is its
// own business, as Lambda documents for SnapStart. Go's own runtime state
// (map hash seeds, its internal PRNG) is cloned too, and the agent derives
// nothing from it that must differ between copies.
//
// # States of an invocation in the agent
//
//	waiting-for-next ──Invoke──> delivered ──result POST──> answered ──> waiting-for-next
//
// The states:
//
//   - waiting-for-next: the runtime is between invocations; a /next may be
//     pending. An Invoke that finds no pending /next waits in
//     runtimeapi.Server's queue of one (the worker sends the next event
//     only after a result) until the runtime asks.
//   - delivered: the runtime holds the event. Another /next gets the same
//     event again (as the Runtime Interface Emulator does).
//   - answered: the runtime's result has been sent as Response or Error
//     (after its output), and only then does the runtime get its 202.
//
// The runtime exiting ends every state; the worker learns it from Exit.
//
// # Threads
//
//   - Run's goroutine: handles the worker's frames (decoded by a reader
//     goroutine), starts the runtime, delivers events, and on return tears
//     everything down.
//   - net/http connection goroutines: serve the Runtime API; the
//     runtimeapi callbacks run there and send Ready, Checkpoint,
//     InitError, Response and Error frames synchronously, before the
//     runtime gets its answer. (After a checkpoint at the first /next,
//     Ready is sent by Run's goroutine, from Server.Restored.)
//   - the log reader: reads the runtime's output pipe and sends Log frames,
//     one per read of at most 64 KiB.
//   - the reaper: waits for SIGCHLD and reaps every child with wait4(-1)
//     (the agent may be PID 1 of a pid namespace, so orphans are its
//     children too; cmd/kindling-agent also makes it a subreaper),
//     recognising the runtime's pid. exec.Cmd.Wait is never used.
//   - the exit watcher: once the runtime is reaped, drains its output and
//     sends Exit.
//
// # Locks
//
//   - agent.sendMu guards the one Encoder and agent.hold; every frame goes
//     through sendFrame, which waits (sendMu released) while hold is set.
//   - logPipe.mu serialises each read of the output pipe with the sending
//     of what it read, so that a drain holding it knows every byte read so
//     far has been sent.
//   - reaper.mu is held across fork+registration of the runtime, each
//     reaping pass and each kill (no pid is signalled after its reaping).
//   - agent.procMu guards the runtime's process, pipe and the time init
//     began; agent.cbMu the closing flag that keeps callbacks from
//     starting once Run is returning.
//
// Lock order: logPipe.mu before sendMu; reaper.mu, procMu and cbMu are
// never held while taking another.
package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"runtime"
	"sync"
	"syscall"
	"time"

	"kindling/internal/agentproto"
	"kindling/internal/runtimeapi"
)

// DefaultListen is the Runtime API address runtimes expect.
const DefaultListen = "127.0.0.1:9001"

// ErrProtocol reports a frame from the worker that breaks the protocol.
var ErrProtocol = errors.New("agent: protocol violation by the worker")

// Config says where the agent talks.
type Config struct {
	// Conn is the channel to the worker. Run writes the handshake first
	// and closes Conn before it returns.
	Conn io.ReadWriteCloser
	// Listen is the Runtime API's TCP address; DefaultListen if empty.
	Listen string
	// Listener, when not nil, is used instead of listening on Listen. Run
	// closes it.
	Listener net.Listener
	// Logf receives the agent's own diagnostics (never the runtime's
	// output). Nil discards them.
	Logf func(format string, args ...any)
}

// agent is the state of one Run.
type agent struct {
	conn io.ReadWriteCloser
	logf func(format string, args ...any)
	api  *runtimeapi.Server
	srv  *http.Server
	ln   net.Listener
	// done is closed when Run is returning.
	done chan struct{}
	// wg counts goroutines Run waits for before it returns.
	wg sync.WaitGroup

	// sendMu guards enc, sendErr and hold.
	sendMu  sync.Mutex
	enc     *agentproto.Encoder
	sendErr error
	// hold, when not nil, holds every send back: Checkpoint was sent and
	// Restored has not arrived. release closes it.
	hold chan struct{}
	// broken is closed on the first send error: the worker is gone.
	broken     chan struct{}
	brokenOnce sync.Once

	// cbMu guards closing. cbs counts runtimeapi callbacks in flight
	// (they run on net/http goroutines Run does not own): shutdown waits
	// for them, and none starts once closing is set.
	cbMu    sync.Mutex
	closing bool
	cbs     sync.WaitGroup

	reaper *reaper
	// started is set when Start arrives, snapshot when it asks for
	// snapshot mode, restored when Restored arrives. Run's goroutine
	// only.
	started  bool
	snapshot bool
	restored bool
	// logs and proc are set once by Run's goroutine when the runtime
	// starts; readers synchronise through procMu. initFrom is when init
	// began: the runtime's start, then the arrival of Restored.
	procMu   sync.Mutex
	logs     *logPipe
	proc     *runtimeProc
	initFrom time.Time
}

// Run serves one sandbox: it returns nil when the worker closes the channel,
// ctx's error when ctx ends, and an error when the channel breaks, the
// worker violates the protocol or the Runtime API cannot listen. Before it
// returns it kills the runtime, waits (briefly) for it to be reaped and
// closes Conn and the listener.
func Run(ctx context.Context, cfg Config) error {
	a := &agent{
		conn:   cfg.Conn,
		logf:   cfg.Logf,
		done:   make(chan struct{}),
		broken: make(chan struct{}),
		ln:     cfg.Listener,
	}
	if a.logf == nil {
		a.logf = func(string, ...any) {}
	}
	if a.ln == nil {
		addr := cfg.Listen
		if addr == "" {
			addr = DefaultListen
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return errors.Join(fmt.Errorf("agent: runtime API: %w", err), a.conn.Close())
		}
		a.ln = ln
	}
	// The warm path's reads and writes skip the Go runtime's syscall
	// bookkeeping (rawio_linux.go).
	a.ln = rawListener{a.ln}
	if c, ok := a.conn.(net.Conn); ok {
		a.conn = newRawConn(c)
	}
	// The Runtime API's handler is set at Start, which says whether
	// restore/next is served; it is not serving before.
	a.srv = &http.Server{
		MaxHeaderBytes: 64 << 10,
		ErrorLog:       log.New(logfWriter(a.logf), "runtime API: ", 0),
	}
	a.reaper = startReaper()
	defer a.shutdown()

	if err := agentproto.WriteHandshake(a.conn); err != nil {
		return fmt.Errorf("agent: handshake: %w", err)
	}
	a.enc = agentproto.NewEncoder(a.conn)
	return a.loop(ctx)
}

type frameResult struct {
	f   agentproto.Frame
	err error
}

// loop reads the worker's frames until the channel or ctx ends.
func (a *agent) loop(ctx context.Context) error {
	frames := make(chan frameResult)
	// Not in a.wg: a read on a Conn that cannot be interrupted by Close
	// (a blocking file) may outlive Run; it never touches shared state.
	go func() {
		dec := agentproto.NewDecoder(a.conn)
		for {
			f, err := dec.Read()
			select {
			case frames <- frameResult{f, err}:
			case <-a.done:
				return
			}
			if err != nil {
				return
			}
			// Let Run's goroutine handle the frame (deliver the event
			// to a waiting /next) before this one reads again: with
			// one P it would otherwise run on into a read that finds
			// nothing (EAGAIN, a system call: ~15-20 us in gVisor)
			// before the runtime gets its event.
			runtime.Gosched()
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-a.broken:
			a.sendMu.Lock()
			err := a.sendErr
			a.sendMu.Unlock()
			if channelClosed(err) {
				return nil
			}
			return fmt.Errorf("agent: sending to the worker: %w", err)
		case fr := <-frames:
			if channelClosed(fr.err) {
				return nil
			}
			if fr.err != nil {
				return fmt.Errorf("agent: reading from the worker: %w", fr.err)
			}
			if err := a.handle(fr.f); err != nil {
				return err
			}
		}
	}
}

// channelClosed reports whether err means the worker closed the channel,
// which is how it ends the sandbox: with or without frames left unread
// (ECONNRESET), during a write (EPIPE).
func channelClosed(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

func (a *agent) handle(f agentproto.Frame) error {
	switch f.Type {
	case agentproto.TypeStart:
		var m agentproto.StartMeta
		if err := f.DecodeMeta(&m); err != nil {
			return fmt.Errorf("%w: start: %v", ErrProtocol, err)
		}
		if a.started {
			return fmt.Errorf("%w: second start", ErrProtocol)
		}
		a.started = true
		a.snapshot = m.Snapshot
		cb := runtimeapi.Callbacks{
			OnFirstNext: a.onFirstNext,
			OnInitError: a.onInitError,
			OnResponse:  a.onResponse,
			OnError:     a.onError,
		}
		if m.Snapshot {
			cb.OnCheckpoint = a.onCheckpoint
			// A restore error travels as an init error of the restored
			// environment.
			cb.OnRestoreError = a.onInitError
		}
		a.api = runtimeapi.New(cb)
		a.srv.Handler = a.api.Handler()
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			if err := a.srv.Serve(a.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				a.logf("runtime API stopped: %v", err)
			}
		}()
		return a.start(m)
	case agentproto.TypeInvoke:
		if !a.started {
			return fmt.Errorf("%w: invoke before start", ErrProtocol)
		}
		if a.snapshot && !a.restored {
			// It would be in every clone of the snapshot.
			return fmt.Errorf("%w: invoke before restored", ErrProtocol)
		}
		var m agentproto.InvokeMeta
		if err := f.DecodeMeta(&m); err != nil {
			return fmt.Errorf("%w: invoke: %v", ErrProtocol, err)
		}
		a.api.Deliver(runtimeapi.Event{
			RequestID:       m.RequestID,
			DeadlineMs:      m.DeadlineMs,
			FunctionARN:     m.FunctionARN,
			TraceID:         m.TraceID,
			ClientContext:   m.ClientContext,
			CognitoIdentity: m.CognitoIdentity,
			Payload:         f.Body,
		})
		return nil
	case agentproto.TypeRestored:
		if !a.snapshot {
			return fmt.Errorf("%w: restored without snapshot", ErrProtocol)
		}
		// Seed is not used: the agent keeps no random state (see the
		// package doc).
		var m agentproto.RestoredMeta
		if err := f.DecodeMeta(&m); err != nil {
			return fmt.Errorf("%w: restored: %v", ErrProtocol, err)
		}
		return a.release()
	}
	return fmt.Errorf("%w: unexpected %v frame", ErrProtocol, f.Type)
}

// release handles Restored: it reopens the channel to sends, sends the
// held-back output, then lets the Runtime API go on (restore/next answers,
// or Ready is sent for a /next pending since the checkpoint).
func (a *agent) release() error {
	if a.restored {
		return fmt.Errorf("%w: second restored", ErrProtocol)
	}
	a.sendMu.Lock()
	h := a.hold
	a.hold = nil
	a.sendMu.Unlock()
	if h == nil {
		return fmt.Errorf("%w: restored before checkpoint", ErrProtocol)
	}
	a.restored = true
	close(h)
	a.procMu.Lock()
	a.initFrom = time.Now()
	a.procMu.Unlock()
	a.drainLogs()
	if !a.api.Restored() {
		// The checkpoint frame was sent, so the Server reached the
		// checkpoint point; this cannot happen.
		a.logf("runtime API: restored without a pending checkpoint")
	}
	return nil
}

// errHeld ends a send held back by a checkpoint when Run returns.
var errHeld = errors.New("agent: send held back at the checkpoint, and Run returned")

// send writes one frame. While a checkpoint holds sends back, it waits for
// Restored. After the first failure every send fails and Run ends.
func (a *agent) send(t agentproto.Type, meta any, body []byte) error {
	return a.sendFrame(t, meta, body, false)
}

// sendFrame writes one frame as send does; with hold, it then holds every
// further send back until Restored (release).
func (a *agent) sendFrame(t agentproto.Type, meta any, body []byte, hold bool) error {
	a.sendMu.Lock()
	defer a.sendMu.Unlock()
	for a.hold != nil {
		h := a.hold
		a.sendMu.Unlock()
		select {
		case <-h:
		case <-a.done:
			a.sendMu.Lock()
			return errHeld
		}
		a.sendMu.Lock()
	}
	if a.sendErr != nil {
		return a.sendErr
	}
	if err := a.enc.Write(t, meta, body); err != nil {
		a.sendErr = err
		a.brokenOnce.Do(func() { close(a.broken) })
		return err
	}
	if hold {
		a.hold = make(chan struct{})
	}
	return nil
}

// sendLog is the log pipe's sink: one Log frame per read.
func (a *agent) sendLog(b []byte) error {
	return a.send(agentproto.TypeLog, nil, b)
}

// drainLogs sends every byte the runtime has written so far.
func (a *agent) drainLogs() {
	a.procMu.Lock()
	lp := a.logs
	a.procMu.Unlock()
	if lp != nil {
		lp.drain()
	}
}

// enterCallback registers a callback in flight; false once Run is closing.
func (a *agent) enterCallback() bool {
	a.cbMu.Lock()
	defer a.cbMu.Unlock()
	if a.closing {
		return false
	}
	a.cbs.Add(1)
	return true
}

// The runtimeapi callbacks. A send error is not the runtime's business: it
// ends Run through a.broken.

func (a *agent) onFirstNext() {
	if !a.enterCallback() {
		return
	}
	defer a.cbs.Done()
	init := a.initElapsed()
	a.drainLogs()
	if err := a.send(agentproto.TypeReady, agentproto.ReadyMeta{InitNanos: init.Nanoseconds()}, nil); err != nil {
		a.logf("sending ready: %v", err)
	}
}

func (a *agent) onInitError(errType string, body []byte) {
	if !a.enterCallback() {
		return
	}
	defer a.cbs.Done()
	a.drainLogs()
	if err := a.send(agentproto.TypeInitError, agentproto.ErrorMeta{ErrorType: errType}, body); err != nil {
		a.logf("sending init error: %v", err)
	}
}

// initElapsed is the time since init began (the runtime's start, or the
// arrival of Restored).
func (a *agent) initElapsed() time.Duration {
	a.procMu.Lock()
	defer a.procMu.Unlock()
	return time.Since(a.initFrom)
}

// onCheckpoint sends Checkpoint after the runtime's output, and holds every
// further send back until Restored.
func (a *agent) onCheckpoint(hooks bool) {
	if !a.enterCallback() {
		return
	}
	defer a.cbs.Done()
	init := a.initElapsed()
	a.drainLogs()
	m := agentproto.CheckpointMeta{InitNanos: init.Nanoseconds(), Hooks: hooks}
	if err := a.sendFrame(agentproto.TypeCheckpoint, m, nil, true); err != nil {
		a.logf("sending checkpoint: %v", err)
	}
}

func (a *agent) onResponse(id string, body []byte) {
	if !a.enterCallback() {
		return
	}
	defer a.cbs.Done()
	a.drainLogs()
	if err := a.send(agentproto.TypeResponse, agentproto.ResultMeta{RequestID: id}, body); err != nil {
		a.logf("sending response: %v", err)
	}
}

func (a *agent) onError(id, errType string, body []byte) {
	if !a.enterCallback() {
		return
	}
	defer a.cbs.Done()
	a.drainLogs()
	if err := a.send(agentproto.TypeError, agentproto.ErrorMeta{RequestID: id, ErrorType: errType}, body); err != nil {
		a.logf("sending error: %v", err)
	}
}

// shutdown tears down what Run started, in an order that unblocks every
// goroutine: the runtime dies, the channel closes (failing any blocked
// send), the Runtime API closes (ending long-polls), then the output pipe.
func (a *agent) shutdown() {
	close(a.done)
	a.cbMu.Lock()
	a.closing = true
	a.cbMu.Unlock()
	a.procMu.Lock()
	proc, lp := a.proc, a.logs
	a.procMu.Unlock()
	if proc != nil {
		if err := a.reaper.kill(proc); err != nil {
			a.logf("killing the runtime: %v", err)
		}
	}
	if err := a.conn.Close(); err != nil {
		a.logf("closing the worker channel: %v", err)
	}
	if err := a.srv.Close(); err != nil {
		a.logf("closing the runtime API: %v", err)
	}
	a.closeListener()
	a.cbs.Wait() // their sends fail now that the channel is closed
	if proc != nil {
		select {
		case <-proc.exited:
		case <-time.After(5 * time.Second):
			a.logf("runtime pid %d not reaped 5s after SIGKILL", proc.pid)
		}
	}
	a.reaper.stop()
	if lp != nil {
		if err := lp.close(); err != nil {
			a.logf("%v", err)
		}
	}
	a.wg.Wait()
}

func (a *agent) closeListener() {
	if err := a.ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		a.logf("closing the runtime API listener: %v", err)
	}
}

// logfWriter adapts Logf to the io.Writer net/http's ErrorLog needs.
type logfWriter func(format string, args ...any)

func (w logfWriter) Write(p []byte) (int, error) {
	w("%s", p)
	return len(p), nil
}
