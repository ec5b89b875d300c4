package async

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// MaxPayload is Lambda's limit on an asynchronous invocation's payload.
const MaxPayload = 1048576

// Event is one accepted asynchronous invocation, as queued.
type Event struct {
	// RequestID is the invocation's id, answered with the 202 and kept
	// across retries.
	RequestID string
	Account   string
	Function  string
	// Qualifier is the version or alias invoked ("" means $LATEST).
	Qualifier string
	TraceID   string
	Payload   []byte
	// Enqueued is when the event was accepted (wall clock); its age counts
	// from here.
	Enqueued time.Time
	// NotBefore, when set, is the earliest time of the next attempt.
	NotBefore time.Time
	State     State
}

// The event's wire format: a NATS message whose body is the payload as
// sent and whose headers carry everything else. Kindling-Event names the
// format version; a message without it, of another version, or with a
// malformed header is rejected (and dropped by the poller, which counts it).
//
//	Kindling-Event: 1
//	Kindling-Request-Id: <uuid>
//	Kindling-Function: <account>:<name>[:<qualifier>]
//	Kindling-Trace-Id: <X-Amzn-Trace-Id>            (optional)
//	Kindling-Enqueued: <unix nanoseconds>
//	Kindling-Not-Before: <unix nanoseconds>         (optional)
//	Kindling-State: <invocations>.<functionErrors>.<backoffs>
//
// The subject is kindling.async.<account>.<name> (subject names are
// function-name safe: [a-zA-Z0-9-_]).
const (
	formatVersion = "1"

	hdrFormat    = "Kindling-Event"
	hdrRequestID = "Kindling-Request-Id"
	hdrFunction  = "Kindling-Function"
	hdrTrace     = "Kindling-Trace-Id"
	hdrEnqueued  = "Kindling-Enqueued"
	hdrNotBefore = "Kindling-Not-Before"
	hdrState     = "Kindling-State"

	subjectPrefix = "kindling.async."
	// maxHeader bounds every header value read.
	maxHeader = 1024
)

func subject(account, function string) string {
	return subjectPrefix + account + "." + function
}

// encode renders ev as a message.
func (ev *Event) encode() *nats.Msg {
	m := nats.NewMsg(subject(ev.Account, ev.Function))
	m.Data = ev.Payload
	h := m.Header
	h.Set(hdrFormat, formatVersion)
	h.Set(hdrRequestID, ev.RequestID)
	fn := ev.Account + ":" + ev.Function
	if ev.Qualifier != "" {
		fn += ":" + ev.Qualifier
	}
	h.Set(hdrFunction, fn)
	if ev.TraceID != "" {
		h.Set(hdrTrace, ev.TraceID)
	}
	h.Set(hdrEnqueued, strconv.FormatInt(ev.Enqueued.UnixNano(), 10))
	if !ev.NotBefore.IsZero() {
		h.Set(hdrNotBefore, strconv.FormatInt(ev.NotBefore.UnixNano(), 10))
	}
	h.Set(hdrState, fmt.Sprintf("%d.%d.%d", ev.State.Invocations, ev.State.FunctionErrors, ev.State.Backoffs))
	return m
}

var errFormat = errors.New("async: malformed event")

// DecodeEvent reads an event from a message's headers and body (for
// pollers in this or another process). The body is used as is (not
// copied).
func DecodeEvent(h nats.Header, data []byte) (*Event, error) {
	get := func(k string) (string, error) {
		v := h.Get(k)
		if len(v) > maxHeader {
			return "", fmt.Errorf("%w: %s too long", errFormat, k)
		}
		return v, nil
	}
	if v, _ := get(hdrFormat); v != formatVersion {
		return nil, fmt.Errorf("%w: format version %q", errFormat, v)
	}
	if len(data) > MaxPayload {
		return nil, fmt.Errorf("%w: payload of %d bytes", errFormat, len(data))
	}
	ev := &Event{Payload: data}
	var err error
	if ev.RequestID, err = get(hdrRequestID); err != nil || ev.RequestID == "" {
		return nil, fmt.Errorf("%w: no request id", errFormat)
	}
	fn, err := get(hdrFunction)
	if err != nil {
		return nil, err
	}
	parts := strings.Split(fn, ":")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return nil, fmt.Errorf("%w: function %q", errFormat, fn)
	}
	ev.Account, ev.Function = parts[0], parts[1]
	if len(parts) == 3 {
		ev.Qualifier = parts[2]
	}
	if ev.TraceID, err = get(hdrTrace); err != nil {
		return nil, err
	}
	enq, err := get(hdrEnqueued)
	if err != nil {
		return nil, err
	}
	ns, err := strconv.ParseInt(enq, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("%w: enqueued time %q", errFormat, enq)
	}
	ev.Enqueued = time.Unix(0, ns)
	if nb, _ := get(hdrNotBefore); nb != "" {
		ns, err := strconv.ParseInt(nb, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%w: not-before time %q", errFormat, nb)
		}
		ev.NotBefore = time.Unix(0, ns)
	}
	st, err := get(hdrState)
	if err != nil {
		return nil, err
	}
	var s State
	if n, err := fmt.Sscanf(st, "%d.%d.%d", &s.Invocations, &s.FunctionErrors, &s.Backoffs); err != nil || n != 3 ||
		s.Invocations < 0 || s.FunctionErrors < 0 || s.Backoffs < 0 {
		return nil, fmt.Errorf("%w: state %q", errFormat, st)
	}
	ev.State = s
	return ev, nil
}
