package config

import (
	"context"
	"errors"
	"testing"

	"kindling/internal/errdefs"
)

// createSnapStart creates an Active function with SnapStart ApplyOn
// PublishedVersions (or not).
func createSnapStart(t *testing.T, st *Store, account, name string, applyOn string) {
	t.Helper()
	f := newFn(name)
	f.Account = account
	f.SnapStartApplyOn = applyOn
	if err := f.Apply(Event{Kind: EvReady}); err != nil {
		t.Fatal(err)
	}
	if err := st.Create(context.Background(), f); err != nil {
		t.Fatal(err)
	}
}

func TestPublishSnapStart(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	createSnapStart(t, st, acct, "ss", SnapStartPublishedVersions)

	// Without the server's ability: Active at once, Off.
	v1, created, err := st.Publish(ctx, acct, "ss", PublishOptions{})
	if err != nil || !created {
		t.Fatalf("publish: %v %v", created, err)
	}
	if v1.SnapStartOn || v1.State != StateActive || v1.SnapStartApplyOn != SnapStartPublishedVersions {
		t.Errorf("v1 without SnapStart: on %v state %s applyOn %q", v1.SnapStartOn, v1.State, v1.SnapStartApplyOn)
	}
	if err := v1.CanInvoke(); err != nil {
		t.Errorf("v1 invoke: %v", err)
	}

	// With it: Pending (Creating), SnapStartOn, not invocable.
	setMemory(t, st, "ss", 256)
	v2, created, err := st.Publish(ctx, acct, "ss", PublishOptions{SnapStart: true})
	if err != nil || !created || v2.Version != "2" {
		t.Fatalf("publish 2: %v %v %v", v2, created, err)
	}
	if !v2.SnapStartOn || v2.State != StatePending || v2.StateReasonCode != ReasonCreating ||
		v2.StateReason != "The function is being created." || v2.Snapshot != "" {
		t.Errorf("v2: on %v state %s %q %q", v2.SnapStartOn, v2.State, v2.StateReasonCode, v2.StateReason)
	}
	err = v2.CanInvoke()
	var nr *SnapStartNotReadyError
	if !errors.As(err, &nr) || !errors.Is(err, errdefs.ErrConflict) || err.Error() != SnapStartNotReadyMessage ||
		nr.Resource != "arn:aws:lambda:us-east-1:123456789012:function:ss:2" {
		t.Errorf("pending SnapStart invoke: %v", err)
	}
	stored, err := st.GetVersion(ctx, acct, "ss", "2")
	if err != nil || !stored.SnapStartOn || stored.State != StatePending {
		t.Errorf("stored v2: %+v %v", stored, err)
	}

	// Republishing unchanged returns the pending version; no new one.
	again, created, err := st.Publish(ctx, acct, "ss", PublishOptions{SnapStart: true})
	if err != nil || created || again.Version != "2" {
		t.Errorf("unchanged publish: %v %v %v", again, created, err)
	}

	// ApplyOn None: never SnapStartOn, even on a capable server.
	if _, err := st.Update(ctx, acct, "ss", func(f *Function) error { f.SnapStartApplyOn = ""; return nil }); err != nil {
		t.Fatal(err)
	}
	v3, created, err := st.Publish(ctx, acct, "ss", PublishOptions{SnapStart: true})
	if err != nil || !created || v3.Version != "3" || v3.SnapStartOn || v3.State != StateActive {
		t.Errorf("v3 (ApplyOn None): %+v %v %v", v3, created, err)
	}

	// A failed version keeps the ordinary Failed refusal.
	f := &Function{Account: acct, Region: "us-east-1", Name: "x", Version: "1", SnapStartOn: true}
	f.SetStatus(Status{State: StateFailed})
	var se *StateError
	if err := f.CanInvoke(); !errors.As(err, &se) {
		t.Errorf("failed SnapStart version: %v", err)
	}
}

