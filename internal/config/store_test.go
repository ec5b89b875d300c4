package config

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"kindling/internal/errdefs"
	"kindling/internal/natsembed"
)

const acct = "123456789012"

func startNATS(t testing.TB, dir string) *natsembed.Server {
	t.Helper()
	s, err := natsembed.Start(natsembed.Config{StoreDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Shutdown)
	return s
}

func openStore(t testing.TB) *Store {
	t.Helper()
	s := startNATS(t, t.TempDir())
	st, err := Open(context.Background(), s.JetStream())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func newFn(name string) *Function {
	f := &Function{
		Account: acct, Region: "us-east-1", Name: name, Runtime: "provided.al2023",
		Role: "arn:aws:iam::123456789012:role/r", MemoryMB: 128, TimeoutSec: 3, EphemeralMB: 512,
		Env: map[string]string{"A": "1"}, Architectures: []string{"x86_64"}, PackageType: "Zip",
		CodeSha256: "abc=", CodeKey: "ab", CodeSize: 10,
	}
	if err := f.Apply(Event{Kind: EvCreate}); err != nil {
		panic(err)
	}
	return f
}

func TestCreateGetDelete(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	f := newFn("hello")
	if err := st.Create(ctx, f); err != nil {
		t.Fatal(err)
	}
	if f.RevisionID == "" || f.LastModified.IsZero() || f.Version != LatestVersion {
		t.Errorf("Create did not fill in revision/time/version: %+v", f)
	}
	err := st.Create(ctx, newFn("hello"))
	if !errors.Is(err, errdefs.ErrConflict) || !strings.HasSuffix(err.Error(), "Function already exist: hello") {
		t.Errorf("second create: %v", err)
	}
	got, err := st.Get(ctx, acct, "hello")
	if err != nil {
		t.Fatal(err)
	}
	if got.RevisionID != f.RevisionID || got.Env["A"] != "1" || !got.LastModified.Equal(f.LastModified) {
		t.Errorf("got %+v", got)
	}
	if _, err := st.Get(ctx, "999999999999", "hello"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("other account: %v", err)
	}
	_, err = st.Get(ctx, acct, "nope")
	if !errors.Is(err, errdefs.ErrNotFound) || !strings.HasSuffix(err.Error(), "Function not found: arn:aws:lambda:us-east-1:123456789012:function:nope") {
		t.Errorf("missing: %v", err)
	}
	for _, bad := range []string{"a.b", "", strings.Repeat("x", 65), "a>b"} {
		if _, err := st.Get(ctx, acct, bad); !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("Get(%q): %v", bad, err)
		}
	}
	if err := st.Delete(ctx, acct, "hello"); err != nil {
		t.Fatal(err)
	}
	if err := st.Delete(ctx, acct, "hello"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("second delete: %v", err)
	}
	if _, err := st.Get(ctx, acct, "hello"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("after delete: %v", err)
	}
	// The name can be reused after deletion.
	if err := st.Create(ctx, newFn("hello")); err != nil {
		t.Errorf("recreate: %v", err)
	}
	if err := st.Create(ctx, &Function{Account: "x", Name: "f"}); !errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("bad account: %v", err)
	}
}

func TestUpdate(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	f := newFn("u")
	f.LastModified = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := st.Create(ctx, f); err != nil {
		t.Fatal(err)
	}
	got, err := st.Update(ctx, acct, "u", func(f *Function) error {
		f.MemoryMB = 256
		f.Env["B"] = "2"
		f.Name = "hijack" // ignored
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got.MemoryMB != 256 || got.Name != "u" || got.RevisionID == f.RevisionID || !got.LastModified.After(f.LastModified) {
		t.Errorf("updated: %+v", got)
	}
	if f.Env["B"] != "" {
		t.Error("Update mutated the caller's copy")
	}
	stored, _ := st.Get(ctx, acct, "u")
	if stored.MemoryMB != 256 || stored.Env["B"] != "2" || stored.RevisionID != got.RevisionID {
		t.Errorf("stored: %+v", stored)
	}

	boom := errors.New("boom")
	if _, err := st.Update(ctx, acct, "u", func(*Function) error { return boom }); err != boom {
		t.Errorf("mutate error: %v", err)
	}
	if _, err := st.Update(ctx, acct, "missing", func(*Function) error { return nil }); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("missing: %v", err)
	}

	// Transition keeps LastModified and changes the revision.
	tr, err := st.Transition(ctx, acct, "u", Event{Kind: EvReady})
	if err != nil {
		t.Fatal(err)
	}
	if tr.State != StateActive || !tr.LastModified.Equal(stored.LastModified) || tr.RevisionID == stored.RevisionID {
		t.Errorf("transition: %+v", tr)
	}
	_, err = st.Transition(ctx, acct, "u", Event{Kind: EvWake})
	var se *StateError
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "state: Active") {
		t.Errorf("refused transition: %v", err)
	}
}

