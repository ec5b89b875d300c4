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
//	GET  /2018-06-01/runtime/restore/next              403 Runtime.NotSupported
//	POST /2018-06-01/runtime/restore/error             403 Runtime.NotSupported
//	*    /2020-01-01/extension/..., logs, telemetry    403 Extension.NotSupported
//
// Anything else is 404; a known path with the wrong method is 405.
//
// # Bodies
//
// A /response body (Content-Length or chunked) of more than MaxPayload bytes
// answers 413 RequestEntityTooLarge and fails the invocation with
// Function.ResponseSizeTooLarge. Streamed responses
// (Lambda-Runtime-Function-Response-Mode: streaming) are buffered, so the
// same bound applies; error trailers Lambda-Runtime-Function-Error-Type and
// Lambda-Runtime-Function-Error-Body (base64) on a chunked body turn it into
// a failed invocation. /error and init/error bodies are bounded the same
// way; a valid JSON document passes through untouched, anything else is
// wrapped into {"errorMessage", "errorType"}. The error type is the
// Lambda-Runtime-Function-Error-Type header, else the document's errorType.
//
// # States of the runtime
//
//	initialising ──first /next──> ready
//	     └──────init/error──────> init-failed (terminal: /next, init/error,
//	                                           results all answer 403)
//
// In initialising, results answer 403 InvalidStateTransition and the first
// /next calls OnFirstNext once. In ready, init/error answers 403. A result
// for an ID that is not the delivered invocation's, including a second
// result for the same ID, answers 400 InvalidRequestID (the emulator's
// state machine answers a second result with 403; Lambda's interop layer,
// like this server, treats it as an invalid request ID).
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
// Callbacks are never called with Server.mu held. Deliver may be called
// from any goroutine.
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
)

// Header names of the Runtime API.
const (
	HeaderRequestID       = "Lambda-Runtime-Aws-Request-Id"
	HeaderDeadlineMs      = "Lambda-Runtime-Deadline-Ms"
	HeaderFunctionARN     = "Lambda-Runtime-Invoked-Function-Arn"
	HeaderTraceID         = "Lambda-Runtime-Trace-Id"
	HeaderClientContext   = "Lambda-Runtime-Client-Context"
	HeaderCognitoIdentity = "Lambda-Runtime-Cognito-Identity"
	// HeaderErrorType is a request header on /error and init/error, and a
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
}

type runtimeState int

const (
	runtimeInitialising runtimeState = iota
	runtimeReady
	runtimeInitFailed
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
}

// New returns a Server that reports to cb.
func New(cb Callbacks) *Server {
	return &Server{cb: cb, avail: make(chan struct{})}
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
			renderError(w, http.StatusForbidden, "Runtime.NotSupported",
				"SnapStart restore hooks are not supported in this environment.")
		}
		return
	case runtimePrefix + "restore/error":
		if allow(w, r, http.MethodPost) {
			renderError(w, http.StatusForbidden, "Runtime.NotSupported",
				"SnapStart restore hooks are not supported in this environment.")
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