func TestUpdateVersion(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	defer st.Close()
	createSnapStart(t, st, acct, "uv", SnapStartPublishedVersions)
	if _, err := st.Lookup(ctx, acct, "uv"); err != nil { // starts the cache
		t.Fatal(err)
	}
	waitLoaded(t, st)
	v1, _, err := st.Publish(ctx, acct, "uv", PublishOptions{SnapStart: true})
	if err != nil {
		t.Fatal(err)
	}
	setMemory(t, st, "uv", 256)
	v2, _, err := st.Publish(ctx, acct, "uv", PublishOptions{SnapStart: true})
	if err != nil {
		t.Fatal(err)
	}

	// Pending -> Active with its snapshot.
	got, err := st.UpdateVersion(ctx, acct, "uv", "1", func(v *Function) error {
		v.Snapshot = "snap-1"
		v.Version = "99" // identity cannot change
		return v.Apply(Event{Kind: EvReady})
	})
	if err != nil {
		t.Fatal(err)
	}
	if got.State != StateActive || got.Snapshot != "snap-1" || got.Version != "1" || got.RevisionID == v1.RevisionID ||
		!got.LastModified.Equal(v1.LastModified) || got.ContentRevision != v1.ContentRevision {
		t.Errorf("updated v1: %+v", got)
	}
	stored, err := st.GetVersion(ctx, acct, "uv", "1")
	if err != nil || stored.State != StateActive || stored.Snapshot != "snap-1" || stored.RevisionID != got.RevisionID {
		t.Errorf("stored v1: %+v %v", stored, err)
	}
	// The invoke path's cache sees it at once.
	looked, err := st.LookupQualified(ctx, acct, "uv", "1", 0)
	if err != nil || looked.State != StateActive || looked.CanInvoke() != nil {
		t.Errorf("lookup v1: %+v %v", looked, err)
	}
	if _, err := st.GetVersion(ctx, acct, "uv", "99"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("version 99 exists: %v", err)
	}

	// Pending -> Failed with the reason.
	got, err = st.UpdateVersion(ctx, acct, "uv", "2", func(v *Function) error {
		return v.Apply(Event{Kind: EvFail, Reason: "snapshot failed", ReasonCode: ReasonInternalError})
	})
	if err != nil {
		t.Fatal(err)
	}
	if got.State != StateFailed || got.StateReason != "snapshot failed" || got.StateReasonCode != ReasonInternalError {
		t.Errorf("failed v2: %+v", got)
	}
	if v2.ContentRevision != got.ContentRevision {
		t.Error("ContentRevision changed")
	}
	looked, err = st.LookupQualified(ctx, acct, "uv", "2", 0)
	var se *StateError
	if err != nil || !errors.As(looked.CanInvoke(), &se) {
		t.Errorf("lookup v2: %+v %v", looked, err)
	}

	// A refused transition is returned as is and changes nothing.
	_, err = st.UpdateVersion(ctx, acct, "uv", "2", func(v *Function) error { return v.Apply(Event{Kind: EvReady}) })
	if !errors.As(err, &se) {
		t.Errorf("refused event: %v", err)
	}
	if s, _ := st.GetVersion(ctx, acct, "uv", "2"); s.RevisionID != got.RevisionID {
		t.Error("refused update was written")
	}

	// Gone versions, bad qualifiers, missing functions: not found.
	if err := st.DeleteVersion(ctx, acct, "uv", "2"); err != nil {
		t.Fatal(err)
	}
	called := false
	for _, q := range []string{"2", "7", "prod", "01"} {
		_, err = st.UpdateVersion(ctx, acct, "uv", q, func(*Function) error { called = true; return nil })
		if !errors.Is(err, errdefs.ErrNotFound) || err.Error() != "not found: Function not found: arn:aws:lambda:us-east-1:123456789012:function:uv:"+q {
			t.Errorf("update of version %s: %v", q, err)
		}
	}
	if _, err = st.UpdateVersion(ctx, acct, "nope", "1", func(*Function) error { called = true; return nil }); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("missing function: %v", err)
	}
	if called {
		t.Error("mutate ran on a missing version")
	}
}

