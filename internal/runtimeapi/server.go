// Package runtimeapi serves the Lambda Runtime API (version 2018-06-01) to a
// function's runtime, as the agent inside each sandbox does on
// 127.0.0.1:9001. It knows nothing about the worker: the agent hands it
// events with Deliver and learns of results through Callbacks.
//
// The runtime is hostile tenant code. Every body read is bounded (at most
// MaxPayload+1 bytes are buffered), every malformed request gets a JSON 4xx,
// and no input makes the server panic (FuzzRuntimeAPI).
//
// # Endpoints
//
//	GET  /2018-06-01/runtime/invocation/next           long-poll for an event (200)
//	POST /2018-06-01/runtime/invocation/{id}/response  result (202)
//	POST /2018-06-01/runtime/invocation/{id}/error     function error (202)
//	POST /2018-06-01/runtime/init/error                init error (202)
//	GET  /2018-06-01/runtime/restore/next              checkpoint point, 200 after restore (*)
//	POST /2018-06-01/runtime/restore/error             after-restore hook failed (202) (*)
//	*    /2020-01-01/extension/..., logs, telemetry    403 Extension.NotSupported
//
// (*) In snapshot mode only (see Snapshot mode); otherwise both answer 403
// Runtime.NotSupported. Anything else is 404; a known path with the wrong
// method is 405.
//
// # Bodies
//
// A /response body (Content-Length or chunked) of more than MaxPayload bytes
// answers 413 RequestEntityTooLarge and fails the invocation with
// Function.ResponseSizeTooLarge. Streamed responses
// (Lambda-Runtime-Function-Response-Mode: streaming) are buffered, so the
// same bound applies; error trailers Lambda-Runtime-Function-Error-Type and
// Lambda-Runtime-Function-Error-Body (base64) on a chunked body turn it into
// a failed invocation. /error, init/error and restore/error bodies are
// bounded the same way; a valid JSON document passes through untouched,
// anything else is wrapped into {"errorMessage", "errorType"}. The error
// type is the Lambda-Runtime-Function-Error-Type header, else the
// document's errorType; for restore/error, the header, else
// ErrorTypeAfterRestore (the document's errorType is not looked at).
//
// # States of the runtime
//
//	initialising ──first /next──> ready
//	     └──────init/error──────> init-failed (terminal: /next, init/error,
//	                                           results all answer 403)
//
// In snapshot mode two more paths leave initialising:
//
//	initialising ──restore/next──> restore-ready ──Restored──> restoring ──/next──> ready
//	                                                               └──restore/error──> restore-failed (terminal)
//	initialising ──first /next──> ready, events held ──Restored──> ready
//
// In initialising, results answer 403 InvalidStateTransition and the first
// /next calls OnFirstNext once. In ready, init/error answers 403. A result
// for an ID that is not the delivered invocation's, including a second
// result for the same ID, answers 400 InvalidRequestID (the emulator's
// state machine answers a second result with 403; Lambda's interop layer,
// like this server, treats it as an invalid request ID). Every request a
// state does not allow answers 403 InvalidStateTransition, "State
// transition from <state> to <target> failed for runtime.", the states
// named Initialising, RestoreReady, Restoring, Ready, InitError and
// RestoreError, the targets Ready (/next), InitError, RestoreReady
// (restore/next), RestoreError, InvocationResponse and
// InvocationErrorResponse.
//
// # Snapshot mode
//
// Setting Callbacks.OnCheckpoint enables snapshot mode (Lambda SnapStart):
// the runtime's environment is checkpointed at the end of init and later
// restored, possibly many times. The checkpoint point is, once:
//
//   - GET restore/next, allowed only in initialising (the runtime has run
//     its before-snapshot hooks): the state becomes restore-ready,
//     OnCheckpoint(true) is called, and the request blocks until Restored
//     is called, then answers 200 with an empty body. The runtime runs its
//     after-restore hooks, then either asks for /next (OnFirstNext, ready)
//     or posts restore/error: its body is read like init/error's, the type
//     is the Lambda-Runtime-Function-Error-Type header or
//     ErrorTypeAfterRestore, OnRestoreError is called and it answers 202;
//     the state restore-failed is terminal like init-failed. If the
//     runtime's connection closes while restore/next blocks, the state
//     still moves on at Restored.
//   - or the first /next of a runtime that never called restore/next:
//     OnCheckpoint(false) is called instead of OnFirstNext, and the /next
//     stays pending: no event is handed out until Restored, which calls
//     OnFirstNext itself (on its caller's goroutine) and then releases the
//     pending /next to wait for its event as usual.
//
// A second restore/next, or one after the first /next, answers 403
// InvalidStateTransition (to RestoreReady); restore/error outside
// restoring answers 403 InvalidStateTransition (to RestoreError).
//
// # States of an invocation
//
//	Deliver ──> queued ──/next──> delivered ──POST result──> answering ──> answered
//	                                  └──(another /next)──┘
//
// The states:
//
//   - queued: Deliver was called; the next (or a pending) /next takes it.
//     The queue holds one event: the worker never sends a second event
//     before the first has a result. Delivering while one is outstanding
//     replaces it, and the old request ID becomes unknown.
//   - delivered: a /next returned it. A further /next before a result
//     returns the same event again, as the Runtime Interface Emulator does
//     (its ready state accepts /next and re-renders the current invoke): a
//     runtime whose /next connection broke can ask again.
//   - answering: a POST for its ID is reading the body. A second POST for
//     the same ID, concurrent or later, answers 400 InvalidRequestID; a /next
//     waits. If the body cannot be read (the connection broke) the
//     invocation goes back to delivered so the runtime may retry.
//   - answered: the callback ran; the invocation is forgotten and its ID
//     answers 400 InvalidRequestID from then on.
//
// # Threads
//
// Every handler runs on its net/http connection goroutine. Callbacks are
// called on that goroutine, synchronously, after the body is read and
// before the runtime gets its 202: a callback that returns has made the
// result known to the agent before the runtime can log anything after it.
// Callbacks are never called with Server.mu held. Deliver and Restored may
// be called from any goroutine; Restored calls OnFirstNext on its caller's
// goroutine when the checkpoint was taken at a /next.
package runtimeapi

