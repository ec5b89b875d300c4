// Package assignment is the assignment service (the seed's worker manager):
// it knows every execution environment and its state, hands idle ones out
// for warm invokes and asks placement for new ones on cold starts.
//
// The package has a pure core, Table, which does no I/O, takes the time as an
// argument and is tested without sockets or sleeps; and Manager, its edge,
// which holds a mutex around the Table, calls placement, and runs the
// keep-alive reaper. State lives in memory for now; the journal-backed,
// replicated service is a later step and will journal Table's transitions
// (creation, retirement) but never the warm acquire/release pair.
//
// Lifecycle of one environment in the Table:
//
//	            Add                 Ready                Acquire
//	(none) ──────────> initialising ─────> busy(first) ──────────┐
//	                        │                  │  Release(ok)     │
//	                        │ Fail             ▼                  │
//	                        │                idle ────────────────┘
//	                        │                  │ Expire / Retire
//	                        ▼                  ▼
//	                      gone <───────────  gone
//
// An environment is created for the invocation that asked for it, so it goes
// from initialising straight to busy; one created ahead for provisioned
// concurrency enters idle and pinned (AddIdle), which Expire skips. Release(unhealthy) from busy, Retire of
// a busy environment (marked, removed at its Release) and Expire of an idle
// one all end in gone; the caller destroys what the Table returns.
package assignment

import (
	"strings"
	"time"
)

// State is an environment's state in the Table.
type State int

// The states.
const (
	StateInitialising State = iota
	StateIdle
	StateBusy
)

func (s State) String() string {
	switch s {
	case StateInitialising:
		return "initialising"
	case StateIdle:
		return "idle"
	case StateBusy:
		return "busy"
	}
	return "unknown"
}

// Key identifies what an environment can serve: one function version at one
// configuration revision. Environments of other revisions of the same
// function are retired when a newer revision is acquired.
type Key struct {
	// Function is the function's identity, the qualified ARN.
	Function string
	// Revision is the configuration revision the environment was made
	// from.
	Revision string
}

// Entry is one environment as the Table sees it. Ref is the caller's handle
// (the worker's environment); the Table never looks inside.
type Entry struct {
	ID        string
	Key       Key
	State     State
	MemoryMB  int
	IdleSince time.Time
	// Pinned environments are provisioned concurrency: never expired by
	// the keep-alive nor evicted for room (still destroyed when unhealthy
	// or retired).
	Pinned  bool
	retired bool
	Ref     any
	// freeze is the Manager's freezer bookkeeping (freeze.go); the Table
	// never looks at it.
	freeze *freezeSlot
}

// Table is the pure state of all environments. It is not safe for concurrent
// use: Manager serialises access.
type Table struct {
	byID map[string]*Entry
	// idle holds, per key, the idle environments, most recently released
	// last (handed out LIFO so the warmest is reused and the coldest ages
	// out).
	idle map[Key][]*Entry
	// revisions maps a function to the newest revision acquired.
	revisions map[string]string
	// memoryMB is the memory of every environment in the Table.
	memoryMB int
}

// NewTable returns an empty Table.
func NewTable() *Table {
	return &Table{
		byID:      make(map[string]*Entry),
		idle:      make(map[Key][]*Entry),
		revisions: make(map[string]string),
	}
}

// Acquire hands out the most recently used idle environment of key, now
// busy. It also notes key's revision as the newest of its function and
// returns the environments of older revisions that must now be destroyed
// (idle ones; busy ones are marked and come back from Release).
func (t *Table) Acquire(key Key) (e *Entry, retired []*Entry) {
	if rev, ok := t.revisions[key.Function]; !ok || rev != key.Revision {
		t.revisions[key.Function] = key.Revision
		if ok {
			retired = t.retire(key.Function, key.Revision)
		}
	}
	list := t.idle[key]
	if n := len(list); n > 0 {
		e = list[n-1]
		list[n-1] = nil
		if n == 1 {
			delete(t.idle, key)
		} else {
			t.idle[key] = list[:n-1]
		}
		e.State = StateBusy
	}
	return e, retired
}

// Add records a new environment that is being created for an invocation.
func (t *Table) Add(id string, key Key, memoryMB int, ref any) *Entry {
	e := &Entry{ID: id, Key: key, State: StateInitialising, MemoryMB: memoryMB, Ref: ref}
	if _, ok := t.revisions[key.Function]; !ok {
		t.revisions[key.Function] = key.Revision
	}
	t.byID[id] = e
	t.memoryMB += memoryMB
	return e
}

// AddIdle records a new environment created ahead of any invocation
// (provisioned concurrency): idle at once and pinned. Like Acquire, it
// makes key's revision the newest of its function and returns the
// environments of older revisions to destroy.
func (t *Table) AddIdle(id string, key Key, memoryMB int, ref any, now time.Time) (retired []*Entry) {
	if rev, ok := t.revisions[key.Function]; !ok || rev != key.Revision {
		t.revisions[key.Function] = key.Revision
		if ok {
			retired = t.retire(key.Function, key.Revision)
		}
	}
	e := &Entry{ID: id, Key: key, State: StateIdle, MemoryMB: memoryMB, Ref: ref, Pinned: true, IdleSince: now}
	t.byID[id] = e
	t.memoryMB += memoryMB
	t.idle[key] = append(t.idle[key], e)
	return retired
}

