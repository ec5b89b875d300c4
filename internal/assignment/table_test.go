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