import (
	"net/http"
	"strings"
	"sync"
)

// MaxPayload is the largest body the runtime may post: 6 MiB + 100 bytes,
// Lambda's synchronous payload limit (the emulator's MaxPayloadSize).
const MaxPayload = 6291556

// Error types that the server itself produces.
const (
	// ErrorTypeResponseSizeTooLarge fails an invocation whose response
	// exceeded MaxPayload.
	ErrorTypeResponseSizeTooLarge = "Function.ResponseSizeTooLarge"
	// ErrorTypeUnknown is given to an error document that the runtime did
	// not type (no header, not a JSON document with an errorType).
	ErrorTypeUnknown = "Runtime.Unknown"
	// ErrorTypeAfterRestore is the type of a restore/error posted without
	// a Lambda-Runtime-Function-Error-Type header.
	ErrorTypeAfterRestore = "Runtime.AfterRestoreError"
)

// Header names of the Runtime API.
const (
	HeaderRequestID       = "Lambda-Runtime-Aws-Request-Id"
	HeaderDeadlineMs      = "Lambda-Runtime-Deadline-Ms"
	HeaderFunctionARN     = "Lambda-Runtime-Invoked-Function-Arn"
	HeaderTraceID         = "Lambda-Runtime-Trace-Id"
	HeaderClientContext   = "Lambda-Runtime-Client-Context"
	HeaderCognitoIdentity = "Lambda-Runtime-Cognito-Identity"
	// HeaderErrorType is a request header on /error, init/error and
	// restore/error, and a
	// trailer on a chunked /response that failed mid-stream.
	HeaderErrorType = "Lambda-Runtime-Function-Error-Type"
	// HeaderErrorBody is a trailer on a chunked /response that failed
	// mid-stream: the error document, base64.
	HeaderErrorBody = "Lambda-Runtime-Function-Error-Body"
)

// Event is one invocation as the runtime sees it on /next.
type Event struct {
	RequestID   string
	DeadlineMs  int64 // Unix milliseconds
	FunctionARN string
	// TraceID, ClientContext and CognitoIdentity become headers only when
	// not empty.
	TraceID         string
	ClientContext   string
	CognitoIdentity string
	Payload         []byte
}

