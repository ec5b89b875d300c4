package runtimeapi

import (
	"encoding/base64"
	"net/http"
	"strconv"
)

// next serves GET /runtime/invocation/next.
func (s *Server) next(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	first, checkpoint := false, false
	switch st := s.state; st {
	case runtimeReady:
	case runtimeInitialising:
		s.state = runtimeReady
		if s.snapshot {
			// The checkpoint point: no event until Restored.
			s.held = true
			s.checkpoint = checkpointPending
			checkpoint = true
		} else {
			first = true
		}
	case runtimeRestoring:
		s.state = runtimeReady
		first = true
	default:
		s.mu.Unlock()
		renderStateError(w, st.String(), "Ready")
		return
	}
	s.mu.Unlock()
	if checkpoint {
		s.cb.OnCheckpoint(false)
	}
	if first && s.cb.OnFirstNext != nil {
		s.cb.OnFirstNext()
	}
	for {
		s.mu.Lock()
		if inv := s.cur; !s.held && inv != nil && (inv.state == invQueued || inv.state == invDelivered) {
			inv.state = invDelivered
			ev := inv.ev
			s.taken = ev.RequestID
			s.mu.Unlock()
			writeEvent(w, ev)
			return
		}
		avail := s.avail
		s.mu.Unlock()
		select {
		case <-avail:
		case <-r.Context().Done():
			return
		}
	}
}

func writeEvent(w http.ResponseWriter, ev Event) {
	h := w.Header()
	h.Set(HeaderRequestID, ev.RequestID)
	h.Set(HeaderDeadlineMs, strconv.FormatInt(ev.DeadlineMs, 10))
	h.Set(HeaderFunctionARN, ev.FunctionARN)
	setIfNotEmpty(h, HeaderTraceID, ev.TraceID)
	setIfNotEmpty(h, HeaderClientContext, ev.ClientContext)
	setIfNotEmpty(h, HeaderCognitoIdentity, ev.CognitoIdentity)
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(ev.Payload)))
	w.WriteHeader(http.StatusOK)
	// A failed write means the runtime went away; the invocation stays
	// delivered and a later /next gets it again.
	if _, err := w.Write(ev.Payload); err != nil {
		return
	}
}

func setIfNotEmpty(h http.Header, k, v string) {
	if v != "" {
		h.Set(k, v)
	}
}

// beginResult moves the invocation id from delivered to answering. It
// answers the request itself and returns false when that is not allowed.
func (s *Server) beginResult(w http.ResponseWriter, id, to string) bool {
	s.mu.Lock()
	state := s.state
	inv := s.cur
	ok := state == runtimeReady && inv != nil && inv.ev.RequestID == id && inv.state == invDelivered
	if ok {
		inv.state = invAnswering
	}
	s.mu.Unlock()
	switch {
	case ok:
		return true
	case state != runtimeReady:
		renderStateError(w, state.String(), to)
	default:
		renderInvalidRequestID(w)
	}
	return false
}

// finishResult forgets the invocation id once its result is known. It
// returns false when Deliver replaced it in the meantime.
func (s *Server) finishResult(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if inv := s.cur; inv != nil && inv.ev.RequestID == id && inv.state == invAnswering {
		s.cur = nil
		return true
	}
	return false
}

// abortResult returns the invocation id to delivered after its result could
// not be read, so that the runtime may post it again.
func (s *Server) abortResult(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if inv := s.cur; inv != nil && inv.ev.RequestID == id && inv.state == invAnswering {
		inv.state = invDelivered
		s.wakeLocked()
	}
}

// readResult does what both result endpoints do first: claim the
// invocation (state transition op), read its body within MaxPayload, and
// answer failures itself (a body over the limit fails the invocation with
// Function.ResponseSizeTooLarge). ok is false when it has answered.
func (s *Server) readResult(w http.ResponseWriter, r *http.Request, id, op string) (body []byte, ok bool) {
	if !s.beginResult(w, id, op) {
		return nil, false
	}
	body, tooLarge, err := readBounded(r, MaxPayload)
	if err != nil {
		s.abortResult(id)
		renderError(w, http.StatusBadRequest, "InvalidRequestBody", "Could not read the request body.")
		return nil, false
	}
	if !s.finishResult(id) {
		renderInvalidRequestID(w)
		return nil, false
	}
	if tooLarge {
		if s.cb.OnError != nil {
			s.cb.OnError(id, ErrorTypeResponseSizeTooLarge, responseTooLargeDocument())
		}
		renderTooLarge(w)
		return nil, false
	}
	return body, true
}

