package e2e

// Asynchronous invocation end to end: 202 and the queue, retries with
// Lambda's waits (scaled by the server's --time-scale), destinations with
// Lambda's invocation record, dead-letter queues, the event invoke config
// API, and no accepted event lost to a kill -9 of the server.

import (
	"encoding/json"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"kindling/internal/cli"
)

// invocationRecord is Lambda's destination record.
type invocationRecord struct {
	Version        string `json:"version"`
	Timestamp      string `json:"timestamp"`
	RequestContext struct {
		RequestID              string `json:"requestId"`
		FunctionArn            string `json:"functionArn"`
		Condition              string `json:"condition"`
		ApproximateInvokeCount int    `json:"approximateInvokeCount"`
	} `json:"requestContext"`
	RequestPayload  json.RawMessage `json:"requestPayload"`
	ResponseContext *struct {
		StatusCode      int    `json:"statusCode"`
		ExecutedVersion string `json:"executedVersion"`
		FunctionError   string `json:"functionError"`
	} `json:"responseContext"`
	ResponsePayload json.RawMessage `json:"responsePayload"`
}

// invokeEvent invokes fn asynchronously and returns the request id of the
// 202.
func invokeEvent(t *testing.T, c *lambda.Client, fn string, event any) string {
	t.Helper()
	payload, err := json.Marshal(event)
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.Invoke(ctx(t), &lambda.InvokeInput{FunctionName: aws.String(fn),
		InvocationType: types.InvocationTypeEvent, Payload: payload})
	if err != nil {
		t.Fatalf("Invoke (Event) %s: %s", fn, describe(err))
	}
	if out.StatusCode != 202 || len(out.Payload) != 0 {
		t.Fatalf("Invoke (Event) %s: status %d, payload %q; want 202 and no payload", fn, out.StatusCode, out.Payload)
	}
	id, _ := awsmiddleware.GetRequestIDMetadata(out.ResultMetadata)
	if id == "" {
		t.Fatal("Invoke (Event): no X-Amzn-RequestId")
	}
	return id
}

// receiveMessages reads (and deletes) n messages from a queue within
// timeout; it fails the test with what it got otherwise.
func receiveMessages(t *testing.T, s *server, url string, n int, timeout time.Duration) []sqstypes.Message {
	t.Helper()
	c := s.sqsClient()
	deadline := time.Now().Add(timeout)
	var got []sqstypes.Message
	for len(got) < n && time.Now().Before(deadline) {
		wait := min(int32(time.Until(deadline)/time.Second), 5)
		out, err := c.ReceiveMessage(ctx(t), &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 10,
			WaitTimeSeconds: max(wait, 1), VisibilityTimeout: 600, MessageAttributeNames: []string{"All"}})
		if err != nil {
			t.Fatalf("ReceiveMessage: %s", describe(err))
		}
		for _, m := range out.Messages {
			got = append(got, m)
			if _, err := c.DeleteMessage(ctx(t), &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: m.ReceiptHandle}); err != nil {
				t.Fatalf("DeleteMessage: %s", describe(err))
			}
		}
	}
	if len(got) < n {
		t.Fatalf("received %d of %d messages within %v", len(got), n, timeout)
	}
	return got
}

func receiveRecords(t *testing.T, s *server, url string, n int, timeout time.Duration) []invocationRecord {
	t.Helper()
	var recs []invocationRecord
	for _, m := range receiveMessages(t, s, url, n, timeout) {
		var r invocationRecord
		if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &r); err != nil {
			t.Fatalf("destination message is not a record: %v: %s", err, aws.ToString(m.Body))
		}
		recs = append(recs, r)
	}
	return recs
}

// putEventConfig sets fn's event invoke config.
func putEventConfig(t *testing.T, s *server, in *lambda.PutFunctionEventInvokeConfigInput) {
	t.Helper()
	if _, err := s.client().PutFunctionEventInvokeConfig(ctx(t), in); err != nil {
		t.Fatalf("PutFunctionEventInvokeConfig: %s", describe(err))
	}
}

