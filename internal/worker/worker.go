// Package worker runs execution environments on one machine: it creates
// sandboxes through a sandbox.Backend, drives the agent inside each one over
// the agentproto channel, enforces the init limit and function timeouts,
// writes Lambda's START/END/REPORT log lines and reports capacity.
//
// Threads: each Environment has one reader goroutine that decodes the agent's
// frames and hands them to whoever waits (Invoke); Invoke is called by one
// goroutine at a time per environment (the assignment service guarantees an
// environment is busy with one invocation at most). Environment.mu guards the
// fields marked so; the encoder has its own mutex. Lock order: mu, then encMu
// is never taken under mu.
//
// Trust: the agent runs inside the sandbox with the function's code and is
// hostile. Frames are bounded by agentproto; the worker never trusts a request
// id, a duration or a size the agent reports beyond using it in the
// function's own logs and results.
package worker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"kindling/internal/clock"
	"kindling/internal/config"
	"kindling/internal/errdefs"
	"kindling/internal/sandbox"
)

// InitLimit is Lambda's limit on a runtime's init phase, before scaling.
const InitLimit = 10 * time.Second

// Config configures a Worker.
type Config struct {
	// Backend creates the sandboxes.
	Backend sandbox.Backend
	// Region is the AWS region reported to functions.
	Region string
	// Clock scales the init limit.
	Clock clock.Clock
	// CodeDir resolves a function's code key to its unpacked directory.
	CodeDir func(key string) (string, error)
	// MemoryMB is the memory this worker offers to sandboxes; 0 means
	// three quarters of the machine's.
	MemoryMB int
	// Logs, when set, receives every log line of every environment.
	Logs LogSink
	// Snapshots, when set, opens the verified images of SnapStart
	// versions (internal/snapshot). Without it, or on a backend that
	// cannot restore, every start is a normal cold start.
	Snapshots SnapshotSource
	// SnapshotUnusable, when set, is told about a version whose snapshot
	// could not be opened (missing or damaged) after its cold start fell
	// back to a normal init; it may replace the snapshot.
	SnapshotUnusable func(fn *config.Function, err error)
	// Logger logs the worker's own events.
	Logger *slog.Logger
}

// LogSink receives function logs, in order per stream, from the
// environment's reader goroutine and from Invoke. Implementations must not
// block (internal/logs queues and drops what it cannot keep up with).
type LogSink interface {
	// Append receives a chunk of the runtime's output as read from its
	// pipe: a line may span chunks.
	Append(fn *config.Function, stream string, at time.Time, data []byte)
	// Platform receives one of the platform's own lines (START, END,
	// REPORT, a timeout or exit notice, INIT_REPORT) as one log event; it
	// ends any unfinished line of output before it.
	Platform(fn *config.Function, stream string, at time.Time, line string)
}

// SnapshotSource opens snapshot images by key.
type SnapshotSource interface {
	// Open returns the directory of the snapshot's verified image and a
	// func to call once no sandbox reads it any more.
	Open(key string) (dir string, release func(), err error)
}

// Worker creates environments on this machine.
type Worker struct {
	cfg      Config
	seq      atomic.Uint64
	prefix   string
	mu       sync.Mutex // guards usedMB and envs
	usedMB   int
	envs     map[string]*Environment
	capacity int

	restores        atomic.Uint64 // environments started from a snapshot
	restoreFailures atomic.Uint64 // snapshots that could not be used
}

// New returns a Worker.
func New(cfg Config) *Worker {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MemoryMB <= 0 {
		cfg.MemoryMB = machineMemoryMB() * 3 / 4
	}
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	return &Worker{cfg: cfg, prefix: hex.EncodeToString(b[:]), envs: make(map[string]*Environment), capacity: cfg.MemoryMB}
}

// Capacity reports the memory offered and in use, in MB.
func (w *Worker) Capacity() (totalMB, usedMB int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.capacity, w.usedMB
}

// ErrInvalidEntrypoint is returned by Create when the code has no bootstrap.
var ErrInvalidEntrypoint = errors.New("invalid entrypoint")