// response serves POST /runtime/invocation/{id}/response.
func (s *Server) response(w http.ResponseWriter, r *http.Request, id string) {
	body, ok := s.readResult(w, r, id, "InvocationResponse")
	if !ok {
		return
	}
	// The response-streaming convention: a chunked body whose trailers
	// carry an error type or body is a failed invocation, whatever it
	// streamed before.
	if typ, eb := r.Trailer.Get(HeaderErrorType), r.Trailer.Get(HeaderErrorBody); typ != "" || eb != "" {
		doc, err := base64.StdEncoding.DecodeString(eb)
		if err != nil {
			doc = []byte(eb)
		}
		typ, doc = errorDocument(typ, doc)
		if s.cb.OnError != nil {
			s.cb.OnError(id, typ, doc)
		}
		renderAccepted(w)
		return
	}
	if s.cb.OnResponse != nil {
		s.cb.OnResponse(id, body)
	}
	renderAccepted(w)
}

// invocationError serves POST /runtime/invocation/{id}/error.
func (s *Server) invocationError(w http.ResponseWriter, r *http.Request, id string) {
	body, ok := s.readResult(w, r, id, "InvocationErrorResponse")
	if !ok {
		return
	}
	typ, doc := errorDocument(r.Header.Get(HeaderErrorType), body)
	if s.cb.OnError != nil {
		s.cb.OnError(id, typ, doc)
	}
	renderAccepted(w)
}

// initError serves POST /runtime/init/error.
func (s *Server) initError(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	state := s.state
	if state == runtimeInitialising {
		s.state = runtimeInitFailed
	}
	s.mu.Unlock()
	if state != runtimeInitialising {
		renderStateError(w, state.String(), "InitError")
		return
	}
	typ, doc, tooLarge := readErrorDocument(r, r.Header.Get(HeaderErrorType), initErrorTooLargeMessage)
	if s.cb.OnInitError != nil {
		s.cb.OnInitError(typ, doc)
	}
	if tooLarge {
		renderTooLarge(w)
		return
	}
	renderAccepted(w)
}

// readErrorDocument reads the body of init/error or restore/error within
// MaxPayload and makes it an error document typed hdrType (else as
// errorDocument says). A body over the limit becomes a document quoting
// tooLargeMsg, and tooLarge is true.
func readErrorDocument(r *http.Request, hdrType, tooLargeMsg string) (typ string, doc []byte, tooLarge bool) {
	// On a read error, report what arrived: the runtime is failing anyway.
	body, tooLarge, err := readBounded(r, MaxPayload)
	if err != nil && len(body) == 0 {
		body = []byte("Could not read the error document: " + err.Error())
	}
	if tooLarge {
		typ, doc = wrapErrorDocument(hdrType, []byte(tooLargeMsg))
		return typ, doc, true
	}
	typ, doc = errorDocument(hdrType, body)
	return typ, doc, false
}

// renderNotSupported answers the restore endpoints outside snapshot mode.
func renderNotSupported(w http.ResponseWriter) {
	renderError(w, http.StatusForbidden, "Runtime.NotSupported",
		"SnapStart restore hooks are not supported in this environment.")
}

// restoreNext serves GET /runtime/restore/next: in snapshot mode, the
// checkpoint point of a runtime with restore hooks. It blocks until
// Restored.
func (s *Server) restoreNext(w http.ResponseWriter, r *http.Request) {
	if !s.snapshot {
		renderNotSupported(w)
		return
	}
	s.mu.Lock()
	state := s.state
	if state == runtimeInitialising {
		s.state = runtimeRestoreReady
		s.checkpoint = checkpointPending
	}
	restored := s.restored
	s.mu.Unlock()
	if state != runtimeInitialising {
		renderStateError(w, state.String(), "RestoreReady")
		return
	}
	s.cb.OnCheckpoint(true)
	select {
	case <-restored:
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(http.StatusOK)
	case <-r.Context().Done():
		// The runtime went away; Restored still moves the state on.
	}
}

// restoreError serves POST /runtime/restore/error: in snapshot mode, the
// runtime's after-restore hooks failed.
func (s *Server) restoreError(w http.ResponseWriter, r *http.Request) {
	if !s.snapshot {
		renderNotSupported(w)
		return
	}
	s.mu.Lock()
	state := s.state
	if state == runtimeRestoring {
		s.state = runtimeRestoreFailed
	}
	s.mu.Unlock()
	if state != runtimeRestoring {
		renderStateError(w, state.String(), "RestoreError")
		return
	}
	hdrType := boundErrorType(r.Header.Get(HeaderErrorType))
	if hdrType == "" {
		hdrType = ErrorTypeAfterRestore
	}
	typ, doc, tooLarge := readErrorDocument(r, hdrType, restoreErrorTooLargeMessage)
	if s.cb.OnRestoreError != nil {
		s.cb.OnRestoreError(typ, doc)
	}
	if tooLarge {
		renderTooLarge(w)
		return
	}
	renderAccepted(w)
}