// TestConcurrentUpdates has many writers increment one field: the
// compare-and-swap must lose none of them.
func TestConcurrentUpdates(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	if err := st.Create(ctx, newFn("c")); err != nil {
		t.Fatal(err)
	}
	const writers, each = 8, 5
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				_, err := st.Update(ctx, acct, "c", func(f *Function) error { f.CodeSize++; return nil })
				if err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	f, _ := st.Get(ctx, acct, "c")
	if f.CodeSize != 10+writers*each {
		t.Errorf("CodeSize = %d, want %d", f.CodeSize, 10+writers*each)
	}
}

func TestList(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	fns, next, err := st.List(ctx, acct, "", 10)
	if err != nil || len(fns) != 0 || next != "" {
		t.Fatalf("empty: %v %q %v", fns, next, err)
	}
	var want []string
	for i := 0; i < 7; i++ {
		name := fmt.Sprintf("fn-%02d", 6-i)
		want = append([]string{name}, want...)
		if err := st.Create(ctx, newFn(name)); err != nil {
			t.Fatal(err)
		}
	}
	other := newFn("other-account")
	other.Account = "210987654321"
	if err := st.Create(ctx, other); err != nil {
		t.Fatal(err)
	}
	var got []string
	marker := ""
	pages := 0
	for {
		fns, next, err := st.List(ctx, acct, marker, 3)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, f := range fns {
			got = append(got, f.Name)
		}
		if next == "" {
			break
		}
		marker = next
	}
	if strings.Join(got, ",") != strings.Join(want, ",") || pages != 3 {
		t.Errorf("pages=%d got %v want %v", pages, got, want)
	}
	// A marker that is not a name still works (names after it).
	fns, _, _ = st.List(ctx, acct, "fn-03x", 50)
	if len(fns) != 3 || fns[0].Name != "fn-04" {
		t.Errorf("odd marker: %d", len(fns))
	}
	fns, _, _ = st.List(ctx, "bad", "", 50)
	if len(fns) != 0 {
		t.Error("bad account listed functions")
	}
}

func TestPersistence(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s1, err := natsembed.Start(natsembed.Config{StoreDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	st, err := Open(ctx, s1.JetStream())
	if err != nil {
		t.Fatal(err)
	}
	f := newFn("durable")
	if err := st.Create(ctx, f); err != nil {
		t.Fatal(err)
	}
	s1.Shutdown()

	s2 := startNATS(t, dir)
	st2, err := Open(ctx, s2.JetStream())
	if err != nil {
		t.Fatal(err)
	}
	got, err := st2.Get(ctx, acct, "durable")
	if err != nil {
		t.Fatal(err)
	}
	if got.RevisionID != f.RevisionID || got.CodeKey != "ab" {
		t.Errorf("after restart: %+v", got)
	}
}

func TestDecodeRejectsUnknownVersion(t *testing.T) {
	if _, err := decode([]byte(`{"v":2,"fn":{}}`)); err == nil {
		t.Error("v2 accepted")
	}
	if _, err := decode([]byte(`{"v":1}`)); err == nil {
		t.Error("missing fn accepted")
	}
	if _, err := decode([]byte(`nope`)); err == nil {
		t.Error("garbage accepted")
	}
}

func TestRevisionIDIsUUIDv4(t *testing.T) {
	id := newRevisionID()
	if len(id) != 36 || id[14] != '4' || !strings.ContainsRune("89ab", rune(id[19])) {
		t.Errorf("bad uuid %q", id)
	}
	if id == newRevisionID() {
		t.Error("repeated id")
	}
}

func BenchmarkGet(b *testing.B) {
	ctx := context.Background()
	st := openStore(b)
	if err := st.Create(ctx, newFn("bench")); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := st.Get(ctx, acct, "bench"); err != nil {
			b.Fatal(err)
		}
	}
}
