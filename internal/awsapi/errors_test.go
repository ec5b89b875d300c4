package awsapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/smithy-go"

	"kindling/internal/config"
	"kindling/internal/errdefs"
)

// carrier is a typed error whose Error() is the message and which unwraps
// to its class directly, like codestore's.
type carrier struct {
	class error
	msg   string
}

func (c *carrier) Error() string   { return c.msg }
func (c *carrier) Unwrap() []error { return []error{c.class, errors.New("cause: invalid: detail")} }

func TestFromError(t *testing.T) {
	cases := []struct {
		name     string
		err      error
		status   int
		typ      string
		msg      string
		internal bool
	}{
		{"explicit", &Error{Status: 412, Type: TypePreconditionFailed, Message: "m"}, 412, TypePreconditionFailed, "m", false},
		{"wrapped explicit", fmt.Errorf("ctx: %w", &Error{Status: 429, Type: TypeTooManyRequests, Message: "Rate Exceeded.", Reason: "X"}), 429, TypeTooManyRequests, "Rate Exceeded.", false},
		{"not found", fmt.Errorf("%w: Function not found: arn:x", errdefs.ErrNotFound), 404, TypeResourceNotFound, "Function not found: arn:x", false},
		{"not found with context", fmt.Errorf("config: get: %w", fmt.Errorf("%w: Function not found: f", errdefs.ErrNotFound)), 404, TypeResourceNotFound, "Function not found: f", false},
		{"bare class", errdefs.ErrNotFound, 404, TypeResourceNotFound, msgNotFound, false},
		{"conflict", fmt.Errorf("%w: Function already exist: f", errdefs.ErrConflict), 409, TypeResourceConflict, "Function already exist: f", false},
		{"state", &config.StateError{Status: config.Status{State: config.StatePending}}, 409, TypeResourceConflict,
			"The operation cannot be performed at this time. The function is currently in the following state: Pending", false},
		{"invalid", fmt.Errorf("%w: bad thing", errdefs.ErrInvalid), 400, TypeInvalidParameterValue, "bad thing", false},
		{"typed carrier", fmt.Errorf("codestore: put: %w", &carrier{errdefs.ErrInvalid, "Could not unzip uploaded file."}), 400, TypeInvalidParameterValue, "Could not unzip uploaded file.", false},
		{"validation", config.NewValidationError("v1", "v2"), 400, TypeValidation, "2 validation errors detected: v1; v2", false},
		{"access denied", &config.AccessDeniedError{Message: "no"}, 403, TypeAccessDenied, "no", false},
		{"snapstart not ready", fmt.Errorf("ctx: %w", &config.SnapStartNotReadyError{Resource: "arn"}), 409, TypeSnapStartNotReady,
			"Lambda is initializing your function. It will be ready to invoke once initialization is complete.", false},
		{"too large", fmt.Errorf("%w: Request must be smaller than 1 bytes", errdefs.ErrTooLarge), 413, TypeRequestEntityTooLarge, "Request must be smaller than 1 bytes", false},
		{"throttled", fmt.Errorf("%w", errdefs.ErrThrottled), 429, TypeTooManyRequests, msgThrottled, false},
		{"unavailable", fmt.Errorf("worker 10.1.1.1: %w", errdefs.ErrUnavailable), 503, TypeService, msgUnavailable, true},
		{"internal", errors.New("disk on fire at /var/lib"), 500, TypeService, msgInternal, true},
		{"canceled", context.Canceled, 500, TypeService, msgInternal, true},
	}
	for _, c := range cases {
		e, internal := FromError(c.err)
		if e.Status != c.status || e.Type != c.typ || e.Message != c.msg || internal != c.internal {
			t.Errorf("%s: got %d %s %q internal=%v", c.name, e.Status, e.Type, e.Message, internal)
		}
	}
	e, _ := FromError(errdefs.ErrThrottled)
	if e.Reason != "ConcurrentInvocationLimitExceeded" {
		t.Errorf("throttle reason %q", e.Reason)
	}
}

