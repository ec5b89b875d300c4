package config

import (
	"fmt"

	"kindling/internal/errdefs"
)

// Function states, as Lambda reports them in State.
//
//	           Create            Ready
//	(none) ───────────> Pending ───────> Active <──────────┐
//	                       │  ▲            │ │  Update      │ Ready / Fail
//	                  Fail │  │ Wake,      │ └──> Active+InProgress
//	                       ▼  │ Update     │ Idle
//	                    Failed│            ▼
//	                       └──┴───────  Inactive
//
// Pending: the function (or a version being restored) is being prepared;
// it cannot be invoked or updated. Active: it can be invoked. Inactive: it
// has been idle long enough that its resources were reclaimed; an invoke
// wakes it (Pending, reason Restoring). Failed: preparation failed; the
// reason says why; only an update (new code or configuration) gets out.
//
// LastUpdateStatus tracks updates of an existing function independently:
// InProgress while a code or configuration update is being applied (the
// function stays Active and invocable, another update is refused), then
// Successful or Failed. A newly created function has no LastUpdateStatus
// until it first becomes Active.
//
// No state is terminal: Delete removes the record from any state.
const (
	StatePending  = "Pending"
	StateActive   = "Active"
	StateInactive = "Inactive"
	StateFailed   = "Failed"
)

// LastUpdateStatus values.
const (
	UpdateInProgress = "InProgress"
	UpdateSuccessful = "Successful"
	UpdateFailed     = "Failed"
)

// Reason codes (StateReasonCode and LastUpdateStatusReasonCode), the subset
// of Lambda's that Kindling produces.
const (
	ReasonIdle                  = "Idle"
	ReasonCreating              = "Creating"
	ReasonRestoring             = "Restoring"
	ReasonInternalError         = "InternalError"
	ReasonInvalidConfiguration  = "InvalidConfiguration"
	ReasonInvalidRuntime        = "InvalidRuntime"
	ReasonInvalidZipFile        = "InvalidZipFileException"
	ReasonFunctionError         = "FunctionError"
	ReasonInitTimeout           = "FunctionError.InitTimeout"
	ReasonRuntimeInitError      = "FunctionError.RuntimeInitError"
	ReasonInvalidEntryPoint     = "FunctionError.InvalidEntryPoint"
	ReasonInitResourceExhausted = "FunctionError.InitResourceExhausted"
)

// Reasons Lambda words for the transitional states.
const (
	reasonTextCreating  = "The function is being created."
	reasonTextRestoring = "The function is being restored."
	reasonTextIdle      = "The function is inactive because it has not been invoked for a long time."
)

// Status is the state-machine part of a Function.
type Status struct {
	State                      string
	StateReason                string
	StateReasonCode            string
	LastUpdateStatus           string
	LastUpdateStatusReason     string
	LastUpdateStatusReasonCode string
}

// EventKind is what happened to a function.
type EventKind int

// The events.
const (
	// EvCreate: the function was just created; its code and configuration
	// are being prepared.
	EvCreate EventKind = iota + 1
	// EvReady: preparation (of a creation, an update or a wake-up) finished.
	EvReady
	// EvFail: preparation failed; Event.Reason and Event.ReasonCode say why.
	EvFail
	// EvUpdate: a code or configuration update begins.
	EvUpdate
	// EvIdle: the function has been idle long enough to be deactivated.
	EvIdle
	// EvWake: an Inactive function is needed again.
	EvWake
)

func (k EventKind) String() string {
	switch k {
	case EvCreate:
		return "Create"
	case EvReady:
		return "Ready"
	case EvFail:
		return "Fail"
	case EvUpdate:
		return "Update"
	case EvIdle:
		return "Idle"
	case EvWake:
		return "Wake"
	}
	return fmt.Sprintf("EventKind(%d)", int(k))
}

// Event is an input of the state machine.
type Event struct {
	Kind EventKind
	// Reason and ReasonCode describe a failure (EvFail only).
	Reason, ReasonCode string
}

// StateError is returned when an event is not allowed in the current
// status. It is a conflict (errdefs.ErrConflict): Lambda answers
// ResourceConflictException with Error() as the message.
type StateError struct {
	// Status is the status the event was refused in.
	Status Status
	// Event is the refused event.
	Event EventKind
	// Resource is the function's ARN, when known (Function.Apply sets it).
	Resource string
}

func (e *StateError) Error() string {
	if e.Status.LastUpdateStatus == UpdateInProgress && e.Status.State == StateActive {
		res := e.Resource
		if res == "" {
			res = "the function"
		}
		return "The operation cannot be performed at this time. An update is in progress for resource: " + res
	}
	state := e.Status.State
	if state == "" {
		state = "none"
	}
	return "The operation cannot be performed at this time. The function is currently in the following state: " + state
}

// Unwrap makes a StateError an errdefs.ErrConflict.
func (e *StateError) Unwrap() error { return errdefs.ErrConflict }

