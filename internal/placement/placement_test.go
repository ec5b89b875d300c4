package placement

import (
	"testing"
	"time"

	"kindling/internal/capacity"
)

func TestChoose(t *testing.T) {
	now := time.Unix(1000, 0)
	fl := capacity.NewFleet(5 * time.Second)
	fl.Heartbeat("small", 1024, 900, 1, now)
	fl.Heartbeat("big", 4096, 1000, 3, now)
	fl.Heartbeat("stale", 8192, 0, 0, now.Add(-time.Minute))
	fl.Heartbeat("drained", 8192, 0, 0, now)
	fl.Drain("drained")

	avail := fl.Available(now)
	if len(avail) != 2 || avail[0].ID != "big" {
		t.Fatalf("available = %+v, want big then small", avail)
	}
	if id, ok := Choose(avail, 2048); !ok || id != "big" {
		t.Fatalf("Choose(2048) = %q %v, want big", id, ok)
	}
	if _, ok := Choose(avail, 4000); ok {
		t.Fatal("Choose found room that no worker has")
	}
	// A stale worker comes back with its next heartbeat.
	fl.Heartbeat("stale", 8192, 0, 0, now)
	if id, _ := Choose(fl.Available(now), 6000); id != "stale" {
		t.Fatalf("recovered worker not chosen: %q", id)
	}
}
