package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda/messages"
	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/smithy-go"
)

// fnSpec describes a function to create; zero fields take defaults.
type fnSpec struct {
	code      string // key of zips: echo, behave, ...
	runtime   types.Runtime
	handler   string
	memory    int32
	timeout   int32
	env       map[string]string
	ephemeral int32
}

func functionARN(name string) string {
	return fmt.Sprintf("arn:aws:lambda:%s:%s:function:%s", region, account, name)
}

// marker is the environment assignment that identifies name's sandbox
// processes on the host.
func marker(name string) string { return "E2E_FN=" + name + "-" + runID }

// createFunction creates name on the shared server, waits until it is
// Active, and deletes it when the test ends. On failure, the server log lines
// about the function are printed.
func createFunction(t *testing.T, name string, spec fnSpec) *lambda.CreateFunctionOutput {
	t.Helper()
	return createFunctionOn(t, srv, name, spec)
}

func createFunctionOn(t *testing.T, s *server, name string, spec fnSpec) *lambda.CreateFunctionOutput {
	t.Helper()
	in := createInput(name, spec)
	c := s.client()
	out, err := c.CreateFunction(ctx(t), in)
	if err != nil {
		t.Fatalf("CreateFunction %s: %s", name, describe(err))
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server log lines about %s:\n  %s", name, strings.Join(s.logLinesAbout(name, 40), "\n  "))
		}
	})
	t.Cleanup(func() {
		select {
		case <-s.done:
			return
		default:
		}
		dctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, err := c.DeleteFunction(dctx, &lambda.DeleteFunctionInput{FunctionName: aws.String(name)})
		var nf *types.ResourceNotFoundException
		if err != nil && !errors.As(err, &nf) {
			t.Errorf("DeleteFunction %s: %s", name, describe(err))
		}
	})
	waitActive(t, c, name)
	return out
}

func createInput(name string, spec fnSpec) *lambda.CreateFunctionInput {
	if spec.code == "" {
		spec.code = "behave"
	}
	if spec.runtime == "" {
		spec.runtime = types.RuntimeProvidedal2023
	}
	if spec.handler == "" {
		spec.handler = "bootstrap"
	}
	if spec.memory == 0 {
		spec.memory = 128
	}
	if spec.timeout == 0 {
		spec.timeout = 10
	}
	env := map[string]string{"E2E_RUN_ID": runID, "E2E_FN": name + "-" + runID}
	for k, v := range spec.env {
		env[k] = v
	}
	in := &lambda.CreateFunctionInput{
		FunctionName: aws.String(name),
		Runtime:      spec.runtime,
		Handler:      aws.String(spec.handler),
		Role:         aws.String(role),
		MemorySize:   aws.Int32(spec.memory),
		Timeout:      aws.Int32(spec.timeout),
		Code:         &types.FunctionCode{ZipFile: zips[spec.code]},
		Environment:  &types.Environment{Variables: env},
	}
	if spec.ephemeral != 0 {
		in.EphemeralStorage = &types.EphemeralStorage{Size: aws.Int32(spec.ephemeral)}
	}
	return in
}

func waitActive(t *testing.T, c *lambda.Client, name string) {
	t.Helper()
	w := lambda.NewFunctionActiveV2Waiter(c)
	if err := w.Wait(ctx(t), &lambda.GetFunctionInput{FunctionName: aws.String(name)}, 2*time.Minute); err != nil {
		t.Fatalf("waiting for %s to be Active (function-active-v2): %s", name, describe(err))
	}
}

func waitUpdated(t *testing.T, c *lambda.Client, name string) {
	t.Helper()
	w := lambda.NewFunctionUpdatedV2Waiter(c)
	if err := w.Wait(ctx(t), &lambda.GetFunctionInput{FunctionName: aws.String(name)}, 2*time.Minute); err != nil {
		t.Fatalf("waiting for the update of %s (function-updated-v2): %s", name, describe(err))
	}
}

