// Package snapstart makes and deletes the snapshots of SnapStart versions:
// the control-plane side of SnapStart (the worker restores them).
//
// Flow. PublishVersion of a function whose SnapStart.ApplyOn is
// PublishedVersions creates the version Pending (package config) and calls
// Prepare. Prepare runs in the background: the worker initialises an
// environment of the version, checkpoints it at the end of init
// (worker.Snapshot), the snapshot store seals the image with a hash per
// piece (package snapshot), and the version record gets the snapshot's key
// and becomes Active. Any failure leaves the version Failed with the
// reason, and nothing is kept. A server that stops meanwhile resumes the
// Pending versions at its next start (Resume).
//
// Threads: one goroutine per snapshot being made, at most MaxParallel at
// once (each holds a whole environment's memory while it initialises).
package snapstart

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"kindling/internal/config"
	"kindling/internal/errdefs"
	"kindling/internal/snapshot"
	"kindling/internal/worker"
)

// MaxParallel bounds the snapshots made at once.
const MaxParallel = 2

// Images is the snapshot store (internal/snapshot).
type Images interface {
	Open(key string) (dir string, release func(), err error)
	Stage() (string, error)
	Discard(staged string) error
	Commit(ctx context.Context, staged string, m snapshot.Meta) (snapshot.Info, error)
	Delete(key string) error
	DeleteFunction(account, function string) error
	List() ([]snapshot.Info, error)
}

// Versions is the config service's view of version records.
type Versions interface {
	UpdateVersion(ctx context.Context, account, name, version string, fn func(v *config.Function) error) (*config.Function, error)
	PendingSnapStart(ctx context.Context) ([]*config.Function, error)
}

// Snapshotter initialises environments and checkpoints them
// (*worker.Worker).
type Snapshotter interface {
	CanSnapshot() bool
	Snapshot(ctx context.Context, fn *config.Function, imageDir string) (time.Duration, error)
}

// Config configures a Manager.
type Config struct {
	Worker   Snapshotter
	Images   Images
	Versions Versions
	// MakeRoom, when set, frees mb MB of the worker's memory by destroying
	// idle environments (assignment.Manager.EvictIdle) when a snapshot
	// finds the worker full; it reports whether it freed anything.
	MakeRoom func(mb int) bool
	Logger   *slog.Logger
}

// Manager makes snapshots. It implements frontend.SnapStarter.
type Manager struct {
	cfg  Config
	sem  chan struct{}
	ctx  context.Context
	stop context.CancelFunc
	wg   sync.WaitGroup

	mu       sync.Mutex
	inflight map[string]bool // version ARNs being snapshotted
}

// New returns a Manager; Close stops it.
func New(cfg Config) *Manager {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	ctx, stop := context.WithCancel(context.Background())
	return &Manager{cfg: cfg, sem: make(chan struct{}, MaxParallel), ctx: ctx, stop: stop, inflight: map[string]bool{}}
}

// Available reports whether this server's sandboxes can be snapshotted.
func (m *Manager) Available() bool { return m.cfg.Worker.CanSnapshot() }

// Prepare makes the snapshot of version v in the background, then moves
// the version to Active or Failed.
func (m *Manager) Prepare(v *config.Function) {
	arn := v.QualifiedARN()
	m.mu.Lock()
	if m.inflight[arn] {
		m.mu.Unlock()
		return
	}
	m.inflight[arn] = true
	m.mu.Unlock()
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		defer func() {
			m.mu.Lock()
			delete(m.inflight, arn)
			m.mu.Unlock()
		}()
		select {
		case m.sem <- struct{}{}:
		case <-m.ctx.Done():
			return
		}
		defer func() { <-m.sem }()
		m.make(v)
	}()
}

// Remake replaces the snapshot of an Active version that could not be used
// (a piece that does not match its hash, a missing file): the damaged
// snapshot is deleted at once, so that cold starts meanwhile skip straight
// to a normal init, and a new one is made in the background. The version
// stays Active throughout; if making the new one fails, it keeps serving
// with normal cold starts (and the failure is logged).
func (m *Manager) Remake(v *config.Function) {
	if v.Snapshot != "" {
		if err := m.cfg.Images.Delete(v.Snapshot); err != nil && !errors.Is(err, snapshot.ErrNotFound) {
			m.cfg.Logger.Warn("SnapStart: deleting an unusable snapshot", "key", v.Snapshot, "err", err)
		}
	}
	m.cfg.Logger.Warn("SnapStart: remaking the snapshot of a version", "function", v.Name, "version", v.Version, "unusable", v.Snapshot)
	m.Prepare(v)
}

// Resume prepares every version left Pending by an earlier run.
func (m *Manager) Resume(ctx context.Context) error {
	if !m.Available() {
		return nil
	}
	pending, err := m.cfg.Versions.PendingSnapStart(ctx)
	if err != nil {
		return err
	}
	for _, v := range pending {
		m.cfg.Logger.Info("SnapStart: resuming the snapshot of a pending version", "function", v.Name, "version", v.Version)
		m.Prepare(v)
	}
	return nil
}

// Verify opens every snapshot kept, one at a time, so that the store
// verifies their pieces ahead of the first restores after a start (the
// store remembers what it verified only while it runs); unusable ones are
// logged. It runs in the background; Close waits for it.
func (m *Manager) Verify() {
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		m.verify()
	}()
}

