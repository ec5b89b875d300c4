package runtimeapi

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

const (
	restoreNextPath  = "/2018-06-01/runtime/restore/next"
	restoreErrorPath = "/2018-06-01/runtime/restore/error"
	notSupported     = `{"errorMessage":"SnapStart restore hooks are not supported in this environment.","errorType":"Runtime.NotSupported"}`
)

// stateError is the document of a 403 InvalidStateTransition.
func stateError(from, to string) string {
	return `{"errorMessage":"State transition from ` + from + ` to ` + to + ` failed for runtime.","errorType":"InvalidStateTransition"}`
}

// snapRecorded extends recorded with the snapshot callbacks.
type snapRecorded struct {
	*recorded
	// checkpoints receives each OnCheckpoint's hooks argument.
	checkpoints chan bool
}

func newSnapshotServer() (*Server, *snapRecorded) {
	rec := &recorded{firstNext: make(chan struct{})}
	sr := &snapRecorded{recorded: rec, checkpoints: make(chan bool, 4)}
	cb := Callbacks{
		OnFirstNext: func() {
			rec.mu.Lock()
			defer rec.mu.Unlock()
			rec.first++
			if rec.first == 1 {
				close(rec.firstNext)
			}
		},
		OnInitError: func(typ string, body []byte) { rec.add("init " + typ + " " + string(body)) },
		OnResponse:  func(id string, body []byte) { rec.add("response " + id + " " + string(body)) },
		OnError:     func(id, typ string, body []byte) { rec.add("error " + id + " " + typ + " " + string(body)) },
		OnCheckpoint: func(hooks bool) {
			sr.checkpoints <- hooks
		},
		OnRestoreError: func(typ string, body []byte) { rec.add("restore " + typ + " " + string(body)) },
	}
	return New(cb), sr
}

// async serves one request on its own goroutine.
func async(ctx context.Context, t *testing.T, s *Server, method, path string) <-chan *httptest.ResponseRecorder {
	t.Helper()
	got := make(chan *httptest.ResponseRecorder, 1)
	req := httptest.NewRequest(method, path, nil).WithContext(ctx)
	go func() {
		w := httptest.NewRecorder()
		s.Handler().ServeHTTP(w, req)
		got <- w
	}()
	return got
}

func (sr *snapRecorded) checkpoint(t *testing.T) bool {
	t.Helper()
	select {
	case hooks := <-sr.checkpoints:
		return hooks
	case <-time.After(10 * time.Second):
		t.Fatal("no OnCheckpoint")
		return false
	}
}

func pending(t *testing.T, got <-chan *httptest.ResponseRecorder) {
	t.Helper()
	select {
	case w := <-got:
		t.Fatalf("answered %d %s while it should block", w.Code, w.Body)
	case <-time.After(50 * time.Millisecond):
	}
}

func answer(t *testing.T, got <-chan *httptest.ResponseRecorder) *httptest.ResponseRecorder {
	t.Helper()
	select {
	case w := <-got:
		return w
	case <-time.After(10 * time.Second):
		t.Fatal("no answer")
		return nil
	}
}

func TestRestoreNotSupported(t *testing.T) {
	s, rec := newTestServer()
	wantJSON(t, do(t, s, "GET", restoreNextPath, nil, ""), 403, notSupported)
	wantJSON(t, do(t, s, "POST", restoreErrorPath, nil, "{}"), 403, notSupported)
	ready(t, s, "r1")
	wantJSON(t, do(t, s, "GET", restoreNextPath, nil, ""), 403, notSupported)
	wantJSON(t, do(t, s, "POST", restoreErrorPath, nil, "{}"), 403, notSupported)
	if s.Restored() {
		t.Fatal("Restored outside snapshot mode")
	}
	if got := rec.list(); len(got) != 0 {
		t.Fatalf("callbacks %q", got)
	}
}