func codeSha256(zip []byte) string {
	sum := sha256.Sum256(zip)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// invocation is one synchronous invoke's result.
type invocation struct {
	out       *lambda.InvokeOutput
	requestID string
	logs      string // decoded log tail
}

func (inv *invocation) payload() []byte { return inv.out.Payload }

// fnError decodes the payload as a function error document; it fails the
// test unless the invoke reported X-Amz-Function-Error: Unhandled.
func (inv *invocation) fnError(t *testing.T) messages.InvokeResponse_Error {
	t.Helper()
	if fe := aws.ToString(inv.out.FunctionError); fe != "Unhandled" {
		t.Fatalf("FunctionError = %q, want Unhandled (payload %s)", fe, clip(inv.payload()))
	}
	var e messages.InvokeResponse_Error
	if err := json.Unmarshal(inv.payload(), &e); err != nil {
		t.Fatalf("error payload is not JSON: %v: %s", err, clip(inv.payload()))
	}
	if e.Type == "" || e.Message == "" {
		t.Errorf("error payload lacks errorType or errorMessage: %s", clip(inv.payload()))
	}
	return e
}

// decode unmarshals a successful invoke's payload into v; it fails the test
// if the function failed.
func (inv *invocation) decode(t *testing.T, v any) {
	t.Helper()
	if fe := aws.ToString(inv.out.FunctionError); fe != "" {
		t.Fatalf("function failed (%s): %s\nlog tail:\n%s", fe, clip(inv.payload()), inv.logs)
	}
	if err := json.Unmarshal(inv.payload(), v); err != nil {
		t.Fatalf("payload is not the expected JSON: %v: %s", err, clip(inv.payload()))
	}
}

func clip(b []byte) string {
	if len(b) > 600 {
		return string(b[:600]) + fmt.Sprintf("... (%d bytes)", len(b))
	}
	return string(b)
}

// invokeRaw invokes fn (a name or ARN) with payload and the log tail,
// returning the SDK error as is.
func invokeRaw(t *testing.T, c *lambda.Client, fn string, payload []byte) (*invocation, error) {
	t.Helper()
	out, err := c.Invoke(ctx(t), &lambda.InvokeInput{
		FunctionName: aws.String(fn),
		Payload:      payload,
		LogType:      types.LogTypeTail,
	})
	if err != nil {
		return nil, err
	}
	inv := &invocation{out: out}
	inv.requestID, _ = awsmiddleware.GetRequestIDMetadata(out.ResultMetadata)
	if out.LogResult != nil {
		logs, err := base64.StdEncoding.DecodeString(*out.LogResult)
		if err != nil {
			t.Errorf("X-Amz-Log-Result is not base64: %v", err)
		}
		inv.logs = string(logs)
	}
	return inv, nil
}

// invoke invokes fn with event (marshalled to JSON unless it is []byte) and
// fails the test on an API error. Function errors are not API errors.
func invoke(t *testing.T, fn string, event any) *invocation {
	t.Helper()
	return invokeOn(t, srv, fn, event)
}

func invokeOn(t *testing.T, s *server, fn string, event any) *invocation {
	t.Helper()
	payload, ok := event.([]byte)
	if !ok {
		var err error
		if payload, err = json.Marshal(event); err != nil {
			t.Fatal(err)
		}
	}
	inv, err := invokeRaw(t, s.client(), fn, payload)
	if err != nil {
		t.Fatalf("Invoke %s: %s", fn, describe(err))
	}
	if inv.out.StatusCode != 200 {
		t.Errorf("Invoke %s: status %d, want 200", fn, inv.out.StatusCode)
	}
	return inv
}

// counterResult is what behave's "counter" op returns.
type counterResult struct {
	Count int    `json:"count"`
	ID    string `json:"id"`
	PID   int    `json:"pid"`
}

func counter(t *testing.T, fn string) (counterResult, *invocation) {
	t.Helper()
	inv := invoke(t, fn, map[string]any{"op": "counter"})
	var r counterResult
	inv.decode(t, &r)
	if r.ID == "" {
		t.Fatalf("counter returned no process id: %s", inv.payload())
	}
	return r, inv
}

// report is a parsed REPORT log line.
type report struct {
	requestID     string
	duration      float64
	billed        int
	memorySize    int
	maxMemoryUsed int
	initDuration  float64
	hasInit       bool
	line          string
}

var reportRE = regexp.MustCompile(`(?m)^REPORT RequestId: (\S+)\tDuration: ([0-9]+\.[0-9]{2}) ms\tBilled Duration: ([0-9]+) ms\tMemory Size: ([0-9]+) MB\tMax Memory Used: ([0-9]+) MB(\tInit Duration: ([0-9]+\.[0-9]{2}) ms)?`)

// parseReport finds the REPORT line in a log tail.
func parseReport(t *testing.T, logs string) report {
	t.Helper()
	m := reportRE.FindStringSubmatch(logs)
	if m == nil {
		t.Fatalf("no REPORT line in Lambda's format in the log tail:\n%s", logs)
	}
	r := report{requestID: m[1], line: m[0], hasInit: m[6] != ""}
	r.duration, _ = strconv.ParseFloat(m[2], 64)
	r.billed, _ = strconv.Atoi(m[3])
	r.memorySize, _ = strconv.Atoi(m[4])
	r.maxMemoryUsed, _ = strconv.Atoi(m[5])
	if r.hasInit {
		r.initDuration, _ = strconv.ParseFloat(m[7], 64)
	}
	return r
}

// apiError returns the AWS error code and HTTP status of err.
func apiError(err error) (code string, status int) {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		code = ae.ErrorCode()
	}
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		status = re.HTTPStatusCode()
	}
	return code, status
}

func describe(err error) string {
	if err == nil {
		return "<nil>"
	}
	code, status := apiError(err)
	if code != "" || status != 0 {
		return fmt.Sprintf("%v [code %s, HTTP %d]", err, code, status)
	}
	return err.Error()
}

// wantAPIError fails t unless err is an AWS error with one of the codes and
// the status.
func wantAPIError(t *testing.T, what string, err error, status int, codes ...string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: succeeded, want HTTP %d %v", what, status, codes)
		return
	}
	code, st := apiError(err)
	ok := false
	for _, c := range codes {
		ok = ok || code == c
	}
	if !ok || st != status {
		t.Errorf("%s: got %s, want HTTP %d %v", what, describe(err), status, codes)
	}
}
