package snapstart

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"kindling/internal/config"
	"kindling/internal/errdefs"
	"kindling/internal/snapshot"
	"kindling/internal/worker"
)

// fakeWorker "checkpoints" by writing a file into the image directory, or
// fails with err.
type fakeWorker struct {
	err   error
	full  int // the first full calls fail: no memory left
	calls chan string
}

func (w *fakeWorker) CanSnapshot() bool { return true }

func (w *fakeWorker) Snapshot(ctx context.Context, fn *config.Function, dir string) (time.Duration, error) {
	w.calls <- fn.Version
	if w.full > 0 {
		w.full--
		return 0, fmt.Errorf("worker memory exhausted: %w", errdefs.ErrUnavailable)
	}
	if w.err != nil {
		return 0, w.err
	}
	return time.Millisecond, os.WriteFile(filepath.Join(dir, "checkpoint.img"), []byte("state of "+fn.Version), 0o600)
}

// fakeVersions keeps version records in a map.
type fakeVersions struct {
	mu sync.Mutex
	v  map[string]*config.Function
}

func (f *fakeVersions) UpdateVersion(ctx context.Context, account, name, version string, fn func(v *config.Function) error) (*config.Function, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.v[name+":"+version]
	if !ok {
		return nil, fmt.Errorf("%w: version", errdefs.ErrNotFound)
	}
	c := v.Clone()
	if err := fn(c); err != nil {
		return nil, err
	}
	f.v[name+":"+version] = c
	return c.Clone(), nil
}

func (f *fakeVersions) PendingSnapStart(ctx context.Context) ([]*config.Function, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*config.Function
	for _, v := range f.v {
		if v.SnapStartOn && v.State == config.StatePending {
			out = append(out, v.Clone())
		}
	}
	return out, nil
}

func (f *fakeVersions) get(name, version string) *config.Function {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.v[name+":"+version]
}

func pendingVersion(name, version string) *config.Function {
	v := &config.Function{Account: "000000000000", Region: "us-east-1", Name: name, Version: version, SnapStartOn: true}
	if err := v.Apply(config.Event{Kind: config.EvCreate}); err != nil {
		panic(err)
	}
	return v
}

func setup(t *testing.T, w *fakeWorker, versions ...*config.Function) (*Manager, *fakeVersions, *snapshot.Store) {
	t.Helper()
	store, err := snapshot.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	fv := &fakeVersions{v: map[string]*config.Function{}}
	for _, v := range versions {
		fv.v[v.Name+":"+v.Version] = v
	}
	m := New(Config{Worker: w, Images: store, Versions: fv})
	t.Cleanup(m.Close)
	return m, fv, store
}

