// Package capacity is the capacity manager: it tracks the workers of the
// fleet through their heartbeats, marks those that miss them unhealthy, and
// answers placement's question "which workers can take new sandboxes".
//
// The core is pure: Fleet takes the time as an argument. On one machine the
// fleet has one worker that heartbeats in-process; in a cluster the same
// heartbeats arrive over NATS.
package capacity

import (
	"sort"
	"sync"
	"time"
)

// Health of a worker.
type Health int

// Worker health states: a worker is healthy while its heartbeats arrive,
// unhealthy after missing them for the grace period, and draining when an
// operator or the manager retires it (no new sandboxes; existing ones finish).
const (
	Healthy Health = iota
	Unhealthy
	Draining
)

// Info is what the fleet knows of a worker.
type Info struct {
	ID        string
	TotalMB   int
	UsedMB    int
	LastSeen  time.Time
	Health    Health
	Sandboxes int
}

// FreeMB is the memory still available for sandboxes.
func (i Info) FreeMB() int { return i.TotalMB - i.UsedMB }

// Fleet is the set of workers. Safe for concurrent use.
type Fleet struct {
	grace time.Duration

	mu      sync.Mutex // guards workers
	workers map[string]*Info
}

// NewFleet returns a Fleet that marks a worker unhealthy after grace without
// a heartbeat.
func NewFleet(grace time.Duration) *Fleet {
	return &Fleet{grace: grace, workers: make(map[string]*Info)}
}

// Heartbeat records a worker's report at now.
func (f *Fleet) Heartbeat(id string, totalMB, usedMB, sandboxes int, now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	w := f.workers[id]
	if w == nil {
		w = &Info{ID: id}
		f.workers[id] = w
	}
	w.TotalMB, w.UsedMB, w.Sandboxes, w.LastSeen = totalMB, usedMB, sandboxes, now
	if w.Health == Unhealthy {
		w.Health = Healthy
	}
}

// Drain stops placement on a worker.
func (f *Fleet) Drain(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if w := f.workers[id]; w != nil {
		w.Health = Draining
	}
}

// Available returns the healthy workers at now, most free memory first.
func (f *Fleet) Available(now time.Time) []Info {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]Info, 0, len(f.workers))
	for _, w := range f.workers {
		if w.Health == Healthy && now.Sub(w.LastSeen) > f.grace {
			w.Health = Unhealthy
		}
		if w.Health == Healthy {
			out = append(out, *w)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].FreeMB() != out[j].FreeMB() {
			return out[i].FreeMB() > out[j].FreeMB()
		}
		return out[i].ID < out[j].ID
	})
	return out
}