// Next is the state machine: the status after ev, or a *StateError when ev
// is not allowed in s. It is pure.
func Next(s Status, ev Event) (Status, error) {
	refuse := func() (Status, error) { return s, &StateError{Status: s, Event: ev.Kind} }
	switch ev.Kind {
	case EvCreate:
		if s.State != "" {
			return refuse()
		}
		return Status{State: StatePending, StateReason: reasonTextCreating, StateReasonCode: ReasonCreating}, nil

	case EvReady:
		switch {
		case s.State == StatePending:
			return Status{State: StateActive, LastUpdateStatus: UpdateSuccessful}, nil
		case s.State == StateActive && s.LastUpdateStatus == UpdateInProgress:
			return Status{State: StateActive, LastUpdateStatus: UpdateSuccessful}, nil
		}
		return refuse()

	case EvFail:
		reason, code := ev.Reason, ev.ReasonCode
		if code == "" {
			code = ReasonInternalError
		}
		switch {
		case s.State == StatePending:
			return Status{
				State: StateFailed, StateReason: reason, StateReasonCode: code,
				LastUpdateStatus: UpdateFailed, LastUpdateStatusReason: reason, LastUpdateStatusReasonCode: code,
			}, nil
		case s.State == StateActive && s.LastUpdateStatus == UpdateInProgress:
			return Status{
				State:            StateActive,
				LastUpdateStatus: UpdateFailed, LastUpdateStatusReason: reason, LastUpdateStatusReasonCode: code,
			}, nil
		}
		return refuse()

	case EvUpdate:
		inProgress := Status{
			LastUpdateStatus: UpdateInProgress, LastUpdateStatusReason: reasonTextCreating,
			LastUpdateStatusReasonCode: ReasonCreating,
		}
		switch s.State {
		case StateActive:
			if s.LastUpdateStatus == UpdateInProgress {
				return refuse()
			}
			inProgress.State = StateActive
			return inProgress, nil
		case StateInactive, StateFailed:
			// The new code or configuration must be prepared before the
			// function can run again.
			inProgress.State = StatePending
			inProgress.StateReason = reasonTextCreating
			inProgress.StateReasonCode = ReasonCreating
			return inProgress, nil
		}
		return refuse()

	case EvIdle:
		if s.State == StateActive && s.LastUpdateStatus != UpdateInProgress {
			return Status{
				State: StateInactive, StateReason: reasonTextIdle, StateReasonCode: ReasonIdle,
				LastUpdateStatus: s.LastUpdateStatus, LastUpdateStatusReason: s.LastUpdateStatusReason,
				LastUpdateStatusReasonCode: s.LastUpdateStatusReasonCode,
			}, nil
		}
		return refuse()

	case EvWake:
		if s.State == StateInactive {
			return Status{
				State: StatePending, StateReason: reasonTextRestoring, StateReasonCode: ReasonRestoring,
				LastUpdateStatus: s.LastUpdateStatus, LastUpdateStatusReason: s.LastUpdateStatusReason,
				LastUpdateStatusReasonCode: s.LastUpdateStatusReasonCode,
			}, nil
		}
		return refuse()
	}
	return refuse()
}

// CanInvoke reports whether a function in status s can be invoked now; if
// not, the error (a *StateError, a conflict) carries Lambda's message.
func (s Status) CanInvoke() error {
	if s.State == StateActive {
		return nil
	}
	return &StateError{Status: Status{State: s.State}}
}

// Status returns the function's state-machine fields.
func (f *Function) Status() Status {
	return Status{
		State: f.State, StateReason: f.StateReason, StateReasonCode: f.StateReasonCode,
		LastUpdateStatus: f.LastUpdateStatus, LastUpdateStatusReason: f.LastUpdateStatusReason,
		LastUpdateStatusReasonCode: f.LastUpdateStatusReasonCode,
	}
}

// SetStatus sets the function's state-machine fields.
func (f *Function) SetStatus(s Status) {
	f.State, f.StateReason, f.StateReasonCode = s.State, s.StateReason, s.StateReasonCode
	f.LastUpdateStatus = s.LastUpdateStatus
	f.LastUpdateStatusReason = s.LastUpdateStatusReason
	f.LastUpdateStatusReasonCode = s.LastUpdateStatusReasonCode
}

// Apply runs ev through the state machine on f. On refusal f is unchanged
// and the *StateError names f's ARN.
func (f *Function) Apply(ev Event) error {
	s, err := Next(f.Status(), ev)
	if err != nil {
		if se, ok := err.(*StateError); ok {
			se.Resource = f.ARN()
		}
		return err
	}
	f.SetStatus(s)
	return nil
}

// CanInvoke reports whether f can be invoked now (see Status.CanInvoke).
// A SnapStart version (SnapStartOn) still Pending, its snapshot being
// made, is a *SnapStartNotReadyError instead of a *StateError.
func (f *Function) CanInvoke() error {
	if f.State == StateActive {
		return nil
	}
	if f.SnapStartOn && f.State == StatePending {
		return &SnapStartNotReadyError{Resource: f.QualifiedARN()}
	}
	return f.Status().CanInvoke()
}

// SnapStartNotReadyError is CanInvoke's refusal of a SnapStart version
// whose snapshot is still being made (State Pending). It is a conflict
// (errdefs.ErrConflict); Lambda answers SnapStartNotReadyException (409)
// with Error() as the message.
type SnapStartNotReadyError struct {
	// Resource is the version's qualified ARN.
	Resource string
}

// SnapStartNotReadyMessage is Lambda's message for SnapStartNotReadyException.
const SnapStartNotReadyMessage = "Lambda is initializing your function. It will be ready to invoke once initialization is complete."

func (e *SnapStartNotReadyError) Error() string { return SnapStartNotReadyMessage }

// Unwrap makes a SnapStartNotReadyError an errdefs.ErrConflict.
func (e *SnapStartNotReadyError) Unwrap() error { return errdefs.ErrConflict }