func TestRestoreNext(t *testing.T) {
	s, rec := newSnapshotServer()
	if s.Restored() {
		t.Fatal("Restored before the checkpoint point")
	}
	got := async(context.Background(), t, s, "GET", restoreNextPath)
	if !rec.checkpoint(t) {
		t.Fatal("OnCheckpoint(false) for restore/next")
	}
	pending(t, got)
	// While it blocks, the runtime may do nothing else.
	wantJSON(t, do(t, s, "GET", restoreNextPath, nil, ""), 403, stateError("RestoreReady", "RestoreReady"))
	wantJSON(t, do(t, s, "POST", restoreErrorPath, nil, "{}"), 403, stateError("RestoreReady", "RestoreError"))
	wantJSON(t, do(t, s, "POST", initPath, nil, "{}"), 403, stateError("RestoreReady", "InitError"))
	wantJSON(t, do(t, s, "GET", nextPath, nil, ""), 403, stateError("RestoreReady", "Ready"))
	wantJSON(t, do(t, s, "POST", respPath("r1"), nil, "x"), 403, stateError("RestoreReady", "InvocationResponse"))

	if !s.Restored() {
		t.Fatal("Restored refused")
	}
	w := answer(t, got)
	if w.Code != 200 || w.Body.Len() != 0 {
		t.Fatalf("restore/next: %d %q", w.Code, w.Body)
	}
	if s.Restored() {
		t.Fatal("Restored twice")
	}
	if rec.firstCount() != 0 {
		t.Fatal("OnFirstNext before the runtime's /next")
	}
	// After-restore hooks ran; the runtime asks for its first event.
	wantJSON(t, do(t, s, "GET", restoreNextPath, nil, ""), 403, stateError("Restoring", "RestoreReady"))
	wantJSON(t, do(t, s, "POST", initPath, nil, "{}"), 403, stateError("Restoring", "InitError"))
	ready(t, s, "r1")
	if rec.firstCount() != 1 {
		t.Fatalf("OnFirstNext called %d times", rec.firstCount())
	}
	wantJSON(t, do(t, s, "POST", respPath("r1"), nil, "ok"), 202, accepted)
	wantJSON(t, do(t, s, "GET", restoreNextPath, nil, ""), 403, stateError("Ready", "RestoreReady"))
	wantJSON(t, do(t, s, "POST", restoreErrorPath, nil, "{}"), 403, stateError("Ready", "RestoreError"))
	if got := rec.list(); len(got) != 1 || got[0] != "response r1 ok" {
		t.Fatalf("callbacks %q", got)
	}
	select {
	case h := <-rec.checkpoints:
		t.Fatalf("second OnCheckpoint(%v)", h)
	default:
	}
}

// TestRestoreNextGone: the runtime's restore/next connection closes while
// it blocks; the restore still moves the runtime on.
func TestRestoreNextGone(t *testing.T) {
	s, rec := newSnapshotServer()
	ctx, cancel := context.WithCancel(context.Background())
	got := async(ctx, t, s, "GET", restoreNextPath)
	rec.checkpoint(t)
	cancel()
	answer(t, got)
	if !s.Restored() {
		t.Fatal("Restored refused")
	}
	ready(t, s, "r1")
	if rec.firstCount() != 1 {
		t.Fatalf("OnFirstNext called %d times", rec.firstCount())
	}
}

// TestCheckpointAtNext: a runtime that never calls restore/next is
// checkpointed at its first /next, which stays pending across the restore
// and then gets the first event.
func TestCheckpointAtNext(t *testing.T) {
	s, rec := newSnapshotServer()
	got := async(context.Background(), t, s, "GET", nextPath)
	if rec.checkpoint(t) {
		t.Fatal("OnCheckpoint(true) for /next")
	}
	if rec.firstCount() != 0 {
		t.Fatal("OnFirstNext at the checkpoint")
	}
	// Even an event does not leave before the restore.
	s.Deliver(testEvent("r1"))
	pending(t, got)
	second := async(context.Background(), t, s, "GET", nextPath)
	pending(t, second)
	wantJSON(t, do(t, s, "GET", restoreNextPath, nil, ""), 403, stateError("Ready", "RestoreReady"))
	wantJSON(t, do(t, s, "POST", restoreErrorPath, nil, "{}"), 403, stateError("Ready", "RestoreError"))
	wantJSON(t, do(t, s, "POST", initPath, nil, "{}"), 403, stateError("Ready", "InitError"))
	wantJSON(t, do(t, s, "POST", respPath("r1"), nil, "x"), 400, invalidID)

	if !s.Restored() {
		t.Fatal("Restored refused")
	}
	// OnFirstNext was called by Restored itself.
	if rec.firstCount() != 1 {
		t.Fatalf("OnFirstNext called %d times", rec.firstCount())
	}
	for _, c := range []<-chan *httptest.ResponseRecorder{got, second} {
		if w := answer(t, c); w.Code != 200 || w.Header().Get(HeaderRequestID) != "r1" {
			t.Fatalf("next: %d %v", w.Code, w.Header())
		}
	}
	if s.Restored() {
		t.Fatal("Restored twice")
	}
	wantJSON(t, do(t, s, "POST", respPath("r1"), nil, "ok"), 202, accepted)
	if rec.firstCount() != 1 {
		t.Fatalf("OnFirstNext called %d times", rec.firstCount())
	}
}