func (m *Manager) verify() {
	infos, err := m.cfg.Images.List()
	if err != nil {
		m.cfg.Logger.Warn("SnapStart: listing snapshots", "err", err)
		return
	}
	begin := time.Now()
	var bytes int64
	for _, in := range infos {
		if m.ctx.Err() != nil {
			return
		}
		_, release, err := m.cfg.Images.Open(in.Key)
		if err != nil {
			m.cfg.Logger.Error("SnapStart: snapshot unusable; cold starts of its version will run init",
				"function", in.Function, "version", in.Version, "key", in.Key, "err", err)
			continue
		}
		release()
		bytes += in.Bytes
	}
	if len(infos) > 0 {
		m.cfg.Logger.Info("SnapStart: snapshots verified", "count", len(infos), "bytes", bytes, "took", time.Since(begin).Round(time.Millisecond))
	}
}

// Close stops the snapshots under way (their versions stay Pending and
// are resumed at the next start) and waits for them.
func (m *Manager) Close() {
	m.stop()
	m.wg.Wait()
}

func (m *Manager) make(v *config.Function) {
	log := m.cfg.Logger.With("function", v.Name, "version", v.Version)
	begin := time.Now()
	staged, err := m.cfg.Images.Stage()
	if err != nil {
		m.fail(v, err)
		return
	}
	initDur, err := m.cfg.Worker.Snapshot(m.ctx, v, staged)
	if errors.Is(err, errdefs.ErrUnavailable) && m.cfg.MakeRoom != nil && m.cfg.MakeRoom(v.MemoryMB) {
		initDur, err = m.cfg.Worker.Snapshot(m.ctx, v, staged)
	}
	if err == nil {
		var info snapshot.Info
		info, err = m.cfg.Images.Commit(m.ctx, staged, snapshot.Meta{Account: v.Account, Function: v.Name, Version: v.Version})
		if err == nil {
			_, err = m.cfg.Versions.UpdateVersion(m.ctx, v.Account, v.Name, v.Version, func(f *config.Function) error {
				if f.State == config.StateActive {
					// A remade snapshot (Remake): only the key changes.
					if f.Snapshot != v.Snapshot {
						return fmt.Errorf("%w: snapshot replaced meanwhile", errdefs.ErrConflict)
					}
					f.Snapshot = info.Key
					return nil
				}
				f.Snapshot = info.Key
				return f.Apply(config.Event{Kind: config.EvReady})
			})
			if err != nil {
				// Deleted meanwhile (or the store failed): keep nothing.
				if derr := m.cfg.Images.Delete(info.Key); derr != nil {
					log.Warn("SnapStart: deleting an orphan snapshot", "key", info.Key, "err", derr)
				}
				if errors.Is(err, errdefs.ErrNotFound) || errors.Is(err, errdefs.ErrConflict) || m.ctx.Err() != nil {
					return
				}
				log.Error("SnapStart: recording the snapshot", "err", err)
				return
			}
			log.Info("SnapStart: snapshot made", "key", info.Key, "bytes", info.Bytes, "pieces", info.Pieces,
				"init", initDur.Round(time.Millisecond), "total", time.Since(begin).Round(time.Millisecond))
			return
		}
	} else if derr := m.cfg.Images.Discard(staged); derr != nil {
		log.Warn("SnapStart: discarding a staged snapshot", "err", derr)
	}
	if m.ctx.Err() != nil {
		return // shutting down: resumed at the next start
	}
	m.fail(v, err)
}

func (m *Manager) fail(v *config.Function, err error) {
	if v.State == config.StateActive {
		// A Remake that failed: the version keeps its normal cold starts.
		m.cfg.Logger.Error("SnapStart: remaking a snapshot failed; the version starts with normal cold starts",
			"function", v.Name, "version", v.Version, "err", err)
		return
	}
	reason, code := "Kindling could not make the snapshot of this version: "+err.Error(), config.ReasonInternalError
	var se *worker.SnapshotError
	if errors.As(err, &se) {
		reason, code = se.Reason, se.Code
	}
	m.cfg.Logger.Warn("SnapStart: snapshot failed", "function", v.Name, "version", v.Version, "err", err)
	_, uerr := m.cfg.Versions.UpdateVersion(context.Background(), v.Account, v.Name, v.Version, func(f *config.Function) error {
		return f.Apply(config.Event{Kind: config.EvFail, Reason: reason, ReasonCode: code})
	})
	if uerr != nil && !errors.Is(uerr, errdefs.ErrNotFound) {
		m.cfg.Logger.Error("SnapStart: recording a failed snapshot", "function", v.Name, "version", v.Version, "err", uerr)
	}
}

// Forget deletes the snapshot of a deleted version, or of every version of
// a deleted function (version "").
func (m *Manager) Forget(ctx context.Context, account, name, version string) error {
	if version == "" {
		return m.cfg.Images.DeleteFunction(account, name)
	}
	infos, err := m.cfg.Images.List()
	if err != nil {
		return err
	}
	var errs []error
	for _, in := range infos {
		if in.Account == account && in.Function == name && in.Version == version {
			errs = append(errs, m.cfg.Images.Delete(in.Key))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("snapstart: forget %s:%s: %w", name, version, err)
	}
	return nil
}

// List reports the snapshots kept, for disk use.
func (m *Manager) List() ([]snapshot.Info, error) { return m.cfg.Images.List() }
