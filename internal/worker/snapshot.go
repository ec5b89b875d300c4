package worker

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"kindling/internal/agentproto"
	"kindling/internal/config"
	"kindling/internal/sandbox"
)

// SnapshotInitLimit bounds the init of an environment being snapshotted,
// before scaling: Lambda gives SnapStart versions 15 minutes to
// initialise at publish time instead of the 10 s of an on-demand init.
const SnapshotInitLimit = 15 * time.Minute

// CanSnapshot reports whether this worker's sandboxes can be checkpointed
// and restored (SnapStart).
func (w *Worker) CanSnapshot() bool {
	_, ok := w.cfg.Backend.(sandbox.Restorer)
	return ok
}

// SnapshotStats counts SnapStart restores on this worker.
func (w *Worker) SnapshotStats() (restores, failures uint64) {
	return w.restores.Load(), w.restoreFailures.Load()
}

// SnapshotError is a failed snapshot whose cause is the function's: its
// init failed, timed out or never reached the checkpoint point. Reason
// and Code become the version's StateReason and StateReasonCode.
type SnapshotError struct {
	Reason, Code string
}

func (e *SnapshotError) Error() string { return e.Reason }

// Snapshot initialises an environment of version fn (SnapStart), waits
// for the runtime to reach the checkpoint point (its call of
// /runtime/restore/next, or else its first /runtime/invocation/next) and
// checkpoints the sandbox into imageDir, an empty directory. The
// environment serves no invocation: it is destroyed once saved. Its init
// output goes to the function's logs like any init's. A failure of the
// function's own is a *SnapshotError.
func (w *Worker) Snapshot(ctx context.Context, fn *config.Function, imageDir string) (initDur time.Duration, err error) {
	if !w.CanSnapshot() {
		return 0, fmt.Errorf("worker: the %s sandbox backend cannot checkpoint", w.cfg.Backend.Name())
	}
	codeDir, err := w.cfg.CodeDir(fn.CodeKey)
	if err != nil {
		return 0, fmt.Errorf("code of %s: %w", fn.Name, err)
	}
	bootstrap, err := findBootstrap(codeDir)
	if err != nil {
		return 0, &SnapshotError{Code: config.ReasonInvalidEntryPoint,
			Reason: "Couldn't find valid bootstrap(s): [/var/task/bootstrap /opt/bootstrap]"}
	}
	env, err := w.create(ctx, fn, codeDir, bootstrap, true)
	if err != nil {
		return 0, err
	}
	defer env.Destroy()
	cp, ok := env.sb.(sandbox.Checkpointer)
	if !ok {
		return 0, fmt.Errorf("worker: sandbox %s cannot checkpoint", env.id)
	}

	limit := time.NewTimer(w.cfg.Clock.Scale(SnapshotInitLimit))
	defer limit.Stop()
	select {
	case <-env.checkpoint:
	case <-env.initErr:
		env.mu.Lock()
		errType := env.initType
		env.mu.Unlock()
		w.initReport(env, "INIT_REPORT Status: error\tError Type: "+errType)
		return 0, &SnapshotError{Code: config.ReasonRuntimeInitError,
			Reason: "The function's initialization failed before its snapshot could be taken: " + errType}
	case <-env.gone:
		errType, msg := env.exitError("snapshot")
		w.initReport(env, msg+"\n"+errType)
		return 0, &SnapshotError{Code: config.ReasonRuntimeInitError,
			Reason: "The runtime exited before its snapshot could be taken: " + errType}
	case <-limit.C:
		env.sb.Kill()
		w.initReport(env, "INIT_REPORT Status: timeout")
		return 0, &SnapshotError{Code: config.ReasonInitTimeout,
			Reason: fmt.Sprintf("The function's initialization did not finish within %v.", SnapshotInitLimit)}
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	env.mu.Lock()
	initDur = time.Duration(env.initNanos)
	env.mu.Unlock()
	if err := cp.Checkpoint(ctx, imageDir); err != nil {
		return 0, fmt.Errorf("checkpoint: %w", err)
	}
	w.initReport(env, fmt.Sprintf("INIT_REPORT Init Duration: %.2f ms\tPhase: init\tStatus: success (snapshot taken)", float64(initDur.Microseconds())/1000))
	return initDur, nil
}

// openError is a snapshot that could not be opened: missing, or damaged.
type openError struct{ err error }

func (e *openError) Error() string { return "open snapshot: " + e.err.Error() }
func (e *openError) Unwrap() error { return e.err }

func (w *Worker) initReport(env *Environment, line string) {
	if s := w.cfg.Logs; s != nil {
		s.Platform(env.fn, env.stream, time.Now(), line+"\n")
	}
}

// restore starts an environment of fn from its snapshot. It returns when
// the restored agent has been told so; Invoke waits for the runtime's
// after-restore hooks to end (its next /next).
func (w *Worker) restore(ctx context.Context, fn *config.Function, codeDir string) (*Environment, error) {
	restorer, ok := w.cfg.Backend.(sandbox.Restorer)
	if !ok || w.cfg.Snapshots == nil {
		return nil, fmt.Errorf("the %s sandbox backend cannot restore snapshots", w.cfg.Backend.Name())
	}
	begin := time.Now()
	if err := w.reserve(fn.MemoryMB); err != nil {
		return nil, err
	}
	dir, release, err := w.cfg.Snapshots.Open(fn.Snapshot)
	if err != nil {
		w.release(fn.MemoryMB)
		return nil, &openError{err}
	}
	id := fmt.Sprintf("%s-%d", w.prefix, w.seq.Add(1))
	sb, err := restorer.Restore(ctx, w.spec(id, fn, codeDir), dir)
	if err != nil {
		release()
		w.release(fn.MemoryMB)
		return nil, fmt.Errorf("restore sandbox: %w", err)
	}
	env := newEnvironment(w, id, fn, sb)
	env.restored, env.restoreBegan, env.releaseImage = true, begin, release
	w.mu.Lock()
	w.envs[id] = env
	w.mu.Unlock()
	seed := make([]byte, 32)
	if _, err := rand.Read(seed); err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	env.attach(begin) // no handshake: the restored agent goes on where it was
	if err := env.send(agentproto.TypeRestored, agentproto.RestoredMeta{Seed: seed}, nil); err != nil {
		env.Destroy()
		return nil, errors.Join(errors.New("restored agent unreachable"), err)
	}
	w.restores.Add(1)
	return env, nil
}
