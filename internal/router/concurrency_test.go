package router

import (
	"errors"
	"sync"
	"testing"

	"kindling/internal/errdefs"
)

func mustAcquire(t *testing.T, l *Limiter, account, fn string) Slot {
	t.Helper()
	s, err := l.Acquire(account, fn)
	if err != nil {
		t.Fatalf("Acquire(%s, %s): %v", account, fn, err)
	}
	return s
}

func wantThrottle(t *testing.T, l *Limiter, account, fn, reason string) {
	t.Helper()
	_, err := l.Acquire(account, fn)
	var te *ThrottleError
	if !errors.As(err, &te) || te.Reason != reason || !errors.Is(err, errdefs.ErrThrottled) {
		t.Fatalf("Acquire(%s, %s) = %v, want a throttle with reason %s", account, fn, err, reason)
	}
}

func TestUnreservedFloor(t *testing.T) {
	for limit, want := range map[int]int{1000: 100, 5000: 100, 100: 10, 20: 2, 5: 1, 1: 1, 0: 0} {
		if got := UnreservedFloor(limit); got != want {
			t.Errorf("UnreservedFloor(%d) = %d, want %d", limit, got, want)
		}
	}
}

func TestAccountLimit(t *testing.T) {
	l := NewLimiter(3)
	var slots []Slot
	for range 3 {
		slots = append(slots, mustAcquire(t, l, "111111111111", "f"))
	}
	wantThrottle(t, l, "111111111111", "g", ReasonAccount)
	// Another account has its own limit.
	other := mustAcquire(t, l, "222222222222", "f")
	l.Release(slots[0])
	slots[0] = mustAcquire(t, l, "111111111111", "g")
	for _, s := range append(slots, other) {
		l.Release(s)
	}
	if u := l.Usage("111111111111"); u.InFlight != 0 || u.Unreserved != 3 || u.Limit != 3 {
		t.Errorf("Usage after releasing all = %+v", u)
	}
	if len(l.accounts) != 0 {
		t.Errorf("counters left after everything was released: %d accounts", len(l.accounts))
	}
}

func TestReserved(t *testing.T) {
	const acct = "111111111111"
	l := NewLimiter(20) // floor 2
	if err := l.Reserve(acct, "r", 1); err != nil {
		t.Fatal(err)
	}
	s := mustAcquire(t, l, acct, "r")
	wantThrottle(t, l, acct, "r", ReasonReserved)
	// The unreserved pool is 19.
	var others []Slot
	for range 19 {
		others = append(others, mustAcquire(t, l, acct, "u"))
	}
	wantThrottle(t, l, acct, "u", ReasonAccount)
	if u := l.Usage(acct); u.Unreserved != 19 || u.InFlight != 20 {
		t.Errorf("Usage = %+v, want 19 unreserved, 20 in flight", u)
	}
	l.Release(s)
	s = mustAcquire(t, l, acct, "r")
	l.Release(s)
	for _, o := range others {
		l.Release(o)
	}

	// Zero blocks every invocation.
	if err := l.Reserve(acct, "r", 0); err != nil {
		t.Fatal(err)
	}
	wantThrottle(t, l, acct, "r", ReasonReserved)
	// Clearing returns the function to the unreserved pool.
	if err := l.Reserve(acct, "r", -1); err != nil {
		t.Fatal(err)
	}
	l.Release(mustAcquire(t, l, acct, "r"))
	if len(l.accounts) != 0 {
		t.Errorf("counters left: %d accounts", len(l.accounts))
	}
}

func TestReserveFloor(t *testing.T) {
	const acct = "111111111111"
	l := NewLimiter(1000)
	if err := l.Reserve(acct, "a", 900); err != nil {
		t.Fatal(err)
	}
	err := l.Reserve(acct, "b", 1)
	if !errors.Is(err, errdefs.ErrInvalid) {
		t.Fatalf("Reserve over the floor = %v, want ErrInvalid", err)
	}
	if u := l.Usage(acct); u.Unreserved != 100 {
		t.Errorf("a refused reservation changed the pool: %+v", u)
	}
	// Replacing a function's own reservation counts it once.
	if err := l.Reserve(acct, "a", 900); err != nil {
		t.Errorf("re-reserving the same amount: %v", err)
	}
	if err := l.Reserve(acct, "a", 800); err != nil {
		t.Fatal(err)
	}
	if err := l.Reserve(acct, "b", 100); err != nil {
		t.Errorf("reserving up to the floor: %v", err)
	}
	// Each account has its own pool.
	if err := l.Reserve("222222222222", "a", 900); err != nil {
		t.Errorf("another account: %v", err)
	}
}

