package config

import (
	"context"
	"errors"
	"testing"
	"time"

	"kindling/internal/errdefs"
)

// waitLoaded waits until st's cache answers lookups.
func waitLoaded(t testing.TB, st *Store) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, ok := st.cache.lookup(key(acct, "probe")); ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("cache not loaded within 5 s")
		}
		time.Sleep(time.Millisecond) // polling a condition, not synchronising
	}
}

// eventually polls cond until it holds or 5 s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 5 s", what)
		}
		time.Sleep(time.Millisecond) // polling a condition, not synchronising
	}
}

func TestLookup(t *testing.T) {
	ctx := context.Background()
	s := startNATS(t, t.TempDir())
	st, err := Open(ctx, s.JetStream())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Create(ctx, newFn("pre")); err != nil {
		t.Fatal(err)
	}
	// Before the copy is loaded, Lookup reads the KV.
	if f, err := st.Lookup(ctx, acct, "pre"); err != nil || f.Name != "pre" {
		t.Fatalf("first lookup: %v", err)
	}
	waitLoaded(t, st)
	if f, err := st.Lookup(ctx, acct, "pre"); err != nil || f.Name != "pre" {
		t.Fatalf("cached lookup of an initial value: %v", err)
	}
	if _, err := st.Lookup(ctx, acct, "missing"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("missing: %v", err)
	}

	// Own writes are visible at once.
	if err := st.Create(ctx, newFn("own")); err != nil {
		t.Fatal(err)
	}
	if f, err := st.Lookup(ctx, acct, "own"); err != nil || f.MemoryMB != 128 {
		t.Fatalf("own create: %v", err)
	}
	if _, err := st.Update(ctx, acct, "own", func(f *Function) error { f.MemoryMB = 1024; return nil }); err != nil {
		t.Fatal(err)
	}
	if f, _ := st.Lookup(ctx, acct, "own"); f.MemoryMB != 1024 {
		t.Errorf("own update: %d", f.MemoryMB)
	}
	if err := st.Delete(ctx, acct, "own"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Lookup(ctx, acct, "own"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("own delete: %v", err)
	}
	if err := st.Create(ctx, newFn("own")); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Lookup(ctx, acct, "own"); err != nil {
		t.Errorf("recreated: %v", err)
	}

	// Another process's writes arrive through the watch.
	other, err := Open(ctx, s.JetStream())
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Create(ctx, newFn("theirs")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "other's create", func() bool { _, err := st.Lookup(ctx, acct, "theirs"); return err == nil })
	if _, err := other.Update(ctx, acct, "own", func(f *Function) error { f.TimeoutSec = 77; return nil }); err != nil {
		t.Fatal(err)
	}
	eventually(t, "other's update", func() bool { f, _ := st.Lookup(ctx, acct, "own"); return f != nil && f.TimeoutSec == 77 })
	if err := other.Delete(ctx, acct, "theirs"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "other's delete", func() bool {
		_, err := st.Lookup(ctx, acct, "theirs")
		return errors.Is(err, errdefs.ErrNotFound)
	})

	// Close stops the copy; Lookup still answers from the KV.
	st.Close()
	eventually(t, "cache stopped", func() bool { _, ok := st.cache.lookup(key(acct, "own")); return !ok })
	if f, err := st.Lookup(ctx, acct, "own"); err != nil || f.TimeoutSec != 77 {
		t.Errorf("after Close: %v", err)
	}
}

func TestCacheNeverRegresses(t *testing.T) {
	c := newCache()
	c.loaded = true
	k := key(acct, "f")
	c.put(k, cacheEntry{fn: &Function{MemoryMB: 2}, rev: 10})
	c.put(k, cacheEntry{fn: &Function{MemoryMB: 1}, rev: 9}) // late, older
	if e, _ := c.lookup(k); e.fn.MemoryMB != 2 {
		t.Errorf("regressed to %d", e.fn.MemoryMB)
	}
	c.put(k, cacheEntry{rev: 11})
	if e, ok := c.lookup(k); !ok || e.fn != nil {
		t.Error("tombstone not applied")
	}
	c.put(k, cacheEntry{fn: &Function{MemoryMB: 2}, rev: 10})
	if e, _ := c.lookup(k); e.fn != nil {
		t.Error("tombstone overwritten by an older value")
	}
}

func BenchmarkLookup(b *testing.B) {
	ctx := context.Background()
	st := openStore(b)
	defer st.Close()
	if err := st.Create(ctx, newFn("bench")); err != nil {
		b.Fatal(err)
	}
	if _, err := st.Lookup(ctx, acct, "bench"); err != nil {
		b.Fatal(err)
	}
	waitLoaded(b, st)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := st.Lookup(ctx, acct, "bench"); err != nil {
			b.Fatal(err)
		}
	}
}
