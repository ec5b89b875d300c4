package runtimeapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"
)

const (
	nextPath = "/2018-06-01/runtime/invocation/next"
	initPath = "/2018-06-01/runtime/init/error"
)

func respPath(id string) string { return "/2018-06-01/runtime/invocation/" + id + "/response" }
func errPath(id string) string  { return "/2018-06-01/runtime/invocation/" + id + "/error" }

// recorded is what the callbacks saw, in order.
type recorded struct {
	mu     sync.Mutex
	first  int
	events []string // "response id body", "error id type body", "init type body"
	// firstNext is closed by the first OnFirstNext.
	firstNext chan struct{}
}

func newTestServer() (*Server, *recorded) {
	rec := &recorded{firstNext: make(chan struct{})}
	s := New(Callbacks{
		OnFirstNext: func() {
			rec.mu.Lock()
			defer rec.mu.Unlock()
			rec.first++
			if rec.first == 1 {
				close(rec.firstNext)
			}
		},
		OnInitError: func(typ string, body []byte) {
			rec.add("init " + typ + " " + string(body))
		},
		OnResponse: func(id string, body []byte) {
			rec.add("response " + id + " " + string(body))
		},
		OnError: func(id, typ string, body []byte) {
			rec.add("error " + id + " " + typ + " " + string(body))
		},
	})
	return s, rec
}

func (r *recorded) add(e string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

func (r *recorded) list() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.events...)
}

func (r *recorded) firstCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.first
}

func do(t *testing.T, s *Server, method, path string, hdr map[string]string, body string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	s.Handler().ServeHTTP(w, req)
	return w
}

func wantJSON(t *testing.T, w *httptest.ResponseRecorder, status int, body string) {
	t.Helper()
	if w.Code != status {
		t.Fatalf("status %d, want %d (body %s)", w.Code, status, w.Body)
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q", ct)
	}
	if body != "" && strings.TrimSpace(w.Body.String()) != body {
		t.Fatalf("body %s, want %s", w.Body, body)
	}
}

const accepted = `{"status":"OK"}`
const invalidID = `{"errorMessage":"Invalid request ID","errorType":"InvalidRequestID"}`

func testEvent(id string) Event {
	return Event{RequestID: id, DeadlineMs: 1700000000123, FunctionARN: "arn:aws:lambda:us-east-1:000000000000:function:f", Payload: []byte(`{"k":1}`)}
}

// ready makes s ready with invocation id delivered.
func ready(t *testing.T, s *Server, id string) {
	t.Helper()
	s.Deliver(testEvent(id))
	w := do(t, s, "GET", nextPath, nil, "")
	if w.Code != 200 || w.Header().Get(HeaderRequestID) != id {
		t.Fatalf("next: %d %v", w.Code, w.Header())
	}
}

