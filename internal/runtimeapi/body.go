package runtimeapi

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"
)

const (
	// maxErrorType bounds an error type taken from a header, trailer or
	// document, so that it always fits the agent's frame metadata.
	maxErrorType = 256
	// maxWrappedMessage bounds the bytes of a non-JSON error body quoted in
	// a wrapped document: escaping can grow a byte to six, and the result
	// must stay under MaxPayload.
	maxWrappedMessage = 256 << 10

	responseTooLargeMessage     = "Response payload size exceeded maximum allowed payload size (6291556 bytes)."
	initErrorTooLargeMessage    = "Init error payload size exceeded maximum allowed payload size (6291556 bytes)."
	restoreErrorTooLargeMessage = "Restore error payload size exceeded maximum allowed payload size (6291556 bytes)."
)

// readBounded reads r's body up to limit bytes. It never buffers more than
// limit+1 bytes: when the body is longer, it stops and reports tooLarge
// (with a nil body). On a read error it returns what it read so far.
func readBounded(r *http.Request, limit int64) (body []byte, tooLarge bool, err error) {
	if r.ContentLength > limit {
		return nil, true, nil
	}
	size := int64(4 << 10)
	if r.ContentLength >= 0 {
		size = r.ContentLength + 1 // room for the read that sees EOF
	}
	buf := make([]byte, 0, min(size, limit+1))
	for {
		if len(buf) == cap(buf) {
			grown := make([]byte, len(buf), min(2*int64(cap(buf))+512, limit+1))
			copy(grown, buf)
			buf = grown
		}
		n, err := r.Body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if int64(len(buf)) > limit {
			return nil, true, nil
		}
		if err == io.EOF {
			return buf, false, nil
		}
		if err != nil {
			return buf, false, err
		}
	}
}

// errorDoc is Lambda's error document. Runtimes add stackTrace and other
// fields; documents that are valid JSON are passed through untouched.
type errorDoc struct {
	ErrorMessage string `json:"errorMessage"`
	ErrorType    string `json:"errorType"`
}

// errorDocument turns what the runtime posted as an error into the type and
// JSON document reported to the agent. The type is typ (a header or
// trailer) when set, else the document's errorType. A body that is valid
// JSON is passed through as is (its type may stay empty: untyped); anything
// else is wrapped into {"errorMessage": body, "errorType": typ}, with typ
// defaulting to ErrorTypeUnknown.
func errorDocument(typ string, body []byte) (string, []byte) {
	typ = boundErrorType(typ)
	if !json.Valid(body) {
		return wrapErrorDocument(typ, body)
	}
	if typ == "" {
		var d struct {
			ErrorType string `json:"errorType"`
		}
		if err := json.Unmarshal(body, &d); err == nil {
			typ = boundErrorType(d.ErrorType)
		}
	}
	return typ, body
}

// wrapErrorDocument makes an error document quoting msg (truncated to
// maxWrappedMessage bytes; invalid UTF-8 becomes U+FFFD).
func wrapErrorDocument(typ string, msg []byte) (string, []byte) {
	typ = boundErrorType(typ)
	if typ == "" {
		typ = ErrorTypeUnknown
	}
	if len(msg) > maxWrappedMessage {
		msg = msg[:maxWrappedMessage]
	}
	return typ, marshalDoc(errorDoc{ErrorMessage: string(msg), ErrorType: typ})
}

// boundErrorType makes typ valid UTF-8 of at most maxErrorType bytes.
func boundErrorType(typ string) string {
	if len(typ) > maxErrorType+utf8.UTFMax {
		typ = typ[:maxErrorType+utf8.UTFMax]
	}
	typ = strings.ToValidUTF8(typ, "\uFFFD")
	for len(typ) > maxErrorType {
		_, n := utf8.DecodeLastRuneInString(typ)
		typ = typ[:len(typ)-n]
	}
	return typ
}

func responseTooLargeDocument() []byte {
	return marshalDoc(errorDoc{ErrorMessage: responseTooLargeMessage, ErrorType: ErrorTypeResponseSizeTooLarge})
}

// marshalDoc encodes an errorDoc. Marshalling two strings cannot fail;
// the fallback keeps the function total anyway.
func marshalDoc(d errorDoc) []byte {
	b, err := json.Marshal(d)
	if err != nil {
		return []byte(`{"errorMessage":"Internal error encoding an error document.","errorType":"Runtime.Unknown"}`)
	}
	return b
}

func renderJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"errorMessage":"Internal Server Error","errorType":"InternalServerError"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	// The runtime may have gone; nothing else to tell it.
	if _, err := w.Write(b); err != nil {
		return
	}
}

func renderError(w http.ResponseWriter, status int, typ, msg string) {
	renderJSON(w, status, errorDoc{ErrorMessage: msg, ErrorType: typ})
}

func renderAccepted(w http.ResponseWriter) {
	renderJSON(w, http.StatusAccepted, struct {
		Status string `json:"status"`
	}{"OK"})
}

func renderInvalidRequestID(w http.ResponseWriter) {
	renderError(w, http.StatusBadRequest, "InvalidRequestID", "Invalid request ID")
}

func renderTooLarge(w http.ResponseWriter) {
	renderError(w, http.StatusRequestEntityTooLarge, "RequestEntityTooLarge",
		"Exceeded maximum allowed payload size ("+strconv.Itoa(MaxPayload)+" bytes).")
}

// renderStateError answers a request the runtime's state does not allow, as
// the emulator does (403 InvalidStateTransition).
func renderStateError(w http.ResponseWriter, from, to string) {
	renderError(w, http.StatusForbidden, "InvalidStateTransition",
		"State transition from "+from+" to "+to+" failed for runtime.")
}