func TestWriteError(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))

	rec := httptest.NewRecorder()
	WriteErrorLog(rec, errors.New("secret detail"), log)
	if rec.Code != 500 || rec.Header().Get("X-Amzn-ErrorType") != TypeService || rec.Header().Get(HeaderRequestID) == "" {
		t.Errorf("internal: %d %v", rec.Code, rec.Header())
	}
	if strings.Contains(rec.Body.String(), "secret") || !strings.Contains(logs.String(), "secret detail") ||
		!strings.Contains(logs.String(), rec.Header().Get(HeaderRequestID)) {
		t.Errorf("internal error leaked or not logged: body %s, log %s", rec.Body, logs.String())
	}
	var body map[string]string
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body["Type"] != "Service" || body["Message"] != msgInternal {
		t.Errorf("internal body %s", rec.Body)
	}

	rec = httptest.NewRecorder()
	rec.Header().Set(HeaderRequestID, "given")
	WriteError(rec, &Error{Status: 429, Type: TypeTooManyRequests, Message: "Rate Exceeded.", Reason: "ReservedFunctionConcurrentInvocationLimitExceeded"})
	body = nil
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatal(err)
	}
	if rec.Header().Get(HeaderRequestID) != "given" || body["Type"] != "User" || body["message"] != "Rate Exceeded." ||
		body["Reason"] != "ReservedFunctionConcurrentInvocationLimitExceeded" || rec.Header().Get("Content-Type") != "application/json" {
		t.Errorf("throttle: %v %s", rec.Header(), rec.Body)
	}
	rec = httptest.NewRecorder()
	WriteError(rec, fmt.Errorf("%w: Function not found: f", errdefs.ErrNotFound))
	if !strings.Contains(rec.Body.String(), `"Message":"Function not found: f"`) {
		t.Errorf("not found body uses Lambda's key case: %s", rec.Body)
	}
}

// TestSDKReadsErrors checks that the real aws-sdk-go-v2 Lambda client
// surfaces what WriteError sends as its typed errors, with the message.
func TestSDKReadsErrors(t *testing.T) {
	var next error
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		WriteError(w, next)
	}))
	defer srv.Close()
	c := lambda.New(lambda.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(srv.URL), HTTPClient: srv.Client(), RetryMaxAttempts: 1,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "AKID", SecretAccessKey: "s"}, nil
		}),
	})
	call := func(err error) error {
		next = err
		_, got := c.GetFunction(context.Background(), &lambda.GetFunctionInput{FunctionName: aws.String("f")})
		return got
	}
	check := func(name string, target any, got error, msg string) {
		t.Helper()
		if !errors.As(got, target) {
			t.Errorf("%s: got %T %v", name, got, got)
			return
		}
		var ae smithy.APIError
		if errors.As(got, &ae) && ae.ErrorMessage() != msg {
			t.Errorf("%s: message %q, want %q", name, ae.ErrorMessage(), msg)
		}
	}
	var nf *types.ResourceNotFoundException
	check("not found", &nf, call(fmt.Errorf("%w: Function not found: f", errdefs.ErrNotFound)), "Function not found: f")
	var rc *types.ResourceConflictException
	check("conflict", &rc, call(fmt.Errorf("%w: Function already exist: f", errdefs.ErrConflict)), "Function already exist: f")
	var ip *types.InvalidParameterValueException
	check("invalid", &ip, call(fmt.Errorf("%w: nope", errdefs.ErrInvalid)), "nope")
	var tm *types.TooManyRequestsException
	check("throttled", &tm, call(&Error{Status: 429, Type: TypeTooManyRequests, Message: "Rate Exceeded.", Reason: "CallerRateLimitExceeded"}), "Rate Exceeded.")
	if tm != nil && tm.Reason != types.ThrottleReasonCallerRateLimitExceeded {
		t.Errorf("throttle reason %q", tm.Reason)
	}
	var pf *types.PreconditionFailedException
	check("precondition", &pf, call(&Error{Status: 412, Type: TypePreconditionFailed, Message: "rev"}), "rev")
	var se *types.ServiceException
	check("internal", &se, call(errors.New("x")), msgInternal)
	var ae smithy.APIError
	check("validation", &ae, call(config.NewValidationError("v")), "1 validation error detected: v")
	if ae != nil && ae.ErrorCode() != "ValidationException" {
		t.Errorf("validation code %s", ae.ErrorCode())
	}
	var snr *types.SnapStartNotReadyException
	check("snapstart not ready", &snr, call(&config.SnapStartNotReadyError{}), config.SnapStartNotReadyMessage)
	var sse *types.SnapStartException
	check("snapstart", &sse, call(&Error{Status: 400, Type: TypeSnapStart, Message: "hook"}), "hook")
	var sst *types.SnapStartTimeoutException
	check("snapstart timeout", &sst, call(&Error{Status: 408, Type: TypeSnapStartTimeout, Message: "slow"}), "slow")
	check("too large", &ae, call(fmt.Errorf("%w: Request must be smaller", errdefs.ErrTooLarge)), "Request must be smaller")
	if ae != nil && ae.ErrorCode() != "RequestEntityTooLargeException" {
		t.Errorf("too large code %s", ae.ErrorCode())
	}
}

func TestNewRequestID(t *testing.T) {
	a, b := NewRequestID(), NewRequestID()
	if len(a) != 36 || a == b || a[14] != '4' || a[8] != '-' || a[23] != '-' {
		t.Errorf("ids %q %q", a, b)
	}
}
