package e2e

import (
	"bytes"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

func TestInvokeEchoBytes(t *testing.T) {
	requireServer(t)
	t.Parallel()
	const name = "e2e-echo"
	createFunction(t, name, fnSpec{code: "echo"})
	for _, payload := range [][]byte{
		[]byte(`{"a": 1,   "b":[1,2,3],"nested":{"x":null}, "u":"\u00e9\ud83d\ude00", "s":"caf` + "\xc3\xa9" + `"}`),
		[]byte("  [1, 2.50, 3e3]\n"),
		[]byte(`"just a string"`),
		[]byte(`12345`),
		[]byte(`{}`),
	} {
		inv := invoke(t, name, payload)
		if !bytes.Equal(inv.payload(), payload) {
			t.Errorf("echo changed the bytes:\n sent %q\n got  %q", payload, inv.payload())
		}
		if v := aws.ToString(inv.out.ExecutedVersion); v != "$LATEST" {
			t.Errorf("X-Amz-Executed-Version = %q, want $LATEST", v)
		}
		if inv.out.FunctionError != nil {
			t.Errorf("FunctionError = %q on success", *inv.out.FunctionError)
		}
		if inv.requestID == "" {
			t.Error("no x-amzn-RequestId on the invoke response")
		}
	}
}

func TestInvokeDryRun(t *testing.T) {
	requireServer(t)
	t.Parallel()
	const name = "e2e-dryrun"
	createFunction(t, name, fnSpec{code: "echo"})
	out, err := srv.client().Invoke(ctx(t), &lambda.InvokeInput{
		FunctionName:   aws.String(name),
		InvocationType: types.InvocationTypeDryRun,
		Payload:        []byte(`{"dry":true}`),
	})
	if err != nil {
		t.Fatalf("DryRun: %s", describe(err))
	}
	if out.StatusCode != 204 || len(out.Payload) != 0 {
		t.Errorf("DryRun: status %d payload %q, want 204 and no body", out.StatusCode, out.Payload)
	}
	_, err = srv.client().Invoke(ctx(t), &lambda.InvokeInput{
		FunctionName:   aws.String("e2e-dryrun-missing"),
		InvocationType: types.InvocationTypeDryRun,
	})
	wantAPIError(t, "DryRun of a missing function", err, 404, "ResourceNotFoundException")
}

// TestInvokeLogTail checks the Tail log: START, the function's own lines,
// END and REPORT as Lambda writes them, Init Duration on the cold start only.
func TestInvokeLogTail(t *testing.T) {
	requireServer(t)
	t.Parallel()
	const name = "e2e-logs"
	createFunction(t, name, fnSpec{})
	lines := []string{"first line from the function", "second line: ünïcödé"}
	for i, cold := range []bool{true, false} {
		inv := invoke(t, name, map[string]any{"op": "log", "lines": lines})
		var r map[string]any
		inv.decode(t, &r)
		id := inv.requestID
		logs := inv.logs
		if logs == "" {
			t.Fatalf("invoke %d: no X-Amz-Log-Result", i)
		}
		start := "START RequestId: " + id + " Version: $LATEST\n"
		end := "END RequestId: " + id + "\n"
		si, ei := strings.Index(logs, start), strings.Index(logs, end)
		if si < 0 || ei < 0 || ei < si {
			t.Errorf("invoke %d: want %q ... %q in order, log tail:\n%s", i, start, end, logs)
		}
		for _, l := range lines {
			li := strings.Index(logs, l+"\n")
			if li < 0 || (si >= 0 && li < si) || (ei >= 0 && li > ei) {
				t.Errorf("invoke %d: line %q not between START and END:\n%s", i, l, logs)
			}
		}
		rep := parseReport(t, logs)
		if rep.requestID != id {
			t.Errorf("REPORT RequestId %q, want %q", rep.requestID, id)
		}
		if rep.memorySize != 128 {
			t.Errorf("REPORT Memory Size %d, want 128", rep.memorySize)
		}
		if float64(rep.billed) < rep.duration || rep.billed < 1 {
			t.Errorf("Billed Duration %d ms below Duration %.2f ms", rep.billed, rep.duration)
		}
		if rep.maxMemoryUsed < 1 || rep.maxMemoryUsed > 128 {
			t.Errorf("Max Memory Used %d MB outside (0, 128]", rep.maxMemoryUsed)
		}
		if rep.hasInit != cold {
			t.Errorf("invoke %d (cold=%v): Init Duration present = %v: %q", i, cold, rep.hasInit, rep.line)
		}
		if len(logs) > 4096 {
			t.Errorf("log tail is %d bytes, want at most 4 KB", len(logs))
		}
	}

	// The tail is the last 4 KB of a long log.
	var many []string
	for i := 0; i < 300; i++ {
		many = append(many, strings.Repeat("z", 40)+" line")
	}
	many = append(many, "the very last line")
	inv := invoke(t, name, map[string]any{"op": "log", "lines": many})
	if len(inv.logs) > 4096 || !strings.Contains(inv.logs, "the very last line") || !strings.Contains(inv.logs, "REPORT RequestId: "+inv.requestID) {
		t.Errorf("long log: tail of %d bytes, want <= 4096 ending with the last line and REPORT:\n%s", len(inv.logs), inv.logs)
	}

	// Without LogType Tail there is no log result.
	out, err := srv.client().Invoke(ctx(t), &lambda.InvokeInput{FunctionName: aws.String(name), Payload: []byte(`{"op":"counter"}`)})
	if err != nil {
		t.Fatalf("Invoke: %s", describe(err))
	}
	if out.LogResult != nil {
		t.Errorf("LogResult without LogType Tail: %q", *out.LogResult)
	}
}

func TestInvokeContext(t *testing.T) {
	requireServer(t)
	t.Parallel()
	const name = "e2e-context"
	createFunction(t, name, fnSpec{timeout: 5})
	inv := invoke(t, name, map[string]any{"op": "context"})
	var r struct {
		AwsRequestID        string            `json:"awsRequestId"`
		InvokedFunctionArn  string            `json:"invokedFunctionArn"`
		DeadlineRemainingMs int64             `json:"deadlineRemainingMs"`
		FunctionName        string            `json:"functionName"`
		MemoryLimitInMB     int               `json:"memoryLimitInMB"`
		Env                 map[string]string `json:"env"`
	}
	inv.decode(t, &r)
	if r.AwsRequestID != inv.requestID {
		t.Errorf("context request id %q, response x-amzn-RequestId %q", r.AwsRequestID, inv.requestID)
	}
	if r.InvokedFunctionArn != functionARN(name) {
		t.Errorf("InvokedFunctionArn %q, want %q", r.InvokedFunctionArn, functionARN(name))
	}
	if r.DeadlineRemainingMs <= 0 || r.DeadlineRemainingMs > 5000 {
		t.Errorf("deadline %d ms away, want in (0, 5000]", r.DeadlineRemainingMs)
	}
	if r.FunctionName != name || r.MemoryLimitInMB != 128 {
		t.Errorf("lambdacontext: name %q memory %d", r.FunctionName, r.MemoryLimitInMB)
	}
	// Client context (base64 JSON in X-Amz-Client-Context) reaches the
	// function through the Runtime API.
	cc := base64.StdEncoding.EncodeToString([]byte(`{"custom":{"k":"v"},"env":{},"client":{}}`))
	out, err := srv.client().Invoke(ctx(t), &lambda.InvokeInput{
		FunctionName:  aws.String(name),
		Payload:       []byte(`{"op":"context"}`),
		ClientContext: aws.String(cc),
	})
	if err != nil {
		t.Fatalf("Invoke with ClientContext: %s", describe(err))
	}
	var withCC struct {
		Custom map[string]string `json:"clientContextCustom"`
		Trace  string            `json:"traceId"`
	}
	(&invocation{out: out}).decode(t, &withCC)
	if withCC.Custom["k"] != "v" {
		t.Errorf("client context custom = %v, want k=v", withCC.Custom)
	}

	// Invoked by ARN, the context names that ARN.
	inv2, err := invokeRaw(t, srv.client(), functionARN(name)+":$LATEST", []byte(`{"op":"context"}`))
	if err != nil {
		t.Fatalf("Invoke by qualified ARN: %s", describe(err))
	}
	inv2.decode(t, &r)
	if r.InvokedFunctionArn != functionARN(name)+":$LATEST" {
		t.Errorf("invoked by the qualified ARN, InvokedFunctionArn = %q, want the ARN used", r.InvokedFunctionArn)
	}
}

func TestFunctionErrors(t *testing.T) {
	requireServer(t)
	t.Parallel()
	const name = "e2e-errors"
	createFunction(t, name, fnSpec{})

	t.Run("handler error", func(t *testing.T) {
		inv := invoke(t, name, map[string]any{"op": "error", "message": "boom"})
		e := inv.fnError(t)
		if e.Type != "behaveError" || e.Message != "boom" {
			t.Errorf("error document = %+v, want errorType behaveError, errorMessage boom", e)
		}
		if aws.ToString(inv.out.ExecutedVersion) != "$LATEST" || inv.out.StatusCode != 200 {
			t.Errorf("status %d version %q", inv.out.StatusCode, aws.ToString(inv.out.ExecutedVersion))
		}
		if !strings.Contains(inv.logs, "END RequestId: "+inv.requestID) {
			t.Errorf("no END line for a failed invoke:\n%s", inv.logs)
		}
		// A handled error leaves the environment warm.
		r, _ := counter(t, name)
		if r.Count < 2 {
			t.Logf("note: counter after a handler error = %d (environment was replaced)", r.Count)
		}
	})

	t.Run("panic", func(t *testing.T) {
		before, _ := counter(t, name)
		inv := invoke(t, name, map[string]any{"op": "panic"})
		e := inv.fnError(t)
		// aws-lambda-go reports the panic value's type ("string") and
		// its text, then exits.
		if e.Type != "string" || e.Message != "behave: deliberate panic" {
			t.Errorf("panic error document = %+v", e)
		}
		// aws-lambda-go exits after reporting a panic; the next invoke
		// must get a working environment, not the dying one.
		after, _ := counter(t, name)
		if after.ID == before.ID {
			t.Errorf("after the runtime exited on a panic, the next invoke ran in the same process (%s)", after.ID)
		}
	})

	t.Run("exit", func(t *testing.T) {
		before, _ := counter(t, name)
		inv := invoke(t, name, map[string]any{"op": "exit", "code": 2})
		e := inv.fnError(t)
		if e.Type != "Runtime.ExitError" || !strings.Contains(e.Message, "Runtime exited with error: exit status 2") {
			t.Errorf("exit error document = %+v, want Runtime.ExitError 'Runtime exited with error: exit status 2'", e)
		}
		if !strings.Contains(inv.logs, "behave: exiting with status 2") {
			t.Errorf("the function's last line is missing from the log tail:\n%s", inv.logs)
		}
		after, inv2 := counter(t, name)
		if after.ID == before.ID || after.Count != 1 {
			t.Errorf("after the exit: id %s count %d (before: %s), want a new environment", after.ID, after.Count, before.ID)
		}
		if r := parseReport(t, inv2.logs); !r.hasInit {
			t.Errorf("the invoke after an exit was not a cold start: %q", r.line)
		}
	})
}

func TestInitFailures(t *testing.T) {
	requireServer(t)
	t.Parallel()

	t.Run("go init panic", func(t *testing.T) {
		t.Parallel()
		const name = "e2e-initpanic"
		createFunction(t, name, fnSpec{code: "initpanic"})
		for i := 0; i < 2; i++ { // and again: every attempt fails the same way
			inv := invoke(t, name, map[string]any{})
			e := inv.fnError(t)
			if e.Type != "Runtime.ExitError" || !strings.Contains(e.Message, "exit status 2") {
				t.Errorf("attempt %d: %+v, want Runtime.ExitError with 'exit status 2'", i, e)
			}
			if !strings.Contains(inv.logs, "initpanic: deliberate failure during init") {
				t.Errorf("attempt %d: the init panic is not in the log tail:\n%s", i, inv.logs)
			}
		}
	})

	t.Run("runtime init error", func(t *testing.T) {
		t.Parallel()
		requireCurl(t)
		const name = "e2e-shell-initerror"
		createFunction(t, name, fnSpec{code: "shell-initerror", runtime: types.RuntimeProvidedal2})
		inv := invoke(t, name, map[string]any{"x": 1})
		e := inv.fnError(t)
		if e.Type != "Runtime.Custom" || !strings.Contains(e.Message, "custom init failure from shell") {
			t.Errorf("init error document = %+v, want errorType Runtime.Custom with the runtime's message", e)
		}
	})

	t.Run("init over the limit", func(t *testing.T) {
		t.Parallel()
		const name = "e2e-initslow-over"
		// The init limit is 10 s of Lambda time, 1 s at the test's time
		// scale; the function's Timeout (not scaled) is shorter than the
		// sleep too, so a retried init fails as well.
		createFunction(t, name, fnSpec{code: "initslow", timeout: 2, env: map[string]string{"INIT_SLEEP_MS": "6000"}})
		inv := invoke(t, name, []byte(`{"slow":true}`))
		e := inv.fnError(t)
		t.Logf("init over the limit reported: %+v", e)
		if pids := waitNoProcesses(marker(name), 30*time.Second); len(pids) > 0 {
			t.Errorf("the environment whose init timed out still runs: %v", pids)
		}
	})

	t.Run("init under the limit", func(t *testing.T) {
		t.Parallel()
		const name = "e2e-initslow"
		createFunction(t, name, fnSpec{code: "initslow", env: map[string]string{"INIT_SLEEP_MS": "300"}})
		inv := invoke(t, name, []byte(`{"slow":false}`))
		if string(inv.payload()) != `{"slow":false}` || inv.out.FunctionError != nil {
			t.Fatalf("initslow: %s (%v)", inv.payload(), aws.ToString(inv.out.FunctionError))
		}
		r := parseReport(t, inv.logs)
		if !r.hasInit || r.initDuration < 300 {
			t.Errorf("REPORT %q: want Init Duration >= 300 ms (the function slept 300 ms in init)", r.line)
		}
		if r.duration >= 300 {
			t.Logf("note: Duration %.2f ms includes the init sleep", r.duration)
		}
	})
}

func TestTimeout(t *testing.T) {
	requireServer(t)
	t.Parallel()
	const name = "e2e-timeout"
	createFunction(t, name, fnSpec{timeout: 1})
	before, _ := counter(t, name)
	inv := invoke(t, name, map[string]any{"op": "sleep", "ms": 3000})
	e := inv.fnError(t)
	if !strings.Contains(e.Message, "Task timed out after 1.00 seconds") {
		t.Errorf("timeout error document = %+v, want 'Task timed out after 1.00 seconds'", e)
	}
	if !strings.Contains(inv.logs, "Task timed out after 1.00 seconds") {
		t.Errorf("the log tail lacks the timeout line:\n%s", inv.logs)
	}
	if r := parseReport(t, inv.logs); r.duration < 1000 {
		t.Errorf("REPORT of a timed-out invoke: Duration %.2f ms below the 1 s timeout", r.duration)
	}
	after, _ := counter(t, name)
	if after.ID == before.ID {
		t.Errorf("the invoke after a timeout ran in the timed-out process (%s); Lambda replaces it", after.ID)
	}
	if after.Count != 1 {
		t.Errorf("counter after the timeout = %d, want 1 (fresh environment)", after.Count)
	}
}

func TestMemoryLimit(t *testing.T) {
	requireServer(t)
	t.Parallel()
	const name = "e2e-memory"
	createFunction(t, name, fnSpec{memory: 128, timeout: 30})
	inv := invoke(t, name, map[string]any{"op": "alloc", "mb": 40})
	var ok map[string]any
	inv.decode(t, &ok)

	inv = invoke(t, name, map[string]any{"op": "alloc", "mb": 400})
	e := inv.fnError(t)
	switch {
	case e.Type == "Runtime.OutOfMemory":
	case e.Type == "Runtime.ExitError" && strings.Contains(e.Message, "signal: killed"):
		t.Logf("note: reported as %+v; Lambda reports Runtime.OutOfMemory nowadays", e)
	default:
		t.Errorf("allocating 400 MB at MemorySize 128: %+v, want Runtime.OutOfMemory (or Runtime.ExitError 'signal: killed')", e)
	}
	if !strings.Contains(e.Message, "signal: killed") {
		t.Logf("note: errorMessage %q (Lambda: 'RequestId: ... Error: Runtime exited with error: signal: killed')", e.Message)
	}
	if r := parseReport(t, inv.logs); r.maxMemoryUsed < 100 {
		t.Errorf("REPORT after OOM: Max Memory Used %d MB, want near 128: %q", r.maxMemoryUsed, r.line)
	}
	r, _ := counter(t, name)
	if r.Count != 1 {
		t.Errorf("after OOM: counter %d, want a fresh environment", r.Count)
	}
}

func TestPayloadLimits(t *testing.T) {
	requireServer(t)
	t.Parallel()
	const name = "e2e-limits"
	createFunction(t, name, fnSpec{memory: 512, timeout: 30})
	const sixMB = 6 * 1024 * 1024

	t.Run("request over 6 MB", func(t *testing.T) {
		payload := bigJSONString(sixMB + 1)
		_, err := invokeRaw(t, srv.client(), name, payload)
		wantAPIError(t, "Invoke with a 6 MB + 1 byte payload", err, 413, "RequestEntityTooLargeException")
	})
	t.Run("request just under 6 MB", func(t *testing.T) {
		pad := strings.Repeat("p", sixMB-100)
		inv := invoke(t, name, map[string]any{"op": "noop", "pad": pad})
		var r struct {
			EventBytes int `json:"eventBytes"`
		}
		inv.decode(t, &r)
		if r.EventBytes < sixMB-100 {
			t.Errorf("function saw %d bytes", r.EventBytes)
		}
	})
	t.Run("response over 6 MB", func(t *testing.T) {
		inv := invoke(t, name, map[string]any{"op": "big", "bytes": 7 * 1024 * 1024})
		e := inv.fnError(t)
		if e.Type != "Function.ResponseSizeTooLarge" {
			t.Errorf("7 MB response: %+v, want Function.ResponseSizeTooLarge", e)
		}
		if len(inv.payload()) > 4096 {
			t.Errorf("the error response carries %d bytes", len(inv.payload()))
		}
	})
	t.Run("response of 5 MB", func(t *testing.T) {
		// This runs in the environment that failed the 7 MB response (and
		// whose runtime then exited) or in a new one: it must work.
		inv := invoke(t, name, map[string]any{"op": "big", "bytes": 5 * 1024 * 1024})
		if inv.out.FunctionError != nil || len(inv.payload()) != 5*1024*1024 {
			t.Errorf("5 MB response after the 7 MB one: error %q, %d bytes: %s", aws.ToString(inv.out.FunctionError), len(inv.payload()), clip(inv.payload()))
		}
	})
}

// bigJSONString is a JSON string of exactly n bytes.
func bigJSONString(n int) []byte {
	b := bytes.Repeat([]byte("a"), n)
	b[0], b[n-1] = '"', '"'
	return b
}

// requireCurl fails t when the sandbox root filesystem has no curl, which
// the shell runtimes in testdata use for the Runtime API.
func requireCurl(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(rootFS, "usr", "bin", "curl")); err != nil {
		t.Fatalf("the sandbox root filesystem %s has no curl (%v); scripts/build-rootfs.sh must include it", rootFS, err)
	}
}

func TestShellRuntime(t *testing.T) {
	requireServer(t)
	t.Parallel()
	requireCurl(t)
	const name = "e2e-shell"
	createFunction(t, name, fnSpec{code: "shell", runtime: types.RuntimeProvidedal2, handler: "function.handler"})
	for i := 0; i < 2; i++ {
		inv := invoke(t, name, []byte(`{"hello":"world"}`))
		var r struct {
			Shell   bool              `json:"shell"`
			Handler string            `json:"handler"`
			Event   map[string]string `json:"event"`
		}
		inv.decode(t, &r)
		if !r.Shell || r.Handler != "function.handler" || r.Event["hello"] != "world" {
			t.Errorf("shell runtime answered %s", inv.payload())
		}
		if !strings.Contains(inv.logs, "shell runtime handling "+inv.requestID) {
			t.Errorf("the shell runtime's log line is missing:\n%s", inv.logs)
		}
	}
}