// Callbacks tell the agent what the runtime did. Nil fields are ignored.
// Body slices are owned by the callee.
type Callbacks struct {
	// OnFirstNext is called once, when the runtime first asks for an
	// event: init is over.
	OnFirstNext func()
	// OnInitError is called once if the runtime posts init/error before
	// its first /next. body is a JSON error document (see errorDocument).
	OnInitError func(errType string, body []byte)
	// OnResponse is called with the runtime's result for requestID.
	OnResponse func(requestID string, body []byte)
	// OnError is called when the invocation failed: the runtime posted
	// /error, its response was too large, or a chunked response ended
	// with error trailers. body is a JSON error document.
	OnError func(requestID, errType string, body []byte)
	// OnCheckpoint, when not nil, enables snapshot mode (see the package
	// doc). It is called once, when the runtime reaches the checkpoint
	// point: hooks is true when it called restore/next, false when it is
	// at its first /next (OnFirstNext is then called by Restored, not by
	// the /next). The sandbox may be checkpointed once it returns; the
	// Server waits for Restored.
	OnCheckpoint func(hooks bool)
	// OnRestoreError is called once if, in snapshot mode, the runtime
	// posts restore/error after restore/next returned and before its
	// first /next. body is a JSON error document (see errorDocument).
	OnRestoreError func(errType string, body []byte)
}

type runtimeState int

const (
	runtimeInitialising runtimeState = iota
	runtimeReady
	runtimeInitFailed
	// runtimeRestoreReady: restore/next is (or was) pending, Restored not
	// called yet. Snapshot mode only.
	runtimeRestoreReady
	// runtimeRestoring: restored after restore/next, before the first
	// /next or restore/error.
	runtimeRestoring
	// runtimeRestoreFailed: restore/error was posted. Terminal.
	runtimeRestoreFailed
)

// String is the state's name in InvalidStateTransition documents.
func (st runtimeState) String() string {
	switch st {
	case runtimeInitialising:
		return "Initialising"
	case runtimeReady:
		return "Ready"
	case runtimeInitFailed:
		return "InitError"
	case runtimeRestoreReady:
		return "RestoreReady"
	case runtimeRestoring:
		return "Restoring"
	case runtimeRestoreFailed:
		return "RestoreError"
	}
	return "Unknown"
}

// checkpointState tracks the checkpoint point in snapshot mode.
type checkpointState int

const (
	checkpointNone    checkpointState = iota
	checkpointPending                 // reached; Restored not called yet
	checkpointDone                    // Restored was called
)

type invocationState int

const (
	invQueued invocationState = iota
	invDelivered
	invAnswering
)

type invocation struct {
	ev    Event
	state invocationState
}

// Server is the Runtime API of one sandbox. Create it with New.
type Server struct {
	cb Callbacks

	// mu guards the fields below it. Never held while calling a callback
	// or doing I/O.
	mu    sync.Mutex
	state runtimeState
	// cur is the outstanding invocation (queued, delivered or answering),
	// nil when there is none.
	cur *invocation
	// taken is the request id of the last event a /next returned.
	taken string
	// avail is closed (and replaced) whenever cur becomes deliverable;
	// waiting /next handlers select on it.
	avail chan struct{}

	// snapshot is true in snapshot mode (cb.OnCheckpoint set). Immutable.
	snapshot bool
	// checkpoint says whether the checkpoint point was reached and
	// whether Restored was called.
	checkpoint checkpointState
	// held keeps /next from handing out events: the checkpoint was taken
	// at the first /next and OnFirstNext has not returned after Restored.
	held bool
	// restored is closed by Restored; a blocked restore/next waits on it.
	restored chan struct{}
}

// New returns a Server that reports to cb. A non-nil cb.OnCheckpoint
// enables snapshot mode.
func New(cb Callbacks) *Server {
	return &Server{
		cb:       cb,
		avail:    make(chan struct{}),
		snapshot: cb.OnCheckpoint != nil,
		restored: make(chan struct{}),
	}
}

