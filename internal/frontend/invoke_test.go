package frontend

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"kindling/internal/config"
	"kindling/internal/errdefs"
	"kindling/internal/invoke"
)

func TestInvoke(t *testing.T) {
	e := newEnv(t)
	c := e.lambda()
	ctx := context.Background()
	if _, err := c.CreateFunction(ctx, createInput(t, "echo")); err != nil {
		t.Fatal(err)
	}
	e.invoker.res = invoke.Result{Payload: []byte(`{"ok":true}`), LogTail: []byte("START RequestId...\nEND\n")}
	cc := base64.StdEncoding.EncodeToString([]byte(`{"custom":{"k":"v"}}`))
	out, err := c.Invoke(ctx, &lambda.InvokeInput{
		FunctionName: aws.String("echo"), Payload: []byte(`{"a":1}`),
		LogType: types.LogTypeTail, ClientContext: aws.String(cc),
	})
	if err != nil {
		t.Fatal(err)
	}
	if out.StatusCode != 200 || string(out.Payload) != `{"ok":true}` || aws.ToString(out.ExecutedVersion) != "$LATEST" ||
		out.FunctionError != nil {
		t.Errorf("invoke output: %+v", out)
	}
	if tail, _ := base64.StdEncoding.DecodeString(aws.ToString(out.LogResult)); string(tail) != "START RequestId...\nEND\n" {
		t.Errorf("LogResult %q", aws.ToString(out.LogResult))
	}
	req := e.invoker.last()
	if string(req.Payload) != `{"a":1}` || req.ClientContext != `{"custom":{"k":"v"}}` || !req.Tail ||
		req.Function.Name != "echo" || len(req.RequestID) != 36 {
		t.Errorf("invoke request: %+v", req)
	}

	// A function error comes back as a 200 with X-Amz-Function-Error.
	e.invoker.res = invoke.Result{Payload: []byte(`{"errorMessage":"boom"}`), FunctionError: "Unhandled", ExecutedVersion: "$LATEST"}
	out, err = c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("arn:aws:lambda:us-east-1:123456789012:function:echo")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(out.FunctionError) != "Unhandled" || out.LogResult != nil || string(out.Payload) != `{"errorMessage":"boom"}` {
		t.Errorf("function error: %+v", out)
	}
	n := len(e.invoker.reqs)

	// DryRun validates and answers 204 without invoking.
	out, err = c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("echo"), InvocationType: types.InvocationTypeDryRun})
	if err != nil || out.StatusCode != 204 {
		t.Errorf("dry run: %v %+v", err, out)
	}
	_, err = c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("missing"), InvocationType: types.InvocationTypeDryRun})
	var nf *types.ResourceNotFoundException
	if !errors.As(err, &nf) {
		t.Errorf("dry run of a missing function: %v", err)
	}
	// Event invocations are queued (async_test.go has the details).
	out, err = c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("echo"), InvocationType: types.InvocationTypeEvent})
	if err != nil || out.StatusCode != 202 {
		t.Errorf("event: %v %+v", err, out)
	}
	_, err = c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("echo"), Qualifier: aws.String("3")})
	if !errors.As(err, &nf) {
		t.Errorf("version qualifier: %v", err)
	}
	_, err = c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("arn:aws:lambda:us-east-1:999999999999:function:echo")})
	if code, msg, status := apiError(t, err); code != "AccessDeniedException" || status != 403 || !strings.Contains(msg, "lambda:InvokeFunction") {
		t.Errorf("other account: %s %s %d", code, msg, status)
	}
	// Too large: 413 before anything else.
	_, err = c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("echo"), Payload: bytes.Repeat([]byte("a"), maxInvokePayload+1)})
	if code, msg, status := apiError(t, err); code != "RequestEntityTooLargeException" || status != 413 ||
		msg != "Request must be smaller than 6291456 bytes for the InvokeFunction operation" {
		t.Errorf("too large: %s %s %d", code, msg, status)
	}
	// Exactly the limit is fine (a JSON string of that size).
	atLimit := bytes.Repeat([]byte("a"), maxInvokePayload)
	atLimit[0], atLimit[len(atLimit)-1] = '"', '"'
	if _, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("echo"), Payload: atLimit}); err != nil {
		t.Errorf("payload at the limit: %v", err)
	}
	if len(e.invoker.reqs) != n+1 {
		t.Errorf("invoker called %d times, want once more", len(e.invoker.reqs)-n)
	}

	// Throttles and unavailability from the data plane.
	e.invoker.err = fmt.Errorf("%w: no room", errdefs.ErrThrottled)
	_, err = c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("echo")})
	var tm *types.TooManyRequestsException
	if !errors.As(err, &tm) || tm.Reason != types.ThrottleReasonConcurrentInvocationLimitExceeded {
		t.Errorf("throttled: %v", err)
	}
	e.invoker.err = fmt.Errorf("worker 10.0.0.7 is gone: %w", errdefs.ErrUnavailable)
	_, err = c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("echo")})
	if code, msg, status := apiError(t, err); code != "ServiceException" || status != 503 || strings.Contains(msg, "10.0.0.7") {
		t.Errorf("unavailable: %s %q %d", code, msg, status)
	}
	e.invoker.err = errors.New("secret internal detail")
	_, err = c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("echo")})
	var se *types.ServiceException
	if !errors.As(err, &se) || strings.Contains(se.ErrorMessage(), "secret") {
		t.Errorf("internal: %v", err)
	}
}