func TestUpdateVersionConcurrent(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	createSnapStart(t, st, acct, "cv", "")
	if _, _, err := st.Publish(ctx, acct, "cv", PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	const n = 8
	errs := make(chan error, n)
	for i := range n {
		go func() {
			_, err := st.UpdateVersion(ctx, acct, "cv", "1", func(v *Function) error {
				if v.Env == nil {
					v.Env = map[string]string{}
				}
				v.Env[string(rune('a'+i))] = "x"
				return nil
			})
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	v, err := st.GetVersion(ctx, acct, "cv", "1")
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Env) != n+1 { // A plus one per writer: none lost
		t.Errorf("lost updates: %v", v.Env)
	}
}

func TestPendingSnapStart(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	if got, err := st.PendingSnapStart(ctx); err != nil || len(got) != 0 {
		t.Fatalf("empty table: %v %v", got, err)
	}
	const other = "210987654321"
	createSnapStart(t, st, acct, "a", SnapStartPublishedVersions)
	createSnapStart(t, st, other, "b", SnapStartPublishedVersions)
	createSnapStart(t, st, acct, "plain", "")

	pub := func(account, name string, snap bool) *Function {
		t.Helper()
		if _, err := st.Update(ctx, account, name, func(f *Function) error { f.MemoryMB += 64; return nil }); err != nil {
			t.Fatal(err)
		}
		v, created, err := st.Publish(ctx, account, name, PublishOptions{SnapStart: snap})
		if err != nil || !created {
			t.Fatalf("publish %s: %v %v", name, created, err)
		}
		return v
	}
	a1 := pub(acct, "a", true)  // pending
	a2 := pub(acct, "a", true)  // made Active below
	a3 := pub(acct, "a", true)  // made Failed below
	pub(acct, "a", false)       // Active, Off
	b1 := pub(other, "b", true) // pending, other account
	pub(acct, "plain", true)    // Active, ApplyOn None
	b2 := pub(other, "b", true) // deleted below
	if _, err := st.UpdateVersion(ctx, acct, "a", a2.Version, func(v *Function) error { return v.Apply(Event{Kind: EvReady}) }); err != nil {
		t.Fatal(err)
	}
	if _, err := st.UpdateVersion(ctx, acct, "a", a3.Version, func(v *Function) error { return v.Apply(Event{Kind: EvFail, Reason: "x"}) }); err != nil {
		t.Fatal(err)
	}
	if err := st.DeleteVersion(ctx, other, "b", b2.Version); err != nil {
		t.Fatal(err)
	}

	got, err := st.PendingSnapStart(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var arns []string
	for _, f := range got {
		arns = append(arns, f.QualifiedARN())
	}
	want := map[string]bool{a1.QualifiedARN(): true, b1.QualifiedARN(): true}
	if len(arns) != len(want) {
		t.Fatalf("pending: %v, want %v", arns, want)
	}
	for _, a := range arns {
		if !want[a] {
			t.Errorf("pending: %v, want %v", arns, want)
		}
	}

	// A deleted function's versions are gone from it.
	if err := st.Delete(ctx, other, "b"); err != nil {
		t.Fatal(err)
	}
	got, err = st.PendingSnapStart(ctx)
	if err != nil || len(got) != 1 || got[0].QualifiedARN() != a1.QualifiedARN() {
		t.Errorf("after delete: %v %v", got, err)
	}
}

// TestUpdateVersionCache: the Store's own cache reflects UpdateVersion at
// once, without the watch (here: a cache marked loaded with no watch, so
// that only the Store's writes fill it).
func TestUpdateVersionCache(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	st.cache.mu.Lock()
	st.cache.loaded, st.cache.running = true, true
	st.cache.mu.Unlock()
	createSnapStart(t, st, acct, "cc", SnapStartPublishedVersions)
	if _, _, err := st.Publish(ctx, acct, "cc", PublishOptions{SnapStart: true}); err != nil {
		t.Fatal(err)
	}
	if v, err := st.LookupQualified(ctx, acct, "cc", "1", 0); err != nil || v.State != StatePending {
		t.Fatalf("cached pending version: %+v %v", v, err)
	}
	if _, err := st.UpdateVersion(ctx, acct, "cc", "1", func(v *Function) error { return v.Apply(Event{Kind: EvReady}) }); err != nil {
		t.Fatal(err)
	}
	if v, err := st.LookupQualified(ctx, acct, "cc", "1", 0); err != nil || v.State != StateActive {
		t.Errorf("cached version after UpdateVersion: %+v %v", v, err)
	}
}