func TestNextHeaders(t *testing.T) {
	s, rec := newTestServer()
	ev := testEvent("r1")
	ev.TraceID = "Root=1-2-3"
	ev.ClientContext = `{"custom":{}}`
	ev.CognitoIdentity = `{"cognitoIdentityId":"x"}`
	s.Deliver(ev)
	w := do(t, s, "GET", nextPath, nil, "")
	if w.Code != 200 || w.Body.String() != `{"k":1}` {
		t.Fatalf("got %d %q", w.Code, w.Body)
	}
	want := map[string]string{
		HeaderRequestID:       "r1",
		HeaderDeadlineMs:      "1700000000123",
		HeaderFunctionARN:     ev.FunctionARN,
		HeaderTraceID:         ev.TraceID,
		HeaderClientContext:   ev.ClientContext,
		HeaderCognitoIdentity: ev.CognitoIdentity,
		"Content-Type":        "application/json",
	}
	for k, v := range want {
		if got := w.Header().Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if n := rec.firstCount(); n != 1 {
		t.Fatalf("OnFirstNext called %d times", n)
	}

	// Optional headers are absent when empty; OnFirstNext stays at one.
	wantJSON(t, do(t, s, "POST", respPath("r1"), nil, "ok"), 202, accepted)
	s.Deliver(testEvent("r2"))
	w = do(t, s, "GET", nextPath, nil, "")
	for _, k := range []string{HeaderTraceID, HeaderClientContext, HeaderCognitoIdentity} {
		if _, ok := w.Header()[k]; ok {
			t.Errorf("header %s set for an empty value", k)
		}
	}
	if n := rec.firstCount(); n != 1 {
		t.Fatalf("OnFirstNext called %d times", n)
	}
}

func TestNextLongPoll(t *testing.T) {
	s, rec := newTestServer()
	got := make(chan *httptest.ResponseRecorder)
	go func() { got <- do(t, s, "GET", nextPath, nil, "") }()
	<-rec.firstNext // init is over before any event exists
	s.Deliver(testEvent("r1"))
	w := <-got
	if w.Code != 200 || w.Header().Get(HeaderRequestID) != "r1" {
		t.Fatalf("got %d %v", w.Code, w.Header())
	}
}

func TestNextCancelled(t *testing.T) {
	s, _ := newTestServer()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	req := httptest.NewRequest("GET", nextPath, nil).WithContext(ctx)
	w := httptest.NewRecorder()
	s.Handler().ServeHTTP(w, req) // returns without an event
	// The event is still there for the next /next.
	ready(t, s, "r1")
}

func TestNextRedelivers(t *testing.T) {
	s, _ := newTestServer()
	ready(t, s, "r1")
	w := do(t, s, "GET", nextPath, nil, "")
	if w.Code != 200 || w.Header().Get(HeaderRequestID) != "r1" || w.Body.String() != `{"k":1}` {
		t.Fatalf("second next: %d %v", w.Code, w.Header())
	}
	wantJSON(t, do(t, s, "POST", respPath("r1"), nil, "ok"), 202, accepted)
}

func TestDeliverReplaces(t *testing.T) {
	s, rec := newTestServer()
	ready(t, s, "r1")
	s.Deliver(testEvent("r2"))
	wantJSON(t, do(t, s, "POST", respPath("r1"), nil, "late"), 400, invalidID)
	// r2 is queued, not delivered: a result for it is refused too.
	wantJSON(t, do(t, s, "POST", respPath("r2"), nil, "early"), 400, invalidID)
	if w := do(t, s, "GET", nextPath, nil, ""); w.Header().Get(HeaderRequestID) != "r2" {
		t.Fatalf("next gave %v", w.Header())
	}
	wantJSON(t, do(t, s, "POST", respPath("r2"), nil, "ok"), 202, accepted)
	if got := rec.list(); len(got) != 1 || got[0] != "response r2 ok" {
		t.Fatalf("callbacks %q", got)
	}
}

func TestResponse(t *testing.T) {
	s, rec := newTestServer()
	wantJSON(t, do(t, s, "POST", respPath("r1"), nil, "x"), 403, "")
	ready(t, s, "r1")
	wantJSON(t, do(t, s, "POST", respPath("nope"), nil, "x"), 400, invalidID)
	wantJSON(t, do(t, s, "POST", respPath("r1"), nil, `{"a":"b"}`), 202, accepted)
	wantJSON(t, do(t, s, "POST", respPath("r1"), nil, "again"), 400, invalidID)
	wantJSON(t, do(t, s, "POST", errPath("r1"), nil, "again"), 400, invalidID)
	if got := rec.list(); len(got) != 1 || got[0] != `response r1 {"a":"b"}` {
		t.Fatalf("callbacks %q", got)
	}
}

func TestStateErrorBody(t *testing.T) {
	s, _ := newTestServer()
	w := do(t, s, "POST", errPath("r1"), nil, "{}")
	wantJSON(t, w, 403, "")
	var d errorDoc
	if err := json.Unmarshal(w.Body.Bytes(), &d); err != nil || d.ErrorType != "InvalidStateTransition" {
		t.Fatalf("body %s: %v", w.Body, err)
	}
}

const tooLargeBody = `{"errorMessage":"Exceeded maximum allowed payload size (6291556 bytes).","errorType":"RequestEntityTooLarge"}`
const tooLargeDoc = `{"errorMessage":"Response payload size exceeded maximum allowed payload size (6291556 bytes).","errorType":"Function.ResponseSizeTooLarge"}`

func TestResponseLimit(t *testing.T) {
	for _, tc := range []struct {
		name    string
		size    int
		chunked bool
		status  int
	}{
		{"exact", MaxPayload, false, 202},
		{"exact-chunked", MaxPayload, true, 202},
		{"over", MaxPayload + 1, false, 413},
		{"over-chunked", MaxPayload + 1, true, 413},
		{"far-over-chunked", 3 * MaxPayload, true, 413},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, rec := newTestServer()
			ready(t, s, "r1")
			req := httptest.NewRequest("POST", respPath("r1"), nil)
			body := &countingReader{r: bytes.NewReader(bytes.Repeat([]byte("a"), tc.size))}
			req.Body = io.NopCloser(body)
			req.ContentLength = int64(tc.size)
			if tc.chunked {
				req.ContentLength = -1
			}
			w := httptest.NewRecorder()
			s.Handler().ServeHTTP(w, req)
			if tc.status == 202 {
				wantJSON(t, w, 202, accepted)
				if got := rec.list(); len(got) != 1 || len(got[0]) != len("response r1 ")+tc.size {
					t.Fatalf("callbacks: %d", len(got))
				}
				return
			}
			wantJSON(t, w, 413, tooLargeBody)
			if got := rec.list(); len(got) != 1 || got[0] != "error r1 Function.ResponseSizeTooLarge "+tooLargeDoc {
				t.Fatalf("callbacks %q", got)
			}
			if body.n > MaxPayload+1+64<<10 {
				t.Fatalf("read %d bytes of an oversized body", body.n)
			}
			wantJSON(t, do(t, s, "POST", respPath("r1"), nil, "x"), 400, invalidID)
		})
	}
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func TestReadBoundedAllocation(t *testing.T) {
	for _, n := range []int{0, 1, 4095, 4096, 4097, 100000, MaxPayload, MaxPayload + 1} {
		req := httptest.NewRequest("POST", "/", io.NopCloser(bytes.NewReader(make([]byte, n))))
		req.ContentLength = -1
		body, tooLarge, err := readBounded(req, MaxPayload)
		if err != nil {
			t.Fatal(err)
		}
		if tooLarge != (n > MaxPayload) || (!tooLarge && len(body) != n) || cap(body) > MaxPayload+1 {
			t.Fatalf("n=%d: len %d cap %d tooLarge %v", n, len(body), cap(body), tooLarge)
		}
	}
}

