package frontend

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/smithy-go"

	"kindling/internal/async"
	"kindling/internal/clock"
	"kindling/internal/codestore"
	"kindling/internal/config"
	"kindling/internal/invoke"
	"kindling/internal/natsembed"
	"kindling/internal/router"
	"kindling/internal/sigv4"

	"github.com/nats-io/nats.go/jetstream"
)

const (
	testRegion  = "us-east-1"
	testAccount = "123456789012"
	testKeyID   = "AKIDKINDLINGTEST"
	testSecret  = "kindling-test-secret"
	otherKeyID  = "AKIDOTHERACCOUNT"
	otherAcct   = "210987654321"
	testRole    = "arn:aws:iam::123456789012:role/lambda-role"
)

// fakeInvoker records requests and answers with a canned result.
type fakeInvoker struct {
	mu   sync.Mutex // guards reqs
	reqs []*invoke.Request
	res  invoke.Result
	err  error
}

func (f *fakeInvoker) Invoke(_ context.Context, req *invoke.Request) (*invoke.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reqs = append(f.reqs, req)
	if f.err != nil {
		return nil, f.err
	}
	res := f.res
	if res.Payload == nil {
		res.Payload = req.Payload
	}
	return &res, nil
}

func (f *fakeInvoker) last() *invoke.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.reqs) == 0 {
		return nil
	}
	return f.reqs[len(f.reqs)-1]
}

// env is a frontend on a real embedded NATS, a real code store and a real
// SigV4 verifier, served by httptest.
type env struct {
	fe        *Frontend
	srv       *httptest.Server
	functions *config.Store
	invoker   *fakeInvoker
	ready     bool
	// events is the async queue Event invocations go to; eventConfigs the
	// event invoke configurations (async_test.go).
	events       *async.Queue
	eventConfigs *config.EventConfigs
	js           jetstream.JetStream
	// limits holds the concurrency reservations (limits_test.go).
	limits *router.Limiter
}

func newEnv(t testing.TB) *env {
	t.Helper()
	ns, err := natsembed.Start(natsembed.Config{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Shutdown)
	functions, err := config.OpenWith(context.Background(), ns.JetStream(), config.Options{Region: testRegion})
	if err != nil {
		t.Fatal(err)
	}
	code, err := codestore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	e := &env{functions: functions, invoker: &fakeInvoker{}, ready: true, js: ns.JetStream(), limits: router.NewLimiter(1000)}
	if e.events, err = async.OpenQueue(context.Background(), ns.JetStream(), 1); err != nil {
		t.Fatal(err)
	}
	if e.eventConfigs, err = config.OpenEventConfigs(context.Background(), ns.JetStream(), config.Options{Region: testRegion}); err != nil {
		t.Fatal(err)
	}
	verifier := &sigv4.Verifier{
		Region: testRegion,
		Lookup: func(id string) (sigv4.Credentials, bool) {
			switch id {
			case testKeyID:
				return sigv4.Credentials{AccessKeyID: id, SecretAccessKey: testSecret, AccountID: testAccount}, true
			case otherKeyID:
				return sigv4.Credentials{AccessKeyID: id, SecretAccessKey: testSecret, AccountID: otherAcct}, true
			}
			return sigv4.Credentials{}, false
		},
	}
	e.fe = New(Config{
		Verifier: verifier, Functions: functions, Code: code, Invoker: e.invoker,
		Region: testRegion, Clock: clock.Real(), Ready: func() bool { return e.ready },
		Events: e.events, EventConfigs: e.eventConfigs, Limits: e.limits,
	})
	e.srv = httptest.NewServer(e.fe)
	t.Cleanup(e.srv.Close)
	return e
}

// client returns an SDK client signing with the given key.
func (e *env) client(keyID, secret string) *lambda.Client {
	return lambda.New(lambda.Options{
		Region:           testRegion,
		BaseEndpoint:     aws.String(e.srv.URL),
		HTTPClient:       e.srv.Client(),
		RetryMaxAttempts: 1,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: keyID, SecretAccessKey: secret}, nil
		}),
	})
}

func (e *env) lambda() *lambda.Client { return e.client(testKeyID, testSecret) }

// makeZip builds a deployment package with a bootstrap script.
func makeZip(t testing.TB, body string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	h := &zip.FileHeader{Name: "bootstrap", Method: zip.Deflate}
	h.SetMode(0o755)
	w, err := zw.CreateHeader(h)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("#!/bin/sh\n" + body + "\n")); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func createInput(t testing.TB, name string) *lambda.CreateFunctionInput {
	return &lambda.CreateFunctionInput{
		FunctionName: aws.String(name),
		Runtime:      "provided.al2023",
		Handler:      aws.String("bootstrap"),
		Role:         aws.String(testRole),
		Code:         &types.FunctionCode{ZipFile: makeZip(t, "echo "+name)},
	}
}

// apiError returns the AWS error code, message and HTTP status of err.
func apiError(t testing.TB, err error) (code, msg string, status int) {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("not an API error: %v", err)
	}
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) {
		status = re.HTTPStatusCode()
	}
	return ae.ErrorCode(), ae.ErrorMessage(), status
}

// do sends a raw request through the handler with authentication bypassed
// (account testAccount).
func (e *env) do(method, target string, body []byte, hdr map[string]string) *httptest.ResponseRecorder {
	e.fe.verify = bypass
	req := httptest.NewRequest(method, target, bytes.NewReader(body))
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	e.fe.ServeHTTP(rec, req)
	return rec
}

func bypass(*http.Request, []byte) (sigv4.Credentials, string, error) {
	return sigv4.Credentials{AccessKeyID: testKeyID, AccountID: testAccount}, "lambda", nil
}