// Pinned counts the pinned environments of key.
func (t *Table) Pinned(key Key) int {
	n := 0
	for _, e := range t.byID {
		if e.Pinned && e.Key == key && !e.retired {
			n++
		}
	}
	return n
}

// Unpin unpins all but keep pinned environments of key; unpinned idle ones
// age from now like any idle environment.
func (t *Table) Unpin(key Key, keep int, now time.Time) {
	for _, e := range t.byID {
		if !e.Pinned || e.Key != key {
			continue
		}
		if keep > 0 {
			keep--
			continue
		}
		e.Pinned = false
		if e.State == StateIdle {
			e.IdleSince = now
		}
	}
}

// Ready moves an initialising environment to busy: it serves the invocation
// it was created for.
func (t *Table) Ready(id string) {
	if e := t.byID[id]; e != nil && e.State == StateInitialising {
		e.State = StateBusy
	}
}

// Remove forgets an environment that failed or was destroyed, whatever its
// state, and reports whether it was known.
func (t *Table) Remove(id string) bool {
	e := t.byID[id]
	if e == nil {
		return false
	}
	if e.State == StateIdle {
		t.dropIdle(e)
	}
	delete(t.byID, id)
	t.memoryMB -= e.MemoryMB
	return true
}

// Release returns a busy environment. A healthy one of a current revision
// becomes idle; otherwise it is removed and destroy is true.
func (t *Table) Release(id string, healthy bool, now time.Time) (destroy bool) {
	e := t.byID[id]
	if e == nil || e.State != StateBusy {
		return false
	}
	if !healthy || e.retired || t.revisions[e.Key.Function] != e.Key.Revision {
		t.Remove(id)
		return true
	}
	e.State = StateIdle
	e.IdleSince = now
	t.idle[e.Key] = append(t.idle[e.Key], e)
	return false
}

// Expire removes and returns the environments idle since before
// now-keepAlive.
func (t *Table) Expire(now time.Time, keepAlive time.Duration) []*Entry {
	var out []*Entry
	cutoff := now.Add(-keepAlive)
	for key, list := range t.idle {
		keep := list[:0]
		for _, e := range list {
			if !e.Pinned && e.IdleSince.Before(cutoff) {
				out = append(out, e)
				delete(t.byID, e.ID)
				t.memoryMB -= e.MemoryMB
			} else {
				keep = append(keep, e)
			}
		}
		clear(list[len(keep):])
		if len(keep) == 0 {
			delete(t.idle, key)
		} else {
			t.idle[key] = keep
		}
	}
	return out
}

// RetireFunction retires every environment of function (on deletion):
// idle ones are removed and returned, busy ones are removed at Release.
func (t *Table) RetireFunction(function string) []*Entry {
	delete(t.revisions, function)
	return t.retire(function, "")
}

// RetireARN retires the environments of every version of the function
// named by an unqualified ARN (or of one version, given a qualified one):
// on deletion, so that nothing of it waits out the keep-alive.
func (t *Table) RetireARN(arn string) []*Entry {
	functions := map[string]bool{}
	for _, e := range t.byID {
		if f := e.Key.Function; f == arn || strings.HasPrefix(f, arn+":") {
			functions[f] = true
		}
	}
	var out []*Entry
	for f := range functions {
		out = append(out, t.RetireFunction(f)...)
	}
	return out
}

// retire marks the environments of function whose revision is not keep,
// removing and returning the idle ones.
func (t *Table) retire(function, keep string) []*Entry {
	var out []*Entry
	for _, e := range t.byID {
		if e.Key.Function != function || e.Key.Revision == keep {
			continue
		}
		e.retired = true
		if e.State == StateIdle {
			out = append(out, e)
		}
	}
	for _, e := range out {
		t.Remove(e.ID)
	}
	return out
}

func (t *Table) dropIdle(e *Entry) {
	list := t.idle[e.Key]
	for i, x := range list {
		if x == e {
			list = append(list[:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(t.idle, e.Key)
	} else {
		t.idle[e.Key] = list
	}
}

// Counts reports how many environments are in each state, and their memory.
func (t *Table) Counts() (initialising, idle, busy, memoryMB int) {
	for _, e := range t.byID {
		switch e.State {
		case StateInitialising:
			initialising++
		case StateIdle:
			idle++
		case StateBusy:
			busy++
		}
	}
	return initialising, idle, busy, t.memoryMB
}

// IdleBefore returns the environments idle since before cutoff, pinned
// ones included.
func (t *Table) IdleBefore(cutoff time.Time) []*Entry {
	var out []*Entry
	for _, list := range t.idle {
		for _, e := range list {
			if e.IdleSince.Before(cutoff) {
				out = append(out, e)
			}
		}
	}
	return out
}

// Has reports whether e is (still) in the Table.
func (t *Table) Has(e *Entry) bool { return e != nil && t.byID[e.ID] == e }

// All returns every environment (for shutdown).
func (t *Table) All() []*Entry {
	out := make([]*Entry, 0, len(t.byID))
	for _, e := range t.byID {
		out = append(out, e)
	}
	return out
}
