package assignment

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"kindling/internal/clock"
	"kindling/internal/config"
	"kindling/internal/invoke"
)

// freezeEnv is an Env that records freezes and thaws.
type freezeEnv struct {
	id string

	mu          sync.Mutex
	frozen      bool
	freezes     int
	thaws       int
	destroyed   bool
	thawErr     error
	unsupported bool
	gate        chan struct{} // when set, Freeze waits for it
}

func (e *freezeEnv) ID() string  { return e.id }
func (e *freezeEnv) Alive() bool { return true }
func (e *freezeEnv) Invoke(context.Context, *invoke.Request) (*invoke.Result, bool, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.frozen {
		return nil, false, errors.New("invoked while frozen")
	}
	return &invoke.Result{}, true, nil
}
func (e *freezeEnv) Destroy() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.destroyed = true
}
func (e *freezeEnv) Freeze() error {
	e.mu.Lock()
	g := e.gate
	e.mu.Unlock()
	if g != nil {
		<-g
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.freezes++
	if e.unsupported {
		return fmt.Errorf("no: %w", errors.ErrUnsupported)
	}
	e.frozen = true
	return nil
}
func (e *freezeEnv) Thaw() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.thaws++
	if e.thawErr != nil {
		return e.thawErr
	}
	e.frozen = false
	return nil
}

func (e *freezeEnv) state() (frozen, destroyed bool, freezes, thaws int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.frozen, e.destroyed, e.freezes, e.thaws
}

type fakePlacer struct {
	mu   sync.Mutex
	envs []*freezeEnv
}

