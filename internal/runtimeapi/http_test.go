package runtimeapi

import (
	"bytes"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// TestOverHTTP runs the real net/http server: chunked bodies, trailers and
// a long-poll over a connection.
func TestOverHTTP(t *testing.T) {
	s, rec := newTestServer()
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	c := ts.Client()

	next := func() string {
		t.Helper()
		resp, err := c.Get(ts.URL + nextPath)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			t.Fatal(err)
		}
		return resp.Header.Get(HeaderRequestID)
	}
	post := func(id string, body io.Reader, trailer http.Header) int {
		t.Helper()
		req, err := http.NewRequest("POST", ts.URL+respPath(id), body)
		if err != nil {
			t.Fatal(err)
		}
		req.Trailer = trailer
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode
	}

	// aws-lambda-go declares both trailers on every response, empty
	// unless the handler's reader failed: a success.
	s.Deliver(testEvent("r1"))
	if id := next(); id != "r1" {
		t.Fatalf("next gave %q", id)
	}
	tr := http.Header{HeaderErrorType: nil, HeaderErrorBody: nil}
	if st := post("r1", io.MultiReader(strings.NewReader("part1,"), strings.NewReader("part2")), tr); st != 202 {
		t.Fatalf("status %d", st)
	}

	// Mid-stream failure: trailers filled in once the body is written.
	s.Deliver(testEvent("r2"))
	if id := next(); id != "r2" {
		t.Fatalf("next gave %q", id)
	}
	doc := `{"errorMessage":"stream broke","errorType":"StreamError"}`
	tr = http.Header{HeaderErrorType: nil, HeaderErrorBody: nil}
	body := &trailerSetter{r: strings.NewReader("partial"), set: func() {
		tr.Set(HeaderErrorType, "Function.StreamError")
		tr.Set(HeaderErrorBody, base64.StdEncoding.EncodeToString([]byte(doc)))
	}}
	if st := post("r2", body, tr); st != 202 {
		t.Fatalf("status %d", st)
	}

	// Oversized chunked response over a real connection.
	s.Deliver(testEvent("r3"))
	if id := next(); id != "r3" {
		t.Fatalf("next gave %q", id)
	}
	req, err := http.NewRequest("POST", ts.URL+respPath("r3"), io.MultiReader(bytes.NewReader(make([]byte, MaxPayload)), strings.NewReader("!")))
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = -1
	if resp, err := c.Do(req); err == nil {
		// The server may close the connection before the client
		// finished writing; when the answer arrives it is a 413.
		if resp.StatusCode != 413 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		resp.Body.Close()
	}

	want := []string{
		"response r1 part1,part2",
		"error r2 Function.StreamError " + doc,
		"error r3 Function.ResponseSizeTooLarge " + tooLargeDoc,
	}
	got := rec.list()
	if len(got) != len(want) {
		t.Fatalf("callbacks %d: %.200q", len(got), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("callback %d: %.200q, want %q", i, got[i], want[i])
		}
	}
}

// trailerSetter calls set when its reader is exhausted, before reporting
// EOF, as a streaming runtime fills its trailers.
type trailerSetter struct {
	r   io.Reader
	set func()
}

func (t *trailerSetter) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if err == io.EOF && t.set != nil {
		t.set()
		t.set = nil
	}
	return n, err
}

func TestConcurrentResults(t *testing.T) {
	s, rec := newTestServer()
	ready(t, s, "r1")
	var wg sync.WaitGroup
	codes := make([]int, 8)
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i] = do(t, s, "POST", respPath("r1"), nil, strconv.Itoa(i)).Code
		}()
	}
	wg.Wait()
	ok := 0
	for _, c := range codes {
		switch c {
		case 202:
			ok++
		case 400:
		default:
			t.Fatalf("status %d", c)
		}
	}
	if ok != 1 || len(rec.list()) != 1 {
		t.Fatalf("%d accepted, %d callbacks", ok, len(rec.list()))
	}
}
