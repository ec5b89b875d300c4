// Package invoke holds the types of the invoke path shared by the frontend
// (which validates and authorises) and the data plane behind it (assignment,
// placement, worker) that runs the event.
package invoke

import (
	"context"
	"errors"

	"kindling/internal/config"
)

// Request is one synchronous invocation, validated and authorised.
type Request struct {
	// RequestID is the invocation's id (a UUID), as returned in
	// X-Amzn-RequestId and given to the runtime.
	RequestID string
	// Function is the configuration being invoked (a snapshot).
	Function *config.Function
	// Qualifier is the version or alias the caller named, "" when none:
	// the function sees the ARN it was invoked by
	// (Lambda-Runtime-Invoked-Function-Arn), qualified when it was.
	Qualifier string
	// Payload is the event, at most 6 MB.
	Payload []byte
	// ClientContext is the decoded X-Amz-Client-Context (JSON), if any.
	ClientContext string
	// TraceID is the X-Amzn-Trace-Id to pass on, if any.
	TraceID string
	// Tail asks for the last 4 KB of the invocation's log.
	Tail bool
}

// Result is what the caller gets back.
type Result struct {
	// Payload is the function's response or its error document.
	Payload []byte
	// FunctionError is "" on success, else "Unhandled" (sent as
	// X-Amz-Function-Error).
	FunctionError string
	// LogTail is the last 4 KB of the invocation's log when Tail was set.
	LogTail []byte
	// ExecutedVersion is the version that ran ("$LATEST" or a number).
	ExecutedVersion string
}

// Invoker runs invocations. Errors are errdefs classes: ErrThrottled when no
// environment can be had within limits, ErrUnavailable when the data plane
// cannot serve, anything else is a service error. Function failures are not
// errors: they come back as a Result with FunctionError set.
type Invoker interface {
	Invoke(ctx context.Context, req *Request) (*Result, error)
}

// SnapStart failures of a restored environment, which Lambda reports as
// errors of the Invoke call rather than as function errors. The frontend
// turns them into SnapStartException (400) and SnapStartTimeoutException
// (408).
var (
	// ErrAfterRestore: the runtime reported an error of its after-restore
	// hooks (/runtime/restore/error) or exited while running them.
	ErrAfterRestore = errors.New("the after-restore runtime hook encountered an error")
	// ErrRestoreTimeout: the restored runtime did not ask for an event
	// within the restore limit.
	ErrRestoreTimeout = errors.New("the snapshot could not be restored within the timeout limit")
)