var errBroken = errors.New("connection broke")

type brokenReader struct{ n int }

func (b *brokenReader) Read(p []byte) (int, error) {
	if b.n == 0 {
		return 0, errBroken
	}
	b.n--
	p[0] = 'x'
	return 1, nil
}

func TestBrokenBodyAllowsRetry(t *testing.T) {
	s, rec := newTestServer()
	ready(t, s, "r1")
	req := httptest.NewRequest("POST", respPath("r1"), io.NopCloser(&brokenReader{n: 3}))
	req.ContentLength = -1
	w := httptest.NewRecorder()
	s.Handler().ServeHTTP(w, req)
	wantJSON(t, w, 400, "")
	if got := rec.list(); len(got) != 0 {
		t.Fatalf("callbacks %q", got)
	}
	// Still delivered: /next gives it again, and a result is accepted.
	if w := do(t, s, "GET", nextPath, nil, ""); w.Header().Get(HeaderRequestID) != "r1" {
		t.Fatalf("next gave %v", w.Header())
	}
	wantJSON(t, do(t, s, "POST", respPath("r1"), nil, "ok"), 202, accepted)
}

func TestInvocationError(t *testing.T) {
	doc := `{"errorMessage":"boom","errorType":"MyError","stackTrace":[]}`
	for _, tc := range []struct {
		name, hdr, body, want string
	}{
		{"header-and-json", "Custom.Type", doc, "error r1 Custom.Type " + doc},
		{"type-from-json", "", doc, "error r1 MyError " + doc},
		{"untyped-json", "", `{"errorMessage":"m"}`, `error r1  {"errorMessage":"m"}`},
		{"not-json", "", "plain text", `error r1 Runtime.Unknown {"errorMessage":"plain text","errorType":"Runtime.Unknown"}`},
		{"not-json-typed", "T", "a\x00\xff", `error r1 T {"errorMessage":"a\u0000\ufffd","errorType":"T"}`},
		{"empty", "", "", `error r1 Runtime.Unknown {"errorMessage":"","errorType":"Runtime.Unknown"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, rec := newTestServer()
			ready(t, s, "r1")
			hdr := map[string]string{}
			if tc.hdr != "" {
				hdr[HeaderErrorType] = tc.hdr
			}
			wantJSON(t, do(t, s, "POST", errPath("r1"), hdr, tc.body), 202, accepted)
			if got := rec.list(); len(got) != 1 || got[0] != tc.want {
				t.Fatalf("callbacks %q, want %q", got, tc.want)
			}
		})
	}
}

func TestErrorTooLarge(t *testing.T) {
	s, rec := newTestServer()
	ready(t, s, "r1")
	big := strings.Repeat("a", MaxPayload+1)
	wantJSON(t, do(t, s, "POST", errPath("r1"), nil, big), 413, tooLargeBody)
	if got := rec.list(); len(got) != 1 || got[0] != "error r1 Function.ResponseSizeTooLarge "+tooLargeDoc {
		t.Fatalf("callbacks %q", got)
	}
}

func TestWrappedErrorStaysBounded(t *testing.T) {
	s, _ := newTestServer()
	ready(t, s, "r1")
	var docLen int
	s.cb.OnError = func(id, typ string, body []byte) { docLen = len(body) }
	wantJSON(t, do(t, s, "POST", errPath("r1"), map[string]string{HeaderErrorType: strings.Repeat("t", 5000)},
		strings.Repeat("\x01", MaxPayload)), 202, accepted)
	if docLen == 0 || docLen > MaxPayload {
		t.Fatalf("wrapped document of %d bytes", docLen)
	}
}

func TestInitError(t *testing.T) {
	s, rec := newTestServer()
	doc := `{"errorMessage":"cannot load","errorType":"Runtime.ImportModuleError"}`
	wantJSON(t, do(t, s, "POST", initPath, nil, doc), 202, accepted)
	wantJSON(t, do(t, s, "POST", initPath, nil, doc), 403, "")
	wantJSON(t, do(t, s, "GET", nextPath, nil, ""), 403, "")
	if got := rec.list(); len(got) != 1 || got[0] != "init Runtime.ImportModuleError "+doc {
		t.Fatalf("callbacks %q", got)
	}
	if rec.firstCount() != 0 {
		t.Fatal("OnFirstNext after an init error")
	}

	s, rec = newTestServer()
	wantJSON(t, do(t, s, "POST", initPath, map[string]string{HeaderErrorType: "Runtime.Bad"}, "not json"), 202, accepted)
	if got := rec.list(); len(got) != 1 || got[0] != `init Runtime.Bad {"errorMessage":"not json","errorType":"Runtime.Bad"}` {
		t.Fatalf("callbacks %q", got)
	}

	s, rec = newTestServer()
	ready(t, s, "r1")
	wantJSON(t, do(t, s, "POST", initPath, nil, doc), 403, "")
	if got := rec.list(); len(got) != 0 {
		t.Fatalf("callbacks %q", got)
	}
}

func TestInitErrorTooLarge(t *testing.T) {
	s, rec := newTestServer()
	wantJSON(t, do(t, s, "POST", initPath, nil, strings.Repeat("a", MaxPayload+1)), 413, tooLargeBody)
	want := `init Runtime.Unknown {"errorMessage":"Init error payload size exceeded maximum allowed payload size (6291556 bytes).","errorType":"Runtime.Unknown"}`
	if got := rec.list(); len(got) != 1 || got[0] != want {
		t.Fatalf("callbacks %q", got)
	}
}

func TestRouting(t *testing.T) {
	s, _ := newTestServer()
	for _, tc := range []struct {
		method, path string
		status       int
		errType      string
	}{
		{"GET", "/2018-06-01/runtime/restore/next", 403, "Runtime.NotSupported"},
		{"POST", "/2018-06-01/runtime/restore/error", 403, "Runtime.NotSupported"},
		{"POST", "/2020-01-01/extension/register", 403, "Extension.NotSupported"},
		{"GET", "/2020-01-01/extension/event/next", 403, "Extension.NotSupported"},
		{"PUT", "/2022-07-01/telemetry", 403, "Extension.NotSupported"},
		{"GET", "/", 404, "NotFound"},
		{"GET", "/2018-06-01/runtime/invocation/", 404, "NotFound"},
		{"POST", "/2018-06-01/runtime/invocation//response", 404, "NotFound"},
		{"POST", "/2018-06-01/runtime/invocation/r1/other", 404, "NotFound"},
		{"GET", "/2018-06-01/runtime/invocation/next/", 404, "NotFound"},
		{"POST", nextPath, 405, "MethodNotAllowed"},
		{"GET", respPath("r1"), 405, "MethodNotAllowed"},
		{"DELETE", errPath("r1"), 405, "MethodNotAllowed"},
		{"GET", initPath, 405, "MethodNotAllowed"},
		{"POST", "/2018-06-01/runtime/restore/next", 405, "MethodNotAllowed"},
	} {
		w := do(t, s, tc.method, tc.path, nil, "")
		wantJSON(t, w, tc.status, "")
		var d errorDoc
		if err := json.Unmarshal(w.Body.Bytes(), &d); err != nil || d.ErrorType != tc.errType || d.ErrorMessage == "" {
			t.Errorf("%s %s: %s (%v)", tc.method, tc.path, w.Body, err)
		}
		if tc.status == 405 && w.Header().Get("Allow") == "" {
			t.Errorf("%s %s: no Allow header", tc.method, tc.path)
		}
	}
}

func TestBoundErrorType(t *testing.T) {
	for _, in := range []string{
		strings.Repeat("\xff", 1000),
		strings.Repeat("a\xff", 1000),
		strings.Repeat("é", 1000),
		strings.Repeat("a", maxErrorType-1) + "é",
	} {
		out := boundErrorType(in)
		if len(out) > maxErrorType || !utf8.ValidString(out) || out == "" {
			t.Errorf("boundErrorType(%.20q...) = %d bytes, valid %v", in, len(out), utf8.ValidString(out))
		}
	}
	if got := boundErrorType("Function.Custom"); got != "Function.Custom" {
		t.Errorf("short type changed to %q", got)
	}
}