var recordTimestamp = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`)

func TestAsyncOnSuccessRecord(t *testing.T) {
	requireServer(t)
	t.Parallel()
	name := "async-success-" + runID
	createFunction(t, name, fnSpec{})
	url, arn := createQueue(t, srv, "e2e-success-"+runID, nil)
	putEventConfig(t, srv, &lambda.PutFunctionEventInvokeConfigInput{FunctionName: aws.String(name),
		DestinationConfig: &types.DestinationConfig{OnSuccess: &types.OnSuccess{Destination: aws.String(arn)}}})
	event := map[string]any{"op": "echo", "n": 42}
	id := invokeEvent(t, srv.client(), name, event)
	r := receiveRecords(t, srv, url, 1, time.Minute)[0]
	rc := r.RequestContext
	if r.Version != "1.0" || !recordTimestamp.MatchString(r.Timestamp) || rc.RequestID != id ||
		rc.FunctionArn != functionARN(name)+":$LATEST" || rc.Condition != "Success" || rc.ApproximateInvokeCount != 1 {
		t.Errorf("record: %+v", r)
	}
	want, _ := json.Marshal(event)
	if string(r.RequestPayload) != string(want) || string(r.ResponsePayload) != string(want) {
		t.Errorf("payloads: request %s response %s, want %s", r.RequestPayload, r.ResponsePayload, want)
	}
	if r.ResponseContext == nil || r.ResponseContext.StatusCode != 200 || r.ResponseContext.ExecutedVersion != "$LATEST" ||
		r.ResponseContext.FunctionError != "" {
		t.Errorf("responseContext: %+v", r.ResponseContext)
	}
}

func TestAsyncRetriesToOnFailure(t *testing.T) {
	requireServer(t)
	t.Parallel()
	name := "async-retries-" + runID
	createFunction(t, name, fnSpec{})
	url, arn := createQueue(t, srv, "e2e-retries-"+runID, nil)
	putEventConfig(t, srv, &lambda.PutFunctionEventInvokeConfigInput{FunctionName: aws.String(name),
		MaximumRetryAttempts: aws.Int32(2),
		DestinationConfig:    &types.DestinationConfig{OnFailure: &types.OnFailure{Destination: aws.String(arn)}}})
	start := time.Now()
	id := invokeEvent(t, srv.client(), name, map[string]any{"op": "error", "message": "boom"})
	// Lambda waits 1 then 2 minutes between the attempts: 3 minutes of
	// Lambda time.
	waits := time.Duration(float64(3*time.Minute) * timeScale)
	r := receiveRecords(t, srv, url, 1, waits+time.Minute)[0]
	took := time.Since(start)
	rc := r.RequestContext
	if rc.RequestID != id || rc.Condition != "RetriesExhausted" || rc.ApproximateInvokeCount != 3 {
		t.Errorf("requestContext: %+v", rc)
	}
	if r.ResponseContext == nil || r.ResponseContext.FunctionError != "Unhandled" || r.ResponseContext.StatusCode != 200 {
		t.Errorf("responseContext: %+v", r.ResponseContext)
	}
	var doc struct{ ErrorMessage, ErrorType string }
	if err := json.Unmarshal(r.ResponsePayload, &doc); err != nil || doc.ErrorMessage != "boom" {
		t.Errorf("responsePayload %s", r.ResponsePayload)
	}
	if took < waits*9/10 {
		t.Errorf("the record came after %v; the retry waits alone are %v", took, waits)
	}
	t.Logf("three attempts and the record in %v (scaled waits %v)", took, waits)
}

func TestAsyncZeroRetries(t *testing.T) {
	requireServer(t)
	t.Parallel()
	name := "async-noretry-" + runID
	createFunction(t, name, fnSpec{})
	url, arn := createQueue(t, srv, "e2e-noretry-"+runID, nil)
	putEventConfig(t, srv, &lambda.PutFunctionEventInvokeConfigInput{FunctionName: aws.String(name),
		MaximumRetryAttempts: aws.Int32(0),
		DestinationConfig:    &types.DestinationConfig{OnFailure: &types.OnFailure{Destination: aws.String(arn)}}})
	start := time.Now()
	invokeEvent(t, srv.client(), name, map[string]any{"op": "error", "message": "once"})
	r := receiveRecords(t, srv, url, 1, time.Minute)[0]
	if r.RequestContext.Condition != "RetriesExhausted" || r.RequestContext.ApproximateInvokeCount != 1 {
		t.Errorf("requestContext: %+v", r.RequestContext)
	}
	// No retry: well under the first (scaled) 1-minute wait.
	if took := time.Since(start); took > time.Duration(float64(time.Minute)*timeScale) {
		t.Errorf("record after %v", took)
	}
}

func TestAsyncEventAgeExceeded(t *testing.T) {
	requireServer(t)
	t.Parallel()
	name := "async-age-" + runID
	createFunction(t, name, fnSpec{})
	url, arn := createQueue(t, srv, "e2e-age-"+runID, nil)
	// The first retry would run a minute after the event was queued, past
	// its maximum age of 60 s.
	putEventConfig(t, srv, &lambda.PutFunctionEventInvokeConfigInput{FunctionName: aws.String(name),
		MaximumEventAgeInSeconds: aws.Int32(60),
		DestinationConfig:        &types.DestinationConfig{OnFailure: &types.OnFailure{Destination: aws.String(arn)}}})
	invokeEvent(t, srv.client(), name, map[string]any{"op": "error", "message": "old"})
	r := receiveRecords(t, srv, url, 1, time.Minute)[0]
	if r.RequestContext.Condition != "EventAgeExceeded" || r.RequestContext.ApproximateInvokeCount != 1 {
		t.Errorf("requestContext: %+v", r.RequestContext)
	}
}

func TestAsyncDeadLetterQueue(t *testing.T) {
	requireServer(t)
	t.Parallel()
	name := "async-dlq-" + runID
	url, arn := createQueue(t, srv, "e2e-dlq-"+runID, nil)
	spec := createInput(name, fnSpec{})
	spec.DeadLetterConfig = &types.DeadLetterConfig{TargetArn: aws.String(arn)}
	c := srv.client()
	out, err := c.CreateFunction(ctx(t), spec)
	if err != nil {
		t.Fatalf("CreateFunction: %s", describe(err))
	}
	t.Cleanup(func() { c.DeleteFunction(ctx(t), &lambda.DeleteFunctionInput{FunctionName: aws.String(name)}) })
	if out.DeadLetterConfig == nil || aws.ToString(out.DeadLetterConfig.TargetArn) != arn {
		t.Errorf("DeadLetterConfig: %+v", out.DeadLetterConfig)
	}
	waitActive(t, c, name)
	putEventConfig(t, srv, &lambda.PutFunctionEventInvokeConfigInput{FunctionName: aws.String(name), MaximumRetryAttempts: aws.Int32(0)})
	event := `{"op":"error","message":"to the DLQ"}`
	out2, err := c.Invoke(ctx(t), &lambda.InvokeInput{FunctionName: aws.String(name), InvocationType: types.InvocationTypeEvent,
		Payload: []byte(event)})
	if err != nil {
		t.Fatal(describe(err))
	}
	id, _ := awsmiddleware.GetRequestIDMetadata(out2.ResultMetadata)
	m := receiveMessages(t, srv, url, 1, time.Minute)[0]
	if aws.ToString(m.Body) != event {
		t.Errorf("DLQ body %q, want the event %q", aws.ToString(m.Body), event)
	}
	attr := func(k string) string { return aws.ToString(m.MessageAttributes[k].StringValue) }
	if attr("RequestID") != id || attr("ErrorCode") != "200" || attr("ErrorMessage") != "to the DLQ" ||
		aws.ToString(m.MessageAttributes["ErrorCode"].DataType) != "Number" {
		t.Errorf("DLQ attributes: %+v", m.MessageAttributes)
	}
}

func TestAsyncFunctionDestination(t *testing.T) {
	requireServer(t)
	t.Parallel()
	first, second := "async-first-"+runID, "async-second-"+runID
	createFunction(t, first, fnSpec{})
	createFunction(t, second, fnSpec{})
	url, arn := createQueue(t, srv, "e2e-chain-"+runID, nil)
	putEventConfig(t, srv, &lambda.PutFunctionEventInvokeConfigInput{FunctionName: aws.String(first),
		DestinationConfig: &types.DestinationConfig{OnSuccess: &types.OnSuccess{Destination: aws.String(functionARN(second))}}})
	// The second function gets the first's record as its event; behave
	// fails on it (no "op"), so its own record goes to the queue.
	putEventConfig(t, srv, &lambda.PutFunctionEventInvokeConfigInput{FunctionName: aws.String(second), MaximumRetryAttempts: aws.Int32(0),
		DestinationConfig: &types.DestinationConfig{OnFailure: &types.OnFailure{Destination: aws.String(arn)}}})
	id := invokeEvent(t, srv.client(), first, map[string]any{"op": "noop"})
	r := receiveRecords(t, srv, url, 1, time.Minute)[0]
	var inner invocationRecord
	if err := json.Unmarshal(r.RequestPayload, &inner); err != nil {
		t.Fatalf("the second function's event is not a record: %s", r.RequestPayload)
	}
	if r.RequestContext.FunctionArn != functionARN(second)+":$LATEST" || inner.RequestContext.RequestID != id ||
		inner.RequestContext.Condition != "Success" || inner.RequestContext.FunctionArn != functionARN(first)+":$LATEST" {
		t.Errorf("outer %+v, inner %+v", r.RequestContext, inner.RequestContext)
	}
}

func TestAsyncAPI(t *testing.T) {
	requireServer(t)
	t.Parallel()
	name := "async-api-" + runID
	createFunction(t, name, fnSpec{})
	c := srv.client()
	_, err := c.Invoke(ctx(t), &lambda.InvokeInput{FunctionName: aws.String(name), InvocationType: types.InvocationTypeEvent,
		Payload: []byte(`"` + strings.Repeat("x", 1048576-1) + `"`)})
	wantAPIError(t, "1 MB + 1 event", err, 413, "RequestEntityTooLargeException")
	_, err = c.Invoke(ctx(t), &lambda.InvokeInput{FunctionName: aws.String(name), InvocationType: types.InvocationTypeEvent,
		LogType: types.LogTypeTail})
	wantAPIError(t, "Event with LogType Tail", err, 400, "InvalidParameterValueException")
	_, err = c.Invoke(ctx(t), &lambda.InvokeInput{FunctionName: aws.String("async-missing-" + runID), InvocationType: types.InvocationTypeEvent})
	wantAPIError(t, "Event to a missing function", err, 404, "ResourceNotFoundException")

	_, err = c.GetFunctionEventInvokeConfig(ctx(t), &lambda.GetFunctionEventInvokeConfigInput{FunctionName: aws.String(name)})
	wantAPIError(t, "Get of none", err, 404, "ResourceNotFoundException")
	putEventConfig(t, srv, &lambda.PutFunctionEventInvokeConfigInput{FunctionName: aws.String(name), MaximumRetryAttempts: aws.Int32(1)})
	upd, err := c.UpdateFunctionEventInvokeConfig(ctx(t), &lambda.UpdateFunctionEventInvokeConfigInput{FunctionName: aws.String(name),
		MaximumEventAgeInSeconds: aws.Int32(3600)})
	if err != nil || aws.ToInt32(upd.MaximumRetryAttempts) != 1 || aws.ToInt32(upd.MaximumEventAgeInSeconds) != 3600 {
		t.Errorf("Update: %+v %s", upd, describe(err))
	}
	list, err := c.ListFunctionEventInvokeConfigs(ctx(t), &lambda.ListFunctionEventInvokeConfigsInput{FunctionName: aws.String(name)})
	if err != nil || len(list.FunctionEventInvokeConfigs) != 1 ||
		aws.ToString(list.FunctionEventInvokeConfigs[0].FunctionArn) != functionARN(name)+":$LATEST" {
		t.Errorf("List: %+v %s", list, describe(err))
	}
	_, err = c.PutFunctionEventInvokeConfig(ctx(t), &lambda.PutFunctionEventInvokeConfigInput{FunctionName: aws.String(name),
		MaximumRetryAttempts: aws.Int32(5)})
	wantAPIError(t, "MaximumRetryAttempts 5", err, 400, "ValidationException")
	if _, err := c.DeleteFunctionEventInvokeConfig(ctx(t), &lambda.DeleteFunctionEventInvokeConfigInput{FunctionName: aws.String(name)}); err != nil {
		t.Errorf("Delete: %s", describe(err))
	}
	_, err = c.GetFunctionEventInvokeConfig(ctx(t), &lambda.GetFunctionEventInvokeConfigInput{FunctionName: aws.String(name)})
	wantAPIError(t, "Get after Delete", err, 404, "ResourceNotFoundException")
}

// TestAsyncSurvivesKill9 queues events, kills the server with SIGKILL while
// they are pending, restarts it on the same data directory and checks that
// every accepted event ran (at least once).
func TestAsyncSurvivesKill9(t *testing.T) {
	requireServer(t)
	t.Parallel()
	creds := cli.Credentials{AccessKeyID: "AKIDKILL" + strings.ToUpper(randomHex(6)), SecretAccessKey: randomHex(20)}
	dir := filepath.Join(workDir, "kill9-"+randomHex(4))
	s, err := startServer(dir, &creds)
	if err != nil {
		t.Fatalf("starting a server: %v", err)
	}
	t.Cleanup(func() {
		select {
		case <-s.done:
		default:
			if err := s.stop(); err != nil {
				t.Errorf("stopping the server: %v", err)
			}
		}
		if t.Failed() {
			s.dumpLog(testLogWriter{t}, 60)
		}
	})
	name := "async-kill9-" + runID
	createFunctionOn(t, s, name, fnSpec{})
	url, arn := createQueue(t, s, "e2e-kill9-"+runID, nil)
	putEventConfig(t, s, &lambda.PutFunctionEventInvokeConfigInput{FunctionName: aws.String(name),
		DestinationConfig: &types.DestinationConfig{OnSuccess: &types.OnSuccess{Destination: aws.String(arn)}}})
	const n = 60
	ids := map[string]bool{}
	c := s.client()
	for i := range n {
		ids[invokeEvent(t, c, name, map[string]any{"op": "sleep", "ms": 200, "i": i})] = true
	}
	s.kill() // SIGKILL: no shutdown of any kind
	t.Logf("killed the server with %d events accepted", n)

	s2, err := startServer(dir, &creds)
	if err != nil {
		t.Fatalf("restarting the server: %v", err)
	}
	t.Cleanup(func() {
		if err := s2.stop(); err != nil {
			t.Errorf("stopping the restarted server: %v", err)
		}
		if t.Failed() {
			s2.dumpLog(testLogWriter{t}, 60)
		}
	})
	seen := map[string]int{}
	deadline := time.Now().Add(2 * time.Minute)
	c2 := s2.sqsClient()
	for len(seen) < n && time.Now().Before(deadline) {
		out, err := c2.ReceiveMessage(ctx(t), &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 10,
			WaitTimeSeconds: 5, VisibilityTimeout: 600})
		if err != nil {
			t.Fatalf("ReceiveMessage: %s", describe(err))
		}
		for _, m := range out.Messages {
			var r invocationRecord
			if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &r); err != nil {
				t.Fatalf("not a record: %s", aws.ToString(m.Body))
			}
			if !ids[r.RequestContext.RequestID] || r.RequestContext.Condition != "Success" {
				t.Errorf("unexpected record %+v", r.RequestContext)
			}
			seen[r.RequestContext.RequestID]++
		}
	}
	var missing []string
	for id := range ids {
		if seen[id] == 0 {
			missing = append(missing, id)
		}
	}
	dups := 0
	for _, k := range seen {
		dups += k - 1
	}
	t.Logf("%d of %d events ran after the restart (%d duplicate records)", len(seen), n, dups)
	if len(missing) > 0 {
		t.Errorf("%d accepted events never ran: %v", len(missing), missing)
	}
}

// testLogWriter writes to the test log.
type testLogWriter struct{ t *testing.T }

func (w testLogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
