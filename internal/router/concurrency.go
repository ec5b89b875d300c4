package router

import (
	"fmt"
	"sync"

	"kindling/internal/errdefs"
)

// Concurrency limits, as Lambda applies them.
//
// Every account may run at most AccountLimit invocations at once. A
// function with reserved concurrency R runs at most R at once, and those R
// are set aside for it: the other functions of the account share the
// unreserved pool, AccountLimit minus the sum of the reservations. A
// reservation may not shrink the unreserved pool below UnreservedFloor
// (Lambda's 100 for its default limit of 1000). Reserved concurrency 0
// stops every invocation of the function.
//
// Provisioned concurrency P (the sum over a function's versions and
// aliases) is within the reservation of a reserved function (P <= R); for
// a function without a reservation it is set aside like one (the pool
// shrinks by P, the floor applies) and the function may burst past it into
// the pool. So every account sets aside, per function, R if reserved else
// P, and the unreserved pool is the limit minus that.
//
// An invocation over its function's reservation is throttled with the
// reason ReservedFunctionConcurrentInvocationLimitExceeded; one of an
// unreserved function over the unreserved pool with
// ConcurrentInvocationLimitExceeded.
//
// The Limiter is a pure counter: no I/O, one mutex held for a few map
// operations per Acquire and Release. The reservations it enforces are
// the config service's (the frontend sets them after each change, the
// server loads them at start).

// Throttle reasons (TooManyRequestsException's Reason).
const (
	ReasonReserved = "ReservedFunctionConcurrentInvocationLimitExceeded"
	ReasonAccount  = "ConcurrentInvocationLimitExceeded"
)

// DefaultAccountLimit is Lambda's default concurrency limit per account.
const DefaultAccountLimit = 1000

// UnreservedFloor is the least unreserved concurrency an account keeps
// for a given limit: Lambda's 100, scaled to a tenth of the limit when
// the limit is under 1000 (so that small test servers can reserve most of
// it), and at least 1 so that unreserved functions can always run.
func UnreservedFloor(limit int) int {
	f := min(100, limit/10)
	return max(f, min(1, limit))
}

// ThrottleError is an invocation refused by a concurrency limit. It is
// errdefs.ErrThrottled (the async pollers retry it).
type ThrottleError struct {
	// Reason is ReasonReserved or ReasonAccount.
	Reason string
}

func (e *ThrottleError) Error() string { return errdefs.ErrThrottled.Error() + ": Rate Exceeded." }

// ThrottleReason is the Reason of the TooManyRequestsException (awsapi).
func (e *ThrottleError) ThrottleReason() string { return e.Reason }

// Unwrap makes the error errdefs.ErrThrottled.
func (e *ThrottleError) Unwrap() error { return errdefs.ErrThrottled }

// Limiter counts the invocations in flight per account and function and
// refuses those over a limit. It is safe for concurrent use.
type Limiter struct {
	limit int // per account, immutable
	floor int // immutable

	mu       sync.Mutex
	accounts map[string]*accountCount // guarded by mu
}

// accountCount is one account's counters. An entry is dropped when
// nothing is in flight and nothing is reserved.
type accountCount struct {
	inFlight           int // every invocation of the account
	unreservedInFlight int // those admitted from the unreserved pool
	reservedSum        int // set aside: sum over functions of share()
	fns                map[string]*fnCount
}

// fnCount is one function's counters (all its versions and aliases).
type fnCount struct {
	reserved    int // -1: no reservation
	provisioned int // provisioned concurrency, all qualifiers
	inFlight    int
	// unreserved counts the in-flight invocations admitted from the
	// unreserved pool (the function had no reservation then); they leave
	// that pool on release even if a reservation came since. provUsed
	// counts those admitted on the provisioned share of a function
	// without a reservation.
	unreserved int
	provUsed   int
}

// share is what the function sets aside from its account's limit.
func (f *fnCount) share() int {
	if f.reserved >= 0 {
		return f.reserved
	}
	return f.provisioned
}

// NewLimiter returns a Limiter with the given per-account limit (<= 0:
// DefaultAccountLimit).
func NewLimiter(accountLimit int) *Limiter {
	if accountLimit <= 0 {
		accountLimit = DefaultAccountLimit
	}
	return &Limiter{limit: accountLimit, floor: UnreservedFloor(accountLimit), accounts: map[string]*accountCount{}}
}

// AccountLimit is the concurrency limit of every account.
func (l *Limiter) AccountLimit() int { return l.limit }

// Floor is the least unreserved concurrency of every account.
func (l *Limiter) Floor() int { return l.floor }

// Slot is an admitted invocation; give it back with Release exactly once.
type Slot struct {
	acct        *accountCount
	fn          *fnCount
	account     string
	name        string
	unreserved  bool
	provisioned bool
}

// Acquire admits one invocation of the function, or returns a
// *ThrottleError.
func (l *Limiter) Acquire(account, function string) (Slot, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	a := l.accounts[account]
	if a == nil {
		a = &accountCount{fns: map[string]*fnCount{}}
		l.accounts[account] = a
	}
	fn := a.fns[function]
	if fn == nil {
		fn = &fnCount{reserved: -1}
		a.fns[function] = fn
	}
	s := Slot{acct: a, fn: fn, account: account, name: function}
	switch {
	case fn.reserved >= 0:
		if fn.inFlight-fn.unreserved-fn.provUsed >= fn.reserved {
			l.dropIfIdle(account, a, function, fn)
			return Slot{}, &ThrottleError{Reason: ReasonReserved}
		}
	case fn.provUsed < fn.provisioned:
		s.provisioned = true
		fn.provUsed++
	default:
		if a.unreservedInFlight >= l.limit-a.reservedSum {
			l.dropIfIdle(account, a, function, fn)
			return Slot{}, &ThrottleError{Reason: ReasonAccount}
		}
		s.unreserved = true
		a.unreservedInFlight++
		fn.unreserved++
	}
	fn.inFlight++
	a.inFlight++
	return s, nil
}

