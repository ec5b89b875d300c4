package config

import (
	"errors"
	"strings"
	"testing"

	"kindling/internal/errdefs"
)

func run(t *testing.T, evs ...Event) (Status, error) {
	t.Helper()
	var s Status
	for i, ev := range evs {
		next, err := Next(s, ev)
		if err != nil {
			if next != s {
				t.Fatalf("event %d (%v): refused but status changed", i, ev.Kind)
			}
			return s, err
		}
		s = next
	}
	return s, nil
}

func TestLifecycle(t *testing.T) {
	create, ready, update := Event{Kind: EvCreate}, Event{Kind: EvReady}, Event{Kind: EvUpdate}
	cases := []struct {
		name string
		evs  []Event
		want Status
	}{
		{"created", []Event{create},
			Status{State: StatePending, StateReason: "The function is being created.", StateReasonCode: ReasonCreating}},
		{"active", []Event{create, ready},
			Status{State: StateActive, LastUpdateStatus: UpdateSuccessful}},
		{"updating", []Event{create, ready, update},
			Status{State: StateActive, LastUpdateStatus: UpdateInProgress,
				LastUpdateStatusReason: "The function is being created.", LastUpdateStatusReasonCode: ReasonCreating}},
		{"updated", []Event{create, ready, update, ready},
			Status{State: StateActive, LastUpdateStatus: UpdateSuccessful}},
		{"update failed", []Event{create, ready, update, {Kind: EvFail, Reason: "bad zip", ReasonCode: ReasonInvalidZipFile}},
			Status{State: StateActive, LastUpdateStatus: UpdateFailed,
				LastUpdateStatusReason: "bad zip", LastUpdateStatusReasonCode: ReasonInvalidZipFile}},
		{"create failed", []Event{create, {Kind: EvFail, Reason: "boom"}},
			Status{State: StateFailed, StateReason: "boom", StateReasonCode: ReasonInternalError,
				LastUpdateStatus: UpdateFailed, LastUpdateStatusReason: "boom", LastUpdateStatusReasonCode: ReasonInternalError}},
		{"failed then fixed", []Event{create, {Kind: EvFail, Reason: "boom"}, update, ready},
			Status{State: StateActive, LastUpdateStatus: UpdateSuccessful}},
		{"idle", []Event{create, ready, {Kind: EvIdle}},
			Status{State: StateInactive, StateReasonCode: ReasonIdle,
				StateReason:      "The function is inactive because it has not been invoked for a long time.",
				LastUpdateStatus: UpdateSuccessful}},
		{"woken", []Event{create, ready, {Kind: EvIdle}, {Kind: EvWake}},
			Status{State: StatePending, StateReason: "The function is being restored.", StateReasonCode: ReasonRestoring,
				LastUpdateStatus: UpdateSuccessful}},
		{"woken and ready", []Event{create, ready, {Kind: EvIdle}, {Kind: EvWake}, ready},
			Status{State: StateActive, LastUpdateStatus: UpdateSuccessful}},
		{"inactive updated", []Event{create, ready, {Kind: EvIdle}, update},
			Status{State: StatePending, StateReason: "The function is being created.", StateReasonCode: ReasonCreating,
				LastUpdateStatus: UpdateInProgress, LastUpdateStatusReason: "The function is being created.",
				LastUpdateStatusReasonCode: ReasonCreating}},
	}
	for _, c := range cases {
		got, err := run(t, c.evs...)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if got != c.want {
			t.Errorf("%s:\n got %+v\nwant %+v", c.name, got, c.want)
		}
	}
}