// waitState waits for the version to leave Pending.
func waitState(t *testing.T, fv *fakeVersions, name, version string) *config.Function {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if v := fv.get(name, version); v != nil && v.State != config.StatePending {
			return v
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("%s:%s still Pending", name, version)
	return nil
}

func TestPrepareMakesVersionActive(t *testing.T) {
	w := &fakeWorker{calls: make(chan string, 4)}
	v := pendingVersion("f", "1")
	m, fv, store := setup(t, w, v)
	m.Prepare(v)
	got := waitState(t, fv, "f", "1")
	if got.State != config.StateActive || got.Snapshot == "" {
		t.Fatalf("version after Prepare: state %s snapshot %q, want Active with a key", got.State, got.Snapshot)
	}
	dir, release, err := store.Open(got.Snapshot)
	if err != nil {
		t.Fatalf("the recorded snapshot does not open: %v", err)
	}
	defer release()
	if b, err := os.ReadFile(filepath.Join(dir, "checkpoint.img")); err != nil || string(b) != "state of 1" {
		t.Errorf("snapshot content %q, %v", b, err)
	}
}

func TestPrepareFailureMakesVersionFailed(t *testing.T) {
	w := &fakeWorker{calls: make(chan string, 4), err: &worker.SnapshotError{Code: config.ReasonRuntimeInitError, Reason: "init blew up"}}
	v := pendingVersion("f", "2")
	m, fv, store := setup(t, w, v)
	m.Prepare(v)
	got := waitState(t, fv, "f", "2")
	if got.State != config.StateFailed || got.StateReason != "init blew up" || got.StateReasonCode != config.ReasonRuntimeInitError {
		t.Errorf("version: %s %q %q, want Failed with the worker's reason", got.State, got.StateReason, got.StateReasonCode)
	}
	if infos, _ := store.List(); len(infos) != 0 {
		t.Errorf("a failed snapshot was kept: %+v", infos)
	}

	// Any other error is the platform's: InternalError.
	w.err = errors.New("disk full")
	v3 := pendingVersion("f", "3")
	fv.mu.Lock()
	fv.v["f:3"] = v3
	fv.mu.Unlock()
	m.Prepare(v3)
	if got := waitState(t, fv, "f", "3"); got.State != config.StateFailed || got.StateReasonCode != config.ReasonInternalError {
		t.Errorf("version 3: %s %q, want Failed InternalError", got.State, got.StateReasonCode)
	}
}

func TestVersionDeletedWhileSnapshotting(t *testing.T) {
	w := &fakeWorker{calls: make(chan string, 4)}
	v := pendingVersion("f", "1")
	m, fv, store := setup(t, w) // the record is gone already
	m.Prepare(v)
	<-w.calls
	waitIdle(t, m)
	if infos, _ := store.List(); len(infos) != 0 {
		t.Errorf("snapshot of a deleted version kept: %+v", infos)
	}
	if fv.get("f", "1") != nil {
		t.Errorf("a deleted version came back")
	}
}

func TestForgetAndResume(t *testing.T) {
	w := &fakeWorker{calls: make(chan string, 8)}
	a, b, c := pendingVersion("f", "1"), pendingVersion("f", "2"), pendingVersion("g", "1")
	m, fv, store := setup(t, w, a, b, c)
	if err := m.Resume(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, x := range []*config.Function{a, b, c} {
		if got := waitState(t, fv, x.Name, x.Version); got.State != config.StateActive {
			t.Fatalf("%s:%s %s after Resume", x.Name, x.Version, got.State)
		}
	}
	if err := m.Forget(context.Background(), a.Account, "f", "1"); err != nil {
		t.Fatal(err)
	}
	left := map[string]bool{}
	infos, _ := store.List()
	for _, in := range infos {
		left[in.Function+":"+in.Version] = true
	}
	if left["f:1"] || !left["f:2"] || !left["g:1"] {
		t.Errorf("after Forget f:1, snapshots left: %v", left)
	}
	if err := m.Forget(context.Background(), a.Account, "f", ""); err != nil {
		t.Fatal(err)
	}
	infos, _ = store.List()
	if len(infos) != 1 || infos[0].Function != "g" {
		t.Errorf("after Forget f, snapshots left: %+v", infos)
	}
}

func TestRemakeReplacesUnusableSnapshot(t *testing.T) {
	w := &fakeWorker{calls: make(chan string, 4)}
	v := pendingVersion("f", "1")
	m, fv, store := setup(t, w, v)
	m.Prepare(v)
	active := waitState(t, fv, "f", "1")
	old := active.Snapshot

	m.Remake(active)
	if _, _, err := store.Open(old); !errors.Is(err, snapshot.ErrNotFound) {
		t.Errorf("the unusable snapshot still opens (%v): Remake must drop it at once", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for fv.get("f", "1").Snapshot == old && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	got := fv.get("f", "1")
	if got.Snapshot == old || got.State != config.StateActive {
		t.Fatalf("after Remake: snapshot %q state %s, want a new key and still Active", got.Snapshot, got.State)
	}
	if _, release, err := store.Open(got.Snapshot); err != nil {
		t.Errorf("the remade snapshot does not open: %v", err)
	} else {
		release()
	}

	// A failed remake leaves the version Active (normal cold starts).
	w.err = errors.New("checkpoint failed")
	m.Remake(got)
	<-w.calls // the first Prepare's
	<-w.calls // the first Remake's
	<-w.calls // this one
	waitIdle(t, m)
	if after := fv.get("f", "1"); after.State != config.StateActive {
		t.Errorf("a failed remake made the version %s", after.State)
	}
}

// waitIdle waits until no snapshot is being made.
func waitIdle(t *testing.T, m *Manager) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		m.mu.Lock()
		n := len(m.inflight)
		m.mu.Unlock()
		if n == 0 {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("snapshots still being made after 10 s")
}

func TestSnapshotMakesRoomOnAFullWorker(t *testing.T) {
	w := &fakeWorker{calls: make(chan string, 4), full: 1}
	v := pendingVersion("f", "1")
	v.MemoryMB = 1769
	m, fv, _ := setup(t, w, v)
	var asked []int
	var mu sync.Mutex
	m.cfg.MakeRoom = func(mb int) bool {
		mu.Lock()
		defer mu.Unlock()
		asked = append(asked, mb)
		return true
	}
	m.Prepare(v)
	if got := waitState(t, fv, "f", "1"); got.State != config.StateActive {
		t.Errorf("a full worker that made room: version %s (%s)", got.State, got.StateReason)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(asked) != 1 || asked[0] != 1769 {
		t.Errorf("MakeRoom calls %v, want one for 1769 MB", asked)
	}
}