func (p *fakePlacer) Place(context.Context, *config.Function) (Env, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	e := &freezeEnv{id: fmt.Sprintf("env-%d", len(p.envs))}
	p.envs = append(p.envs, e)
	return e, nil
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func testFunction() *config.Function {
	return &config.Function{Account: "111111111111", Region: "us-east-1", Name: "f", Version: "$LATEST", RevisionID: "r1", MemoryMB: 128}
}

// TestFreezeIdle checks that an environment idle for FreezeAfter is
// frozen, not sooner (back-to-back invokes never thaw), that Acquire thaws
// it before handing it out, and that one whose thaw fails is destroyed and
// replaced.
func TestFreezeIdle(t *testing.T) {
	p := &fakePlacer{}
	const after = 50 * time.Millisecond
	m := NewManager(Config{Placer: p, Clock: clock.Real(), KeepAlive: time.Hour, FreezeAfter: after})
	defer m.Close()
	fn := testFunction()

	l, err := m.Acquire(t.Context(), fn)
	if err != nil || !l.Cold {
		t.Fatalf("first Acquire: %+v, %v", l, err)
	}
	e0 := p.envs[0]
	// Back to back: never frozen.
	for range 5 {
		m.Release(l, true)
		if l, err = m.Acquire(t.Context(), fn); err != nil || l.Env != Env(e0) {
			t.Fatalf("warm Acquire: %+v, %v", l, err)
		}
	}
	if _, _, f, th := e0.state(); f != 0 || th != 0 {
		t.Fatalf("back-to-back invokes froze %d and thawed %d times", f, th)
	}
	m.Release(l, true)
	waitFor(t, "the freeze of an idle environment", func() bool { fr, _, _, _ := e0.state(); return fr })
	time.Sleep(3 * after)
	if _, _, f, _ := e0.state(); f != 1 {
		t.Errorf("an idle environment was frozen %d times, want 1", f)
	}
	l, err = m.Acquire(t.Context(), fn)
	if err != nil || l.Cold || l.Env != Env(e0) {
		t.Fatalf("warm Acquire of a frozen environment: %+v, %v", l, err)
	}
	if _, _, err := l.Env.Invoke(t.Context(), &invoke.Request{}); err != nil {
		t.Fatalf("warm invoke: %v", err)
	}
	m.Release(l, true)

	// Thaw fails: destroyed, and a new environment placed instead.
	waitFor(t, "the second freeze", func() bool { _, _, f, _ := e0.state(); return f == 2 })
	e0.mu.Lock()
	e0.thawErr = errors.New("thaw failed")
	e0.mu.Unlock()
	l, err = m.Acquire(t.Context(), fn)
	if err != nil || !l.Cold || l.Env == Env(e0) {
		t.Fatalf("Acquire after a failed thaw: %+v, %v", l, err)
	}
	waitFor(t, "the destroy of an environment that did not thaw", func() bool { _, d, _, _ := e0.state(); return d })
	if i, idle, b, _ := m.Stats(); i+idle+b != 1 {
		t.Errorf("environments after a failed thaw: %d initialising, %d idle, %d busy", i, idle, b)
	}
	m.Release(l, true)
}

// TestFreezeRace checks that an Acquire during a freeze waits for it and
// thaws, so that the environment is never handed out frozen.
func TestFreezeRace(t *testing.T) {
	p := &fakePlacer{}
	m := NewManager(Config{Placer: p, Clock: clock.Real(), KeepAlive: time.Hour, FreezeAfter: 10 * time.Millisecond})
	defer m.Close()
	fn := testFunction()
	l, err := m.Acquire(t.Context(), fn)
	if err != nil {
		t.Fatal(err)
	}
	e := p.envs[0]
	for i := range 20 {
		gate := make(chan struct{})
		e.mu.Lock()
		e.gate = gate
		e.mu.Unlock()
		m.Release(l, true)
		if i%2 == 0 {
			// The freeze has begun and waits at the gate.
			time.Sleep(40 * time.Millisecond)
		}
		go func() { time.Sleep(5 * time.Millisecond); close(gate) }()
		if l, err = m.Acquire(t.Context(), fn); err != nil || l.Env != Env(e) {
			t.Fatalf("Acquire %d: %+v, %v", i, l, err)
		}
		if _, _, err := l.Env.Invoke(t.Context(), &invoke.Request{}); err != nil {
			t.Fatalf("invoke %d: %v", i, err)
		}
		time.Sleep(30 * time.Millisecond) // a stray freeze would show now
		if fr, _, _, _ := e.state(); fr {
			t.Fatalf("frozen while busy (round %d)", i)
		}
	}
	m.Release(l, true)
}

// TestFreezeUnsupported checks that an environment whose Freeze says
// errors.ErrUnsupported is not asked again, and that keep-alive expiry and
// Close destroy frozen environments.
func TestFreezeUnsupported(t *testing.T) {
	p := &fakePlacer{}
	m := NewManager(Config{Placer: p, Clock: clock.Real(), KeepAlive: 300 * time.Millisecond, FreezeAfter: 5 * time.Millisecond})
	defer m.Close()
	fn := testFunction()
	l, err := m.Acquire(t.Context(), fn)
	if err != nil {
		t.Fatal(err)
	}
	e := p.envs[0]
	e.mu.Lock()
	e.unsupported = true
	e.mu.Unlock()
	m.Release(l, true)
	waitFor(t, "a freeze attempt", func() bool { _, _, f, _ := e.state(); return f == 1 })
	time.Sleep(100 * time.Millisecond)
	if _, _, f, _ := e.state(); f != 1 {
		t.Errorf("Freeze called %d times after ErrUnsupported", f)
	}
	waitFor(t, "keep-alive expiry", func() bool { _, d, _, _ := e.state(); return d })

	// A frozen one expires too.
	l, err = m.Acquire(t.Context(), fn)
	if err != nil || !l.Cold {
		t.Fatal(l, err)
	}
	e1 := p.envs[1]
	m.Release(l, true)
	waitFor(t, "the freeze", func() bool { fr, _, _, _ := e1.state(); return fr })
	waitFor(t, "keep-alive expiry of a frozen environment", func() bool { _, d, _, _ := e1.state(); return d })
}

// TestFreezeProvisioned checks that a provisioned environment is frozen
// while it waits, thawed for its invocation, and that Close destroys
// frozen environments.
func TestFreezeProvisioned(t *testing.T) {
	p := &fakePlacer{}
	m := NewManager(Config{Placer: p, Clock: clock.Real(), KeepAlive: time.Millisecond, FreezeAfter: 5 * time.Millisecond})
	fn := testFunction()
	fn.Version = "1"
	m.Provision(fn.QualifiedARN(), fn, 1)
	waitFor(t, "the provisioned environment", func() bool { return m.Provisioned(fn.QualifiedARN()) == 1 })
	e := p.envs[0]
	waitFor(t, "the freeze of a provisioned environment", func() bool { fr, _, _, _ := e.state(); return fr })
	l, err := m.Acquire(t.Context(), fn)
	if err != nil || l.Env != Env(e) {
		t.Fatalf("Acquire: %+v, %v", l, err)
	}
	if fr, _, _, _ := e.state(); fr {
		t.Fatal("handed out frozen")
	}
	m.Release(l, true)
	waitFor(t, "the freeze after release", func() bool { fr, _, _, _ := e.state(); return fr })
	m.Close()
	if _, d, _, _ := e.state(); !d {
		t.Error("Close did not destroy a frozen environment")
	}
}