func TestRefusals(t *testing.T) {
	create, ready, update := Event{Kind: EvCreate}, Event{Kind: EvReady}, Event{Kind: EvUpdate}
	cases := []struct {
		name string
		evs  []Event
		msg  string
	}{
		{"create twice", []Event{create, create}, "currently in the following state: Pending"},
		{"update while pending", []Event{create, update}, "The operation cannot be performed at this time. The function is currently in the following state: Pending"},
		{"update while updating", []Event{create, ready, update, update}, "An update is in progress for resource: "},
		{"ready when active", []Event{create, ready, ready}, "state: Active"},
		{"ready before create", []Event{ready}, "state: none"},
		{"idle while updating", []Event{create, ready, update, {Kind: EvIdle}}, "An update is in progress"},
		{"wake when active", []Event{create, ready, {Kind: EvWake}}, "state: Active"},
		{"fail when active", []Event{create, ready, {Kind: EvFail}}, "state: Active"},
		{"unknown event", []Event{{Kind: 99}}, "state: none"},
	}
	for _, c := range cases {
		_, err := run(t, c.evs...)
		var se *StateError
		if !errors.As(err, &se) {
			t.Errorf("%s: err = %v, want a StateError", c.name, err)
			continue
		}
		if !errors.Is(err, errdefs.ErrConflict) {
			t.Errorf("%s: not a conflict", c.name)
		}
		if !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: %q does not contain %q", c.name, err, c.msg)
		}
	}
}

func TestApplyAndCanInvoke(t *testing.T) {
	f := &Function{Account: "123456789012", Region: "us-east-1", Name: "f", Version: LatestVersion}
	if err := f.CanInvoke(); err == nil {
		t.Error("invocable before creation")
	}
	if err := f.Apply(Event{Kind: EvCreate}); err != nil {
		t.Fatal(err)
	}
	err := f.CanInvoke()
	if err == nil || err.Error() != "The operation cannot be performed at this time. The function is currently in the following state: Pending" {
		t.Errorf("pending invoke: %v", err)
	}
	if err := f.Apply(Event{Kind: EvReady}); err != nil {
		t.Fatal(err)
	}
	if err := f.CanInvoke(); err != nil {
		t.Errorf("active: %v", err)
	}
	if err := f.Apply(Event{Kind: EvUpdate}); err != nil {
		t.Fatal(err)
	}
	if err := f.CanInvoke(); err != nil {
		t.Errorf("active while updating: %v", err)
	}
	before := *f
	err = f.Apply(Event{Kind: EvUpdate})
	want := "The operation cannot be performed at this time. An update is in progress for resource: arn:aws:lambda:us-east-1:123456789012:function:f"
	if err == nil || err.Error() != want {
		t.Errorf("second update: %v", err)
	}
	if f.Status() != before.Status() {
		t.Error("refused event changed the function")
	}
	if EvWake.String() != "Wake" || EventKind(42).String() != "EventKind(42)" {
		t.Error("EventKind.String")
	}
}

// TestNoTransitionFromNowhere checks every event from every reachable status:
// Next either refuses (status unchanged) or lands in a known state.
func TestNoTransitionFromNowhere(t *testing.T) {
	known := map[string]bool{StatePending: true, StateActive: true, StateInactive: true, StateFailed: true}
	evs := []Event{{Kind: EvCreate}, {Kind: EvReady}, {Kind: EvFail, Reason: "r"}, {Kind: EvUpdate}, {Kind: EvIdle}, {Kind: EvWake}}
	seen := map[Status]bool{{}: true}
	frontier := []Status{{}}
	for len(frontier) > 0 {
		s := frontier[0]
		frontier = frontier[1:]
		for _, ev := range evs {
			n, err := Next(s, ev)
			if err != nil {
				if n != s {
					t.Fatalf("%+v %v: refused but changed", s, ev.Kind)
				}
				continue
			}
			if !known[n.State] {
				t.Fatalf("%+v %v: unknown state %q", s, ev.Kind, n.State)
			}
			if n.State == StatePending && n.StateReasonCode == "" {
				t.Fatalf("%+v %v: Pending without reason", s, ev.Kind)
			}
			if !seen[n] {
				seen[n] = true
				frontier = append(frontier, n)
			}
		}
	}
	if len(seen) < 8 {
		t.Errorf("only %d statuses reachable", len(seen))
	}
}
