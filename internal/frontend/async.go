package frontend

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"kindling/internal/async"
	"kindling/internal/awsapi"
	"kindling/internal/config"
)

// EventQueue takes asynchronous invocations (*async.Queue): Enqueue
// returns once the event is stored durably; an error is an errdefs class
// (ErrUnavailable when the queue cannot take it).
type EventQueue interface {
	Enqueue(ctx context.Context, ev *async.Event) error
}

// invokeEvent serves Invoke with X-Amz-Invocation-Type: Event, once the
// request is authenticated and the function resolved and invocable: check
// the payload (1 MB, JSON), queue the event durably and answer 202 with the
// request id, which the pollers keep as the invocation's id.
func (f *Frontend) invokeEvent(w http.ResponseWriter, req *request, ref config.FunctionRef, logType string) {
	if f.cfg.Events == nil {
		f.fail(w, invalidParam("Event invocations are not enabled on this server."))
		return
	}
	if logType == "Tail" {
		f.fail(w, invalidParam("LogType Tail is not supported for the Event invocation type: the log tail is returned for synchronous invocations only."))
		return
	}
	if len(req.body) > async.MaxPayload {
		f.fail(w, &awsapi.Error{Status: http.StatusRequestEntityTooLarge, Type: awsapi.TypeRequestEntityTooLarge,
			Message: "Request must be smaller than " + strconv.Itoa(async.MaxPayload) + " bytes for the InvokeFunction operation"})
		return
	}
	if len(req.body) > 0 && !json.Valid(req.body) {
		var v any
		perr := json.Unmarshal(req.body, &v)
		f.fail(w, &awsapi.Error{Status: http.StatusBadRequest, Type: awsapi.TypeInvalidRequestContent,
			Message: "Could not parse request body into json: Could not parse payload into json: " + perr.Error()})
		return
	}
	traceID := req.r.Header.Get("X-Amzn-Trace-Id")
	if traceID == "" {
		traceID = newTraceID(time.Now())
	}
	ev := &async.Event{
		RequestID: req.id,
		Account:   req.account,
		Function:  ref.Name,
		Qualifier: ref.Qualifier,
		TraceID:   traceID,
		Payload:   req.body,
		Enqueued:  f.cfg.Clock.Now(),
	}
	if err := f.cfg.Events.Enqueue(req.r.Context(), ev); err != nil {
		f.fail(w, err)
		return
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusAccepted)
}

// checkDeadLetter validates DeadLetterConfig: Kindling's dead-letter
// targets are SQS queues ("" removes the target). The queue must be the
// function's own account's; the pollers check that at delivery.
func checkDeadLetter(d *awsapi.DeadLetterConfig) error {
	if d == nil || d.TargetArn == "" {
		return nil
	}
	dest, err := async.ParseDestination(d.TargetArn)
	if err != nil {
		return err
	}
	if dest.Kind != async.DestQueue {
		return invalidParam("DeadLetterConfig TargetArn %s is not an SQS queue: Kindling's dead-letter targets are SQS queues.", shorten(d.TargetArn))
	}
	return nil
}