func TestInvokeNotActive(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	fn := &config.Function{
		Account: testAccount, Region: testRegion, Name: "pending", Runtime: "provided.al2023", Handler: "bootstrap",
		Role: testRole, MemoryMB: 128, TimeoutSec: 3, EphemeralMB: 512, PackageType: "Zip",
	}
	if err := fn.Apply(config.Event{Kind: config.EvCreate}); err != nil {
		t.Fatal(err)
	}
	if err := e.functions.Create(ctx, fn); err != nil {
		t.Fatal(err)
	}
	c := e.lambda()
	_, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("pending")})
	var rc *types.ResourceConflictException
	if !errors.As(err, &rc) || rc.ErrorMessage() != "The operation cannot be performed at this time. The function is currently in the following state: Pending" {
		t.Errorf("pending invoke: %v", err)
	}
	_, err = c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("pending"), Timeout: aws.Int32(4)})
	if !errors.As(err, &rc) {
		t.Errorf("pending update: %v", err)
	}
	// The active waiter keeps waiting on Pending; become Active and it returns.
	if _, err := e.functions.Transition(ctx, testAccount, "pending", config.Event{Kind: config.EvReady}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("pending")}); err != nil {
		t.Errorf("after ready: %v", err)
	}
}

func TestInvokeHeaders(t *testing.T) {
	e := newEnv(t)
	if _, err := e.lambda().CreateFunction(context.Background(), createInput(t, "h")); err != nil {
		t.Fatal(err)
	}
	const path = "/2015-03-31/functions/h/invocations"
	cases := []struct {
		name   string
		hdr    map[string]string
		status int
		typ    string
	}{
		{"bad invocation type", map[string]string{"X-Amz-Invocation-Type": "Later"}, 400, "ValidationException"},
		{"bad log type", map[string]string{"X-Amz-Log-Type": "All"}, 400, "ValidationException"},
		{"client context not base64", map[string]string{"X-Amz-Client-Context": "%%%"}, 400, "InvalidRequestContentException"},
		{"client context not JSON", map[string]string{"X-Amz-Client-Context": base64.StdEncoding.EncodeToString([]byte("nope"))}, 400, "InvalidRequestContentException"},
		{"client context too long", map[string]string{"X-Amz-Client-Context": strings.Repeat("A", 3584)}, 400, "InvalidParameterValueException"},
		{"trace id", map[string]string{"X-Amzn-Trace-Id": "Root=1-abc"}, 200, ""},
	}
	for _, tc := range cases {
		rec := e.do(http.MethodPost, path, []byte("{}"), tc.hdr)
		if rec.Code != tc.status || rec.Header().Get("X-Amzn-ErrorType") != tc.typ {
			t.Errorf("%s: %d %s %s", tc.name, rec.Code, rec.Header().Get("X-Amzn-ErrorType"), rec.Body)
		}
		if rec.Header().Get("X-Amzn-RequestId") == "" {
			t.Errorf("%s: no request id", tc.name)
		}
	}
	if got := e.invoker.last().TraceID; got != "Root=1-abc" {
		t.Errorf("trace id %q", got)
	}
	// A chunked body over the limit.
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+path, &onlyReader{bytes.NewReader(make([]byte, maxInvokePayload+10))})
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 413 {
		t.Errorf("chunked too large: %d", resp.StatusCode)
	}
}

// onlyReader hides Len so that the client sends a chunked body.
type onlyReader struct{ r *bytes.Reader }

func (o *onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

// BenchmarkInvoke measures the frontend's share of a warm invoke: routing,
// body read, the config lookup and the response, with authentication
// bypassed and an invoker that answers at once.
func BenchmarkInvoke(b *testing.B) {
	e := newEnv(b)
	if _, err := e.lambda().CreateFunction(context.Background(), createInput(b, "bench")); err != nil {
		b.Fatal(err)
	}
	e.invoker.res = invoke.Result{Payload: []byte(`{"ok":true}`)}
	payload := []byte(`{"key":"value"}`)
	b.ReportAllocs()
	for b.Loop() {
		e.invoker.reqs = e.invoker.reqs[:0]
		rec := e.do(http.MethodPost, "/2015-03-31/functions/bench/invocations", payload, nil)
		if rec.Code != 200 {
			b.Fatal(rec.Code)
		}
	}
}