// A reservation set while invocations run: those admitted from the
// unreserved pool give it back on release.
func TestReserveWhileRunning(t *testing.T) {
	const acct = "111111111111"
	l := NewLimiter(10)
	s := mustAcquire(t, l, acct, "f")
	if err := l.Reserve(acct, "f", 1); err != nil {
		t.Fatal(err)
	}
	r := mustAcquire(t, l, acct, "f") // the reservation's one slot
	wantThrottle(t, l, acct, "f", ReasonReserved)
	l.Release(s)
	l.Release(r)
	if u := l.Usage(acct); u.InFlight != 0 {
		t.Errorf("Usage = %+v", u)
	}
	l.mu.Lock()
	a := l.accounts[acct]
	l.mu.Unlock()
	if a.unreservedInFlight != 0 || a.fns["f"].inFlight != 0 || a.fns["f"].unreserved != 0 {
		t.Errorf("counters not back to zero: %+v %+v", a, a.fns["f"])
	}
}

func TestConcurrentAcquire(t *testing.T) {
	l := NewLimiter(50)
	var wg sync.WaitGroup
	var mu sync.Mutex
	admitted, throttled := 0, 0
	var slots []Slot
	for range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := l.Acquire("111111111111", "f")
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				throttled++
				return
			}
			admitted++
			slots = append(slots, s)
		}()
	}
	wg.Wait()
	if admitted != 50 || throttled != 150 {
		t.Errorf("admitted %d, throttled %d; want 50 and 150", admitted, throttled)
	}
	for _, s := range slots {
		l.Release(s)
	}
	if len(l.accounts) != 0 {
		t.Errorf("counters left")
	}
}

func BenchmarkAcquireRelease(b *testing.B) {
	l := NewLimiter(1 << 30)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			s, err := l.Acquire("111111111111", "f")
			if err != nil {
				b.Fatal(err)
			}
			l.Release(s)
		}
	})
}

func TestProvisioned(t *testing.T) {
	const acct = "111111111111"
	l := NewLimiter(20) // floor 2
	// Without a reservation: set aside from the pool, burst past it.
	if err := l.Provision(acct, "p", 5, true); err != nil {
		t.Fatal(err)
	}
	if u := l.Usage(acct); u.Unreserved != 15 {
		t.Errorf("Unreserved = %d, want 15", u.Unreserved)
	}
	var slots []Slot
	for range 20 { // 5 provisioned + 15 from the pool
		slots = append(slots, mustAcquire(t, l, acct, "p"))
	}
	wantThrottle(t, l, acct, "other", ReasonAccount)
	for _, s := range slots {
		l.Release(s)
	}
	if err := l.Provision(acct, "q", 14, true); !errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("provisioning past the floor = %v, want ErrInvalid", err)
	}
	// With a reservation: within it.
	if err := l.Reserve(acct, "p", 4); !errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("reserving under the provisioned count = %v, want ErrInvalid", err)
	}
	if err := l.Reserve(acct, "p", 6); err != nil {
		t.Fatal(err)
	}
	if u := l.Usage(acct); u.Unreserved != 14 {
		t.Errorf("Unreserved with a reservation of 6 = %d, want 14", u.Unreserved)
	}
	if err := l.Provision(acct, "p", 7, true); !errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("provisioning over the reservation = %v, want ErrInvalid", err)
	}
	for range 6 {
		slots = append(slots[:0], mustAcquire(t, l, acct, "p"))
	}
	l.Provision(acct, "p", 0, true)
	l.Reserve(acct, "p", -1)
	if u := l.Usage(acct); u.Unreserved != 20 {
		t.Errorf("Unreserved after clearing = %d, want 20", u.Unreserved)
	}
}
