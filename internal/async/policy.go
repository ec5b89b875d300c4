package async

import "time"

// Outcome is how one attempt at an event ended.
type Outcome uint8

const (
	// Succeeded: the function ran and returned a response.
	Succeeded Outcome = iota + 1
	// FunctionError: the function ran and failed (Result.FunctionError set:
	// an error it returned, a crash, a timeout).
	FunctionError
	// Throttled: no concurrency was available (errdefs.ErrThrottled).
	Throttled
	// SystemError: the platform could not run the event (any other error).
	SystemError
)

func (o Outcome) String() string {
	switch o {
	case Succeeded:
		return "Succeeded"
	case FunctionError:
		return "FunctionError"
	case Throttled:
		return "Throttled"
	case SystemError:
		return "SystemError"
	}
	return "Outcome(?)"
}

// State is an event's retry state, carried with the event in the queue.
type State struct {
	// Invocations counts the attempts that reached the function (the
	// record's approximateInvokeCount).
	Invocations int
	// FunctionErrors counts the attempts that ended in a function error.
	FunctionErrors int
	// Backoffs counts the throttle and system-error retries since the last
	// attempt that reached the function; it drives the exponential backoff.
	Backoffs int
}

// Limits are the event invoke configuration's retry limits.
type Limits struct {
	// MaxRetryAttempts is MaximumRetryAttempts (0-2): retries of function
	// errors.
	MaxRetryAttempts int
	// MaxEventAge is MaximumEventAgeInSeconds as a duration (Lambda time).
	MaxEventAge time.Duration
}

// Condition is the record's requestContext.condition.
type Condition string

const (
	CondSuccess          Condition = "Success"
	CondRetriesExhausted Condition = "RetriesExhausted"
	CondEventAgeExceeded Condition = "EventAgeExceeded"
)

// Action is what to do with an event after an attempt.
type Action uint8

const (
	// Retry: run the event again after Decision.Delay.
	Retry Action = iota + 1
	// Done: the event succeeded; send it to the OnSuccess destination.
	Done
	// Fail: the event failed for good (Decision.Condition); send it to the
	// OnFailure destination, else the dead-letter queue, else drop it.
	Fail
)

// Decision is the policy's answer.
type Decision struct {
	Action    Action
	Condition Condition
	// Delay is the wait before the retry, in Lambda time (the caller
	// scales it with its clock).
	Delay time.Duration
}

// Lambda's waits.
const (
	// functionErrorWait is the wait after the first function error; the
	// n-th waits n times it (1 and 2 minutes).
	functionErrorWait = time.Minute
	// backoffBase and backoffMax bound the exponential backoff of throttles
	// and system errors (1 s doubling up to 5 minutes).
	backoffBase = time.Second
	backoffMax  = 5 * time.Minute
)

// Expired reports whether an event of age (Lambda time) is too old to be
// run at all.
func Expired(age time.Duration, l Limits) bool {
	return age > l.MaxEventAge
}

// Decide is the retry policy, a pure function: given the event's state after
// the attempt (the attempt already counted in s), how the attempt ended, the
// event's age (Lambda time) and the limits, it says whether to retry, and
// when, or how the event ends.
//
//   - Success ends the event (Success).
//   - A function error is retried MaxRetryAttempts times, after 1 then 2
//     minutes; after that the event has exhausted its retries.
//   - Throttles and system errors are retried with exponential backoff (1 s
//     doubling to 5 minutes) for as long as the event is young enough.
//   - A retry that would run after MaxEventAge is not scheduled: the event
//     fails with EventAgeExceeded at once.
func Decide(s State, o Outcome, age time.Duration, l Limits) Decision {
	var delay time.Duration
	switch o {
	case Succeeded:
		return Decision{Action: Done, Condition: CondSuccess}
	case FunctionError:
		if s.FunctionErrors > l.MaxRetryAttempts {
			return Decision{Action: Fail, Condition: CondRetriesExhausted}
		}
		delay = time.Duration(s.FunctionErrors) * functionErrorWait
	default: // Throttled, SystemError: s.Backoffs counts this one
		delay = backoffMax
		if n := max(s.Backoffs-1, 0); n < 16 {
			delay = min(backoffBase<<n, backoffMax)
		}
	}
	if age+delay > l.MaxEventAge {
		return Decision{Action: Fail, Condition: CondEventAgeExceeded}
	}
	return Decision{Action: Retry, Delay: delay}
}

// Next returns the state after an attempt that ended with o.
func (s State) Next(o Outcome) State {
	switch o {
	case Succeeded:
		s.Invocations++
		s.Backoffs = 0
	case FunctionError:
		s.Invocations++
		s.FunctionErrors++
		s.Backoffs = 0
	default:
		s.Backoffs++
	}
	return s
}
