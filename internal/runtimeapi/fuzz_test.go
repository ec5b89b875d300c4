package runtimeapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzRuntimeAPI parses raw HTTP/1.1 requests (method, path, headers,
// chunked bodies, trailers: whatever net/http accepts from a runtime) and
// serves them in each state of the runtime, snapshot mode's included. The
// handler must never panic,
// must answer every request it does not long-poll, and every error it
// renders must be a JSON document.
func FuzzRuntimeAPI(f *testing.F) {
	seeds := []string{
		"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /2018-06-01/runtime/invocation/r1/response HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nok",
		"POST /2018-06-01/runtime/invocation/r1/error HTTP/1.1\r\nHost: x\r\nLambda-Runtime-Function-Error-Type: T\r\nContent-Length: 13\r\n\r\n{\"errorType\":",
		"POST /2018-06-01/runtime/init/error HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nnope",
		"POST /2018-06-01/runtime/invocation/r1/response HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTrailer: Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body\r\n\r\n" +
			"4\r\nabcd\r\n0\r\nLambda-Runtime-Function-Error-Type: X\r\nLambda-Runtime-Function-Error-Body: eyJhIjoxfQ==\r\n\r\n",
		"POST /2018-06-01/runtime/invocation/r1/response HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTrailer: Lambda-Runtime-Function-Error-Body\r\n\r\n0\r\nLambda-Runtime-Function-Error-Body: !!!\r\n\r\n",
		"GET /2018-06-01/runtime/restore/next HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /2018-06-01/runtime/restore/error HTTP/1.1\r\nHost: x\r\nLambda-Runtime-Function-Error-Type: Runtime.AfterRestoreError\r\nContent-Length: 2\r\n\r\n{}",
		"POST /2018-06-01/runtime/restore/error HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
		"POST /2020-01-01/extension/register HTTP/1.1\r\nHost: x\r\n\r\n",
		"DELETE /2018-06-01/runtime/invocation/r1/error HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /%2e%2e/2018-06-01/runtime/invocation/r%2F1/response?x=1 HTTP/1.1\r\nHost: x\r\n\r\n",
	}
	long := strings.Repeat("T", maxErrorType+2)
	seeds = append(seeds,
		"POST /2018-06-01/runtime/invocation/r1/error HTTP/1.1\r\nHost: x\r\nLambda-Runtime-Function-Error-Type: "+long+"\r\nContent-Length: 1\r\n\r\n{",
		"POST /2018-06-01/runtime/init/error HTTP/1.1\r\nHost: x\r\nContent-Length: "+strconv.Itoa(len(long)+16)+"\r\n\r\n{\"errorType\":\""+long+"\"}",
	)
	const modes = 7
	for _, s := range seeds {
		for mode := range byte(modes) {
			f.Add(mode, []byte(s))
		}
	}
	f.Fuzz(func(t *testing.T, mode byte, raw []byte) {
		req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(raw)))
		if err != nil {
			return
		}
		mode %= modes
		cb := Callbacks{
			OnInitError: func(typ string, body []byte) { checkDoc(t, typ, body) },
			OnError:     func(id, typ string, body []byte) { checkDoc(t, typ, body) },
		}
		if mode >= 3 {
			cb.OnCheckpoint = func(bool) {}
			cb.OnRestoreError = func(typ string, body []byte) { checkDoc(t, typ, body) }
		}
		s := New(cb)
		// A cancelled context ends a /next or restore/next that would
		// block.
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		serve := func(method, path string) {
			s.Handler().ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(method, path, nil).WithContext(ctx))
		}
		switch mode {
		case 1: // ready, r1 delivered
			s.Deliver(testEvent("r1"))
			serve("GET", nextPath)
		case 2: // ready, r1 queued
			s.mu.Lock()
			s.state = runtimeReady
			s.mu.Unlock()
			s.Deliver(testEvent("r1"))
		case 3: // snapshot mode, initialising
		case 4: // snapshot mode, restore-ready: restore/next blocks
			serve("GET", "/2018-06-01/runtime/restore/next")
		case 5: // snapshot mode, restoring: restore/next returned
			serve("GET", "/2018-06-01/runtime/restore/next")
			s.Restored()
		case 6: // snapshot mode, checkpointed at /next: r1 held
			serve("GET", nextPath)
			s.Deliver(testEvent("r1"))
		}
		w := httptest.NewRecorder()
		s.Handler().ServeHTTP(w, req.WithContext(ctx))
		if w.Code >= 400 {
			var d errorDoc
			if err := json.Unmarshal(w.Body.Bytes(), &d); err != nil || d.ErrorType == "" {
				t.Fatalf("status %d with body %q", w.Code, w.Body)
			}
		}
	})
}

// checkDoc asserts what reaches the agent is bounded and JSON.
func checkDoc(t *testing.T, typ string, body []byte) {
	if len(typ) > maxErrorType || !utf8.ValidString(typ) || len(body) > MaxPayload || !json.Valid(body) {
		t.Fatalf("error type %q, document of %d bytes (valid %v)", typ, len(body), json.Valid(body))
	}
}