// Create starts a new environment for fn: a sandbox whose agent starts the
// runtime at once. It returns when the runtime has been started; Invoke waits
// for the end of init. The error wraps errdefs.ErrUnavailable when the worker
// is out of memory, ErrInvalidEntrypoint when the code has no bootstrap.
func (w *Worker) Create(ctx context.Context, fn *config.Function) (*Environment, error) {
	codeDir, err := w.cfg.CodeDir(fn.CodeKey)
	if err != nil {
		return nil, fmt.Errorf("code of %s: %w", fn.Name, err)
	}
	bootstrap, err := findBootstrap(codeDir)
	if err != nil {
		return nil, err
	}
	if fn.SnapStartOn && fn.Snapshot != "" {
		env, err := w.restore(ctx, fn, codeDir)
		if err == nil {
			return env, nil
		}
		if errors.Is(err, errdefs.ErrUnavailable) || ctx.Err() != nil {
			return nil, err
		}
		// Never served: a snapshot that cannot be used is reported and
		// the environment starts with a normal init instead.
		w.restoreFailures.Add(1)
		w.cfg.Logger.Error("SnapStart: snapshot not used, starting with a normal init",
			"function", fn.Name, "version", fn.Version, "snapshot", fn.Snapshot, "err", err)
		var oe *openError
		if errors.As(err, &oe) && w.cfg.SnapshotUnusable != nil {
			w.cfg.SnapshotUnusable(fn, err)
		}
		env, cerr := w.create(ctx, fn, codeDir, bootstrap, false)
		if cerr == nil && w.cfg.Logs != nil {
			w.cfg.Logs.Platform(fn, env.stream, time.Now(),
				"SnapStart: the snapshot of this version could not be used, so this environment initialised from scratch ("+err.Error()+")\n")
		}
		return env, cerr
	}
	return w.create(ctx, fn, codeDir, bootstrap, false)
}

// create starts a sandbox whose runtime initialises from scratch; snapshot
// says it will be checkpointed at the end of init (Snapshot).
func (w *Worker) create(ctx context.Context, fn *config.Function, codeDir, bootstrap string, snapshot bool) (*Environment, error) {
	if err := w.reserve(fn.MemoryMB); err != nil {
		return nil, err
	}
	id := fmt.Sprintf("%s-%d", w.prefix, w.seq.Add(1))
	sb, err := w.cfg.Backend.Create(ctx, w.spec(id, fn, codeDir))
	if err != nil {
		w.release(fn.MemoryMB)
		return nil, fmt.Errorf("create sandbox: %w", err)
	}
	env := newEnvironment(w, id, fn, sb)
	env.snapshot = snapshot
	w.mu.Lock()
	w.envs[id] = env // from here on, Destroy returns the memory
	w.mu.Unlock()
	if err := env.start(bootstrap); err != nil {
		env.Destroy()
		return nil, err
	}
	return env, nil
}

func (w *Worker) spec(id string, fn *config.Function, codeDir string) sandbox.Spec {
	return sandbox.Spec{
		ID:          id,
		CodeDir:     codeDir,
		MemoryMB:    fn.MemoryMB,
		EphemeralMB: fn.EphemeralMB,
		Hostname:    "sandbox",
	}
}

// reserve takes mb of the worker's memory, or fails with
// errdefs.ErrUnavailable.
func (w *Worker) reserve(mb int) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.usedMB+mb > w.capacity {
		return fmt.Errorf("worker memory exhausted (%d of %d MB in use): %w", w.usedMB, w.capacity, errdefs.ErrUnavailable)
	}
	w.usedMB += mb
	return nil
}

func (w *Worker) release(mb int) {
	w.mu.Lock()
	w.usedMB -= mb
	w.mu.Unlock()
}

func (w *Worker) forget(e *Environment) {
	w.mu.Lock()
	if _, ok := w.envs[e.id]; ok {
		delete(w.envs, e.id)
		w.usedMB -= e.fn.MemoryMB
	}
	w.mu.Unlock()
}

// Close destroys every environment.
func (w *Worker) Close() {
	w.mu.Lock()
	envs := make([]*Environment, 0, len(w.envs))
	for _, e := range w.envs {
		envs = append(envs, e)
	}
	w.mu.Unlock()
	var wg sync.WaitGroup
	for _, e := range envs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.Destroy()
		}()
	}
	wg.Wait()
}

// findBootstrap returns the in-sandbox path of the runtime's entry point, as
// Lambda looks for it in provided.* runtimes.
func findBootstrap(codeDir string) (string, error) {
	st, err := os.Stat(filepath.Join(codeDir, "bootstrap"))
	if err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
		return "/var/task/bootstrap", nil
	}
	return "", ErrInvalidEntrypoint
}

func machineMemoryMB() int {
	var total int
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int
		if _, err := fmt.Sscanf(string(b), "MemTotal: %d kB", &kb); err == nil {
			total = kb / 1024
		}
	}
	if total == 0 {
		total = 4096
	}
	return total
}
