package e2e

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// TestRuntimeAPI drives testdata/functions/rawruntime, a runtime that speaks
// the Runtime API with plain HTTP: the /next headers, chunked responses,
// error trailers, error headers and answers for unknown invocations.
func TestRuntimeAPI(t *testing.T) {
	requireServer(t)
	t.Parallel()
	const name = "e2e-rawruntime"
	createFunction(t, name, fnSpec{code: "rawruntime", runtime: types.RuntimeProvidedal2023, timeout: 5})

	t.Run("next headers", func(t *testing.T) {
		before := time.Now()
		inv := invoke(t, name, map[string]any{"mode": "headers"})
		var r struct {
			Headers map[string]string `json:"headers"`
			Now     int64             `json:"now"`
		}
		inv.decode(t, &r)
		h := r.Headers
		if h["Lambda-Runtime-Aws-Request-Id"] != inv.requestID {
			t.Errorf("Lambda-Runtime-Aws-Request-Id %q, invoke's x-amzn-RequestId %q", h["Lambda-Runtime-Aws-Request-Id"], inv.requestID)
		}
		if h["Lambda-Runtime-Invoked-Function-Arn"] != functionARN(name) {
			t.Errorf("Lambda-Runtime-Invoked-Function-Arn %q", h["Lambda-Runtime-Invoked-Function-Arn"])
		}
		if !strings.HasPrefix(h["Lambda-Runtime-Trace-Id"], "Root=1-") {
			t.Errorf("Lambda-Runtime-Trace-Id %q, want an X-Ray trace header (Root=1-...)", h["Lambda-Runtime-Trace-Id"])
		}
		dl, err := strconv.ParseInt(h["Lambda-Runtime-Deadline-Ms"], 10, 64)
		if err != nil {
			t.Errorf("Lambda-Runtime-Deadline-Ms %q: %v", h["Lambda-Runtime-Deadline-Ms"], err)
		} else if left := dl - r.Now; left <= 0 || left > 5000 || dl < before.UnixMilli() {
			t.Errorf("deadline %d ms after the function's clock, want in (0, 5000] for Timeout 5", left)
		}
		for k := range h {
			if strings.Contains(strings.ToLower(k), "cognito") || strings.Contains(strings.ToLower(k), "client-context") {
				t.Errorf("%s sent without a client context or identity", k)
			}
		}
	})

	t.Run("chunked response", func(t *testing.T) {
		inv := invoke(t, name, map[string]any{"mode": "chunked"})
		if inv.out.FunctionError != nil || string(inv.payload()) != `{"part":1,"more":"x"}` {
			t.Errorf("chunked response: error %q payload %s", aws.ToString(inv.out.FunctionError), inv.payload())
		}
	})

	t.Run("error trailers", func(t *testing.T) {
		inv := invoke(t, name, map[string]any{"mode": "trailer-error"})
		e := inv.fnError(t)
		if e.Type != "Custom.StreamFailure" || e.Message != "failed mid-stream" {
			t.Errorf("error trailers: %+v, want the trailer's document", e)
		}
	})

	t.Run("error with type header", func(t *testing.T) {
		inv := invoke(t, name, map[string]any{"mode": "error-header"})
		e := inv.fnError(t)
		if e.Type != "Custom.HeaderType" || e.Message != "reported with a header" {
			t.Errorf("error: %+v", e)
		}
	})

	t.Run("unknown invocation id", func(t *testing.T) {
		inv := invoke(t, name, map[string]any{"mode": "unknown-id"})
		var r struct {
			ResponseStatus int `json:"responseStatus"`
			ErrorStatus    int `json:"errorStatus"`
		}
		inv.decode(t, &r)
		if r.ResponseStatus/100 != 4 || r.ErrorStatus/100 != 4 {
			t.Errorf("POSTs for an unknown request id got %d and %d, want 4xx", r.ResponseStatus, r.ErrorStatus)
		}
	})

	// The runtime is still in its loop: the same process served all of
	// the above (no exits).
	inv := invoke(t, name, map[string]any{"mode": "headers"})
	if r := parseReport(t, inv.logs); r.hasInit {
		t.Errorf("the raw runtime was restarted along the way: %q", r.line)
	}
}