// Restored tells the Server that the sandbox was restored from the
// checkpoint taken when OnCheckpoint was called: a blocked restore/next
// answers 200, or, when the checkpoint was at the first /next, OnFirstNext
// is called (before Restored returns) and /next hands out events again. It
// returns false, doing nothing, unless OnCheckpoint was called and Restored
// was not.
func (s *Server) Restored() bool {
	s.mu.Lock()
	if s.checkpoint != checkpointPending {
		s.mu.Unlock()
		return false
	}
	s.checkpoint = checkpointDone
	close(s.restored)
	if s.state == runtimeRestoreReady {
		s.state = runtimeRestoring
		s.mu.Unlock()
		return true
	}
	// Checkpointed at the first /next: init is over now. Events stay held
	// until OnFirstNext has returned, so that the agent reports Ready
	// before the runtime can get an event.
	s.mu.Unlock()
	if s.cb.OnFirstNext != nil {
		s.cb.OnFirstNext()
	}
	s.mu.Lock()
	s.held = false
	s.wakeLocked()
	s.mu.Unlock()
	return true
}

// Deliver hands ev to the runtime: to a pending /next, or to the next one.
// It replaces any outstanding invocation (see the package doc).
func (s *Server) Deliver(ev Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cur = &invocation{ev: ev, state: invQueued}
	s.wakeLocked()
}

// Undelivered returns the request id of the event the runtime has not
// fetched yet with /next, if there is one. After the runtime exited, that
// event never reached the function and may be run elsewhere.
func (s *Server) Undelivered() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur != nil && s.cur.state == invQueued {
		return s.cur.ev.RequestID
	}
	return ""
}

// Taken returns the request id of the last event the runtime fetched with
// /next, or "" if it fetched none.
func (s *Server) Taken() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.taken
}

// wakeLocked releases every waiting /next. s.mu must be held.
func (s *Server) wakeLocked() {
	close(s.avail)
	s.avail = make(chan struct{})
}

// Handler returns the HTTP handler serving the Runtime API.
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(s.route)
}

const (
	runtimePrefix    = "/2018-06-01/runtime/"
	invocationPrefix = runtimePrefix + "invocation/"
)

// unsupportedPrefixes are APIs other runtimes and extensions may probe.
var unsupportedPrefixes = []string{
	"/2020-01-01/extension/",
	"/2020-08-15/logs",
	"/2022-07-01/telemetry",
}

func (s *Server) route(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	switch p {
	case invocationPrefix + "next":
		if allow(w, r, http.MethodGet) {
			s.next(w, r)
		}
		return
	case runtimePrefix + "init/error":
		if allow(w, r, http.MethodPost) {
			s.initError(w, r)
		}
		return
	case runtimePrefix + "restore/next":
		if allow(w, r, http.MethodGet) {
			s.restoreNext(w, r)
		}
		return
	case runtimePrefix + "restore/error":
		if allow(w, r, http.MethodPost) {
			s.restoreError(w, r)
		}
		return
	}
	if rest, ok := strings.CutPrefix(p, invocationPrefix); ok {
		if id, action, ok := strings.Cut(rest, "/"); ok && id != "" {
			switch action {
			case "response":
				if allow(w, r, http.MethodPost) {
					s.response(w, r, id)
				}
				return
			case "error":
				if allow(w, r, http.MethodPost) {
					s.invocationError(w, r, id)
				}
				return
			}
		}
	}
	for _, pre := range unsupportedPrefixes {
		if strings.HasPrefix(p, pre) {
			renderError(w, http.StatusForbidden, "Extension.NotSupported",
				"Lambda extensions, the Logs API and the Telemetry API are not supported in this environment.")
			return
		}
	}
	renderError(w, http.StatusNotFound, "NotFound", "Unknown Runtime API path.")
}

// allow answers 405 and returns false unless r uses method.
func allow(w http.ResponseWriter, r *http.Request, method string) bool {
	if r.Method == method {
		return true
	}
	w.Header().Set("Allow", method)
	renderError(w, http.StatusMethodNotAllowed, "MethodNotAllowed",
		"Method "+method+" is required for this path.")
	return false
}