// Release gives back a slot from Acquire.
func (l *Limiter) Release(s Slot) {
	if s.fn == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	s.fn.inFlight--
	s.acct.inFlight--
	if s.unreserved {
		s.fn.unreserved--
		s.acct.unreservedInFlight--
	}
	if s.provisioned {
		s.fn.provUsed--
	}
	l.dropIfIdle(s.account, s.acct, s.name, s.fn)
}

// dropIfIdle forgets counters that hold nothing. Called with mu held.
func (l *Limiter) dropIfIdle(account string, a *accountCount, name string, fn *fnCount) {
	if fn.inFlight == 0 && fn.reserved < 0 && fn.provisioned == 0 {
		delete(a.fns, name)
	}
	if len(a.fns) == 0 && a.inFlight == 0 {
		delete(l.accounts, account)
	}
}

// Reserve sets the function's reserved concurrency to n (n >= 0), or
// clears it (n < 0). Setting a reservation that would leave the account's
// unreserved pool below the floor is refused (errdefs.ErrInvalid, Lambda's
// message) and changes nothing. Reservations are not checked against what
// is in flight: a smaller one throttles new invocations only.
func (l *Limiter) Reserve(account, function string, n int) error {
	return l.reserve(account, function, n, true)
}

// Restore sets a stored reservation without the floor check (at start,
// when the server may have been given a smaller limit since it was
// accepted: the reservation is still honoured).
func (l *Limiter) Restore(account, function string, n int) {
	l.reserve(account, function, n, false) //nolint:errcheck // unchecked: cannot fail
}

func (l *Limiter) reserve(account, function string, n int, check bool) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	a := l.accounts[account]
	if a == nil {
		if n < 0 {
			return nil
		}
		a = &accountCount{fns: map[string]*fnCount{}}
		l.accounts[account] = a
	}
	fn := a.fns[function]
	if fn == nil {
		fn = &fnCount{reserved: -1}
		a.fns[function] = fn
	}
	next := *fn
	next.reserved = max(n, -1)
	if check && n >= 0 && l.limit-(a.reservedSum-fn.share()+next.share()) < l.floor {
		l.dropIfIdle(account, a, function, fn)
		return fmt.Errorf("%w: Specified ReservedConcurrentExecutions for function decreases account's UnreservedConcurrentExecution below its minimum value of [%d].",
			errdefs.ErrInvalid, l.floor)
	}
	if check && n >= 0 && n < fn.provisioned {
		l.dropIfIdle(account, a, function, fn)
		return fmt.Errorf("%w: Specified ReservedConcurrentExecutions for function is less than the function's provisioned concurrency [%d].",
			errdefs.ErrInvalid, fn.provisioned)
	}
	a.reservedSum += next.share() - fn.share()
	fn.reserved = next.reserved
	l.dropIfIdle(account, a, function, fn)
	return nil
}

// Provision sets the function's total provisioned concurrency (all its
// versions and aliases; 0: none). Over a reservation, or past the
// unreserved floor for a function without one, it is refused
// (errdefs.ErrInvalid, Lambda's messages) and changes nothing; with check
// false (restoring stored configurations at start) it is not checked.
func (l *Limiter) Provision(account, function string, total int, check bool) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	a := l.accounts[account]
	if a == nil {
		a = &accountCount{fns: map[string]*fnCount{}}
		l.accounts[account] = a
	}
	fn := a.fns[function]
	if fn == nil {
		fn = &fnCount{reserved: -1}
		a.fns[function] = fn
	}
	total = max(total, 0)
	next := *fn
	next.provisioned = total
	if check && fn.reserved >= 0 && total > fn.reserved {
		l.dropIfIdle(account, a, function, fn)
		return fmt.Errorf("%w: Requested Provisioned Concurrency should not be greater than the reservedConcurrentExecution for function",
			errdefs.ErrInvalid)
	}
	if check && total > fn.provisioned && l.limit-(a.reservedSum-fn.share()+next.share()) < l.floor {
		l.dropIfIdle(account, a, function, fn)
		return fmt.Errorf("%w: Requested Provisioned Concurrency exceeds the account's UnreservedConcurrentExecution limit of [%d] (its minimum is [%d])",
			errdefs.ErrInvalid, l.limit-a.reservedSum, l.floor)
	}
	a.reservedSum += next.share() - fn.share()
	fn.provisioned = total
	l.dropIfIdle(account, a, function, fn)
	return nil
}

// Usage is an account's view of the limits.
type Usage struct {
	// Limit is the account's concurrency limit.
	Limit int
	// Unreserved is the limit minus what is set aside (reservations, and
	// the provisioned concurrency of functions without one).
	Unreserved int
	// InFlight is the number of invocations running.
	InFlight int
}

// Usage reports the account's limit, unreserved pool and in-flight count.
func (l *Limiter) Usage(account string) Usage {
	l.mu.Lock()
	defer l.mu.Unlock()
	u := Usage{Limit: l.limit, Unreserved: l.limit}
	if a := l.accounts[account]; a != nil {
		u.Unreserved -= a.reservedSum
		u.InFlight = a.inFlight
	}
	return u
}

// AccountLimits returns the account's limit and unreserved concurrency
// (frontend.Limits).
func (l *Limiter) AccountLimits(account string) (limit, unreserved int) {
	u := l.Usage(account)
	return u.Limit, u.Unreserved
}