func TestRestoreError(t *testing.T) {
	doc := `{"errorMessage":"hook failed","errorType":"MyHookError","stackTrace":[]}`
	for _, tc := range []struct {
		name, hdr, body, want string
		status                int
	}{
		{"typed", "Runtime.BeforeCheckpointError", doc, "restore Runtime.BeforeCheckpointError " + doc, 202},
		{"default-type", "", doc, "restore Runtime.AfterRestoreError " + doc, 202},
		{"not-json", "", "boom", `restore Runtime.AfterRestoreError {"errorMessage":"boom","errorType":"Runtime.AfterRestoreError"}`, 202},
		{"too-large", "", strings.Repeat("a", MaxPayload+1),
			`restore Runtime.AfterRestoreError {"errorMessage":"Restore error payload size exceeded maximum allowed payload size (6291556 bytes).","errorType":"Runtime.AfterRestoreError"}`, 413},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, rec := newSnapshotServer()
			wantJSON(t, do(t, s, "POST", restoreErrorPath, nil, "{}"), 403, stateError("Initialising", "RestoreError"))
			got := async(context.Background(), t, s, "GET", restoreNextPath)
			rec.checkpoint(t)
			s.Restored()
			answer(t, got)
			hdr := map[string]string{}
			if tc.hdr != "" {
				hdr[HeaderErrorType] = tc.hdr
			}
			w := do(t, s, "POST", restoreErrorPath, hdr, tc.body)
			if tc.status == 202 {
				wantJSON(t, w, 202, accepted)
			} else {
				wantJSON(t, w, tc.status, tooLargeBody)
			}
			if got := rec.list(); len(got) != 1 || got[0] != tc.want {
				t.Fatalf("callbacks %q, want %q", got, tc.want)
			}
			// Terminal.
			wantJSON(t, do(t, s, "POST", restoreErrorPath, nil, "{}"), 403, stateError("RestoreError", "RestoreError"))
			wantJSON(t, do(t, s, "GET", nextPath, nil, ""), 403, stateError("RestoreError", "Ready"))
			wantJSON(t, do(t, s, "POST", initPath, nil, "{}"), 403, stateError("RestoreError", "InitError"))
			wantJSON(t, do(t, s, "GET", restoreNextPath, nil, ""), 403, stateError("RestoreError", "RestoreReady"))
			if rec.firstCount() != 0 || len(rec.list()) != 1 {
				t.Fatalf("callbacks after restore/error: first %d, %q", rec.firstCount(), rec.list())
			}
		})
	}
}

// TestSnapshotInitError: an init that fails before the checkpoint point is
// an ordinary init error, and no checkpoint follows.
func TestSnapshotInitError(t *testing.T) {
	s, rec := newSnapshotServer()
	doc := `{"errorMessage":"before checkpoint hook failed","errorType":"Runtime.BeforeCheckpointError"}`
	wantJSON(t, do(t, s, "POST", initPath, map[string]string{HeaderErrorType: "Runtime.BeforeCheckpointError"}, doc), 202, accepted)
	wantJSON(t, do(t, s, "GET", restoreNextPath, nil, ""), 403, stateError("InitError", "RestoreReady"))
	wantJSON(t, do(t, s, "GET", nextPath, nil, ""), 403, stateError("InitError", "Ready"))
	if s.Restored() {
		t.Fatal("Restored without a checkpoint")
	}
	if got := rec.list(); len(got) != 1 || got[0] != "init Runtime.BeforeCheckpointError "+doc {
		t.Fatalf("callbacks %q", got)
	}
	select {
	case h := <-rec.checkpoints:
		t.Fatalf("OnCheckpoint(%v)", h)
	default:
	}
}

func TestSnapshotRouting(t *testing.T) {
	s, _ := newSnapshotServer()
	for _, tc := range []struct{ method, path string }{
		{"POST", restoreNextPath},
		{"GET", restoreErrorPath},
		{"PUT", restoreErrorPath},
	} {
		w := do(t, s, tc.method, tc.path, nil, "")
		wantJSON(t, w, 405, "")
		var d errorDoc
		if err := json.Unmarshal(w.Body.Bytes(), &d); err != nil || d.ErrorType != "MethodNotAllowed" || w.Header().Get("Allow") == "" {
			t.Errorf("%s %s: %s (%v)", tc.method, tc.path, w.Body, err)
		}
	}
}
