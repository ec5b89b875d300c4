package assignment

import (
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func TestColdThenWarm(t *testing.T) {
	tb := NewTable()
	k := Key{Function: "f:$LATEST", Revision: "r1"}
	if e, _ := tb.Acquire(k); e != nil {
		t.Fatalf("empty table handed out %v", e.ID)
	}
	tb.Add("a", k, 128, nil)
	tb.Ready("a")
	if destroy := tb.Release("a", true, t0); destroy {
		t.Fatal("healthy release destroyed the environment")
	}
	e, _ := tb.Acquire(k)
	if e == nil || e.ID != "a" || e.State != StateBusy {
		t.Fatalf("warm acquire = %+v, want a busy", e)
	}
	if e2, _ := tb.Acquire(k); e2 != nil {
		t.Fatalf("busy environment handed out twice")
	}
}

func TestLIFOReuse(t *testing.T) {
	tb := NewTable()
	k := Key{Function: "f", Revision: "r"}
	for i, id := range []string{"a", "b", "c"} {
		tb.Add(id, k, 128, nil)
		tb.Ready(id)
		tb.Release(id, true, t0.Add(time.Duration(i)*time.Second))
	}
	e, _ := tb.Acquire(k)
	if e.ID != "c" {
		t.Fatalf("acquired %s, want the most recently released c", e.ID)
	}
}

func TestUnhealthyReleaseDestroys(t *testing.T) {
	tb := NewTable()
	k := Key{Function: "f", Revision: "r"}
	tb.Add("a", k, 128, nil)
	tb.Ready("a")
	if !tb.Release("a", false, t0) {
		t.Fatal("unhealthy release kept the environment")
	}
	if e, _ := tb.Acquire(k); e != nil {
		t.Fatal("dead environment handed out")
	}
	if _, _, _, mem := tb.Counts(); mem != 0 {
		t.Fatalf("memory %d after removal, want 0", mem)
	}
}

func TestExpire(t *testing.T) {
	tb := NewTable()
	k := Key{Function: "f", Revision: "r"}
	tb.Add("old", k, 128, nil)
	tb.Ready("old")
	tb.Release("old", true, t0)
	tb.Add("new", k, 256, nil)
	tb.Ready("new")
	tb.Release("new", true, t0.Add(9*time.Minute))
	out := tb.Expire(t0.Add(10*time.Minute+time.Second), 10*time.Minute)
	if len(out) != 1 || out[0].ID != "old" {
		t.Fatalf("expired %v, want [old]", out)
	}
	e, _ := tb.Acquire(k)
	if e == nil || e.ID != "new" {
		t.Fatalf("after expiry acquired %v, want new", e)
	}
	if _, _, busy, mem := tb.Counts(); busy != 1 || mem != 256 {
		t.Fatalf("busy=%d mem=%d, want 1 and 256", busy, mem)
	}
}

func TestNewRevisionRetiresOld(t *testing.T) {
	tb := NewTable()
	k1 := Key{Function: "f", Revision: "r1"}
	k2 := Key{Function: "f", Revision: "r2"}
	tb.Acquire(k1)
	tb.Add("idle1", k1, 128, nil)
	tb.Ready("idle1")
	tb.Release("idle1", true, t0)
	tb.Add("busy1", k1, 128, nil)
	tb.Ready("busy1")

	e, retired := tb.Acquire(k2)
	if e != nil {
		t.Fatal("environment of the old revision handed out for the new one")
	}
	if len(retired) != 1 || retired[0].ID != "idle1" {
		t.Fatalf("retired %v, want [idle1]", retired)
	}
	if !tb.Release("busy1", true, t0) {
		t.Fatal("busy environment of a retired revision went back to idle")
	}
	if i, idle, busy, _ := tb.Counts(); i+idle+busy != 0 {
		t.Fatalf("table not empty: %d %d %d", i, idle, busy)
	}
}

func TestRetireFunction(t *testing.T) {
	tb := NewTable()
	k := Key{Function: "f", Revision: "r"}
	tb.Acquire(k)
	tb.Add("a", k, 128, nil)
	tb.Ready("a")
	tb.Release("a", true, t0)
	tb.Add("b", k, 128, nil)
	tb.Ready("b")
	out := tb.RetireFunction("f")
	if len(out) != 1 || out[0].ID != "a" {
		t.Fatalf("retired %v, want [a]", out)
	}
	if !tb.Release("b", true, t0) {
		t.Fatal("busy environment of a deleted function survived its release")
	}
}

func TestReleaseUnknownOrIdle(t *testing.T) {
	tb := NewTable()
	if tb.Release("nope", true, t0) {
		t.Fatal("unknown release reported destroy")
	}
	k := Key{Function: "f", Revision: "r"}
	tb.Add("a", k, 128, nil)
	tb.Ready("a")
	tb.Release("a", true, t0)
	tb.Release("a", true, t0) // double release: ignored
	if _, idle, _, _ := tb.Counts(); idle != 1 {
		t.Fatalf("idle=%d after double release, want 1", idle)
	}
}

func TestPinnedEnvironments(t *testing.T) {
	tb := NewTable()
	key := Key{Function: "arn:f:1", Revision: "r1"}
	now := time.Unix(1000, 0)
	tb.AddIdle("p1", key, 128, nil, now)
	tb.AddIdle("p2", key, 128, nil, now)
	if n := tb.Pinned(key); n != 2 {
		t.Fatalf("Pinned = %d, want 2", n)
	}
	// The keep-alive leaves pinned environments alone.
	if out := tb.Expire(now.Add(time.Hour), time.Minute); len(out) != 0 {
		t.Errorf("Expire removed %d pinned environments", len(out))
	}
	// They serve invocations and come back pinned.
	e, _ := tb.Acquire(key)
	if e == nil || !e.Pinned {
		t.Fatalf("Acquire = %+v, want a pinned environment", e)
	}
	tb.Release(e.ID, true, now)
	// Unpinned, they age out.
	tb.Unpin(key, 1, now)
	if n := tb.Pinned(key); n != 1 {
		t.Fatalf("Pinned after Unpin(1) = %d", n)
	}
	if out := tb.Expire(now.Add(time.Hour), time.Minute); len(out) != 1 {
		t.Errorf("Expire after Unpin removed %d, want 1", len(out))
	}
	// Unhealthy: removed even when pinned.
	e, _ = tb.Acquire(key)
	if !tb.Release(e.ID, false, now) || tb.Pinned(key) != 0 {
		t.Errorf("an unhealthy pinned environment stayed")
	}
	// A newer revision retires the older one's environments.
	tb.AddIdle("p3", key, 128, nil, now)
	if out := tb.AddIdle("p4", Key{Function: "arn:f:1", Revision: "r2"}, 128, nil, now); len(out) != 1 || out[0].ID != "p3" {
		t.Errorf("AddIdle of a newer revision retired %v, want p3", out)
	}
}

func TestRetireARN(t *testing.T) {
	tb := NewTable()
	const arn = "arn:aws:lambda:us-east-1:000000000000:function:f"
	keys := []Key{{Function: arn + ":$LATEST", Revision: "r"}, {Function: arn + ":1", Revision: "r"}, {Function: arn + "x:$LATEST", Revision: "r"}}
	for i, k := range keys {
		id := string(rune('a' + i))
		tb.Acquire(k)
		tb.Add(id, k, 128, nil)
		tb.Ready(id)
		tb.Release(id, true, t0)
	}
	out := tb.RetireARN(arn)
	if len(out) != 2 {
		t.Fatalf("retired %d environments, want the 2 of function f (not fx)", len(out))
	}
	if e, _ := tb.Acquire(keys[2]); e == nil {
		t.Fatal("another function's environment was retired")
	}
}
