package frontend

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"kindling/internal/awsapi"
	"kindling/internal/config"
	"kindling/internal/invoke"
)

// maxClientContext is Lambda's limit on X-Amz-Client-Context (base64).
const maxClientContext = 3583

// invoke serves Invoke. It is the hot path: the payload goes to the
// Invoker as read (never decoded or copied) and the response payload is
// written as returned.
func (f *Frontend) invoke(w http.ResponseWriter, req *request) {
	r := req.r
	invType := r.Header.Get("X-Amz-Invocation-Type")
	switch invType {
	case "", "RequestResponse", "Event", "DryRun":
	default:
		f.fail(w, config.NewValidationError(config.Violation(shorten(invType), "invocationType",
			"Member must satisfy enum value set: [Event, RequestResponse, DryRun]")))
		return
	}
	logType := r.Header.Get("X-Amz-Log-Type")
	if logType != "" && logType != "None" && logType != "Tail" {
		f.fail(w, config.NewValidationError(config.Violation(shorten(logType), "logType",
			"Member must satisfy enum value set: [None, Tail]")))
		return
	}
	ref, err := config.ParseFunctionName(req.name, config.RuleRead)
	if err == nil && r.URL.RawQuery != "" {
		ref, err = ref.WithQualifier(r.URL.Query().Get("Qualifier"))
	}
	if err == nil {
		err = ref.ResolveQualified(req.account, f.cfg.Region, "InvokeFunction")
	}
	if err != nil {
		f.fail(w, err)
		return
	}
	clientContext, err := decodeClientContext(r.Header.Get("X-Amz-Client-Context"))
	if err != nil {
		f.fail(w, err)
		return
	}
	// The shared in-memory copy: invoke must not modify fn. For an alias,
	// fn is the version its routing picked with this draw.
	fn, err := f.cfg.Functions.LookupQualified(r.Context(), req.account, ref.Name, ref.Qualifier, mrand.Float64())
	if err != nil {
		f.fail(w, err)
		return
	}
	if err := fn.CanInvoke(); err != nil {
		f.fail(w, err)
		return
	}
	switch invType {
	case "DryRun":
		w.WriteHeader(http.StatusNoContent)
		return
	case "Event":
		f.invokeEvent(w, req, ref, logType)
		return
	}
	// Lambda accepts only JSON events (an empty body included).
	if len(req.body) > 0 && !json.Valid(req.body) {
		var v any
		perr := json.Unmarshal(req.body, &v)
		f.fail(w, &awsapi.Error{Status: http.StatusBadRequest, Type: "InvalidRequestContentException",
			Message: "Could not parse request body into json: Could not parse payload into json: " + perr.Error()})
		return
	}
	traceID := r.Header.Get("X-Amzn-Trace-Id")
	if traceID == "" {
		traceID = newTraceID(time.Now())
	}
	res, err := f.cfg.Invoker.Invoke(r.Context(), &invoke.Request{
		RequestID:     req.id,
		Function:      fn,
		Qualifier:     ref.Qualifier,
		Payload:       req.body,
		ClientContext: clientContext,
		TraceID:       traceID,
		Tail:          logType == "Tail",
	})
	if err != nil {
		f.fail(w, invokeError(err))
		return
	}
	h := w.Header()
	version := res.ExecutedVersion
	if version == "" {
		version = fn.Version
	}
	h.Set("X-Amz-Executed-Version", version)
	if res.FunctionError != "" {
		h.Set("X-Amz-Function-Error", res.FunctionError)
	}
	if logType == "Tail" {
		h.Set("X-Amz-Log-Result", base64.StdEncoding.EncodeToString(res.LogTail))
	}
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(res.Payload)))
	w.WriteHeader(http.StatusOK)
	w.Write(res.Payload) // a failed write means the client is gone
}

// invokeError converts the Invoker's SnapStart failures into the AWS
// errors Lambda answers for them; other errors are returned as they are.
func invokeError(err error) error {
	switch {
	case errors.Is(err, invoke.ErrAfterRestore):
		return &awsapi.Error{Status: http.StatusBadRequest, Type: awsapi.TypeSnapStart,
			Message: "The afterRestore() runtime hook encountered an error. For more information, check the Amazon CloudWatch logs."}
	case errors.Is(err, invoke.ErrRestoreTimeout):
		return &awsapi.Error{Status: http.StatusRequestTimeout, Type: awsapi.TypeSnapStartTimeout,
			Message: "Lambda couldn't restore the snapshot within the timeout limit."}
	}
	return err
}

// decodeClientContext decodes X-Amz-Client-Context: base64 of a JSON
// object, at most maxClientContext bytes as sent.
func decodeClientContext(h string) (string, error) {
	if h == "" {
		return "", nil
	}
	if len(h) > maxClientContext {
		return "", invalidParam("Client context must be smaller than %d bytes.", maxClientContext+1)
	}
	raw, err := base64.StdEncoding.DecodeString(h)
	if err != nil || !json.Valid(raw) {
		return "", &awsapi.Error{Status: http.StatusBadRequest, Type: awsapi.TypeInvalidRequestContent,
			Message: "Client context must be a valid Base64-encoded JSON object."}
	}
	return string(raw), nil
}

// newTraceID makes an X-Ray trace header as Lambda passes one to a function
// invoked without it: a new root (version 1, the time, 96 random bits), a
// parent segment id, not sampled.
func newTraceID(now time.Time) string {
	var b [20]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return fmt.Sprintf("Root=1-%08x-%x;Parent=%x;Sampled=0", now.Unix(), b[:12], b[12:])
}
