// Package logsapi serves a CloudWatch Logs compatible API over the log
// store (internal/logs): the AWS JSON 1.1 protocol, operations named by
// X-Amz-Target "Logs_20140328.<Operation>", SigV4 with the signing name
// "logs". Every request is verified before its body is parsed; the
// caller's account comes from its credentials and scopes every lookup, so
// another account's group is "The specified log group does not exist.".
//
// Operations: DescribeLogGroups, DescribeLogStreams, GetLogEvents,
// FilterLogEvents, PutRetentionPolicy, DeleteRetentionPolicy,
// CreateLogGroup, DeleteLogGroup. Errors are {"__type": TYPE, "message":
// MSG} with status 400 for the client's faults (as CloudWatch Logs sends
// them, authentication failures included) and 500 otherwise.
package logsapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"kindling/internal/awsapi"
	"kindling/internal/errdefs"
	"kindling/internal/logs"
	"kindling/internal/sigv4"
)

// TargetPrefix is the X-Amz-Target prefix of the service.
const TargetPrefix = "Logs_20140328."

// maxBody bounds a request body; none of the operations served needs more.
const maxBody = 1 << 20

// Config configures the API.
type Config struct {
	Verifier *sigv4.Verifier
	Store    *logs.Store
	Region   string
	Logger   *slog.Logger
}

// API is the CloudWatch Logs API handler.
type API struct {
	cfg Config
	log *slog.Logger
}

// New returns the handler.
func New(cfg Config) *API {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &API{cfg: cfg, log: cfg.Logger}
}

// apiError is an error as CloudWatch Logs sends it.
type apiError struct {
	status int
	typ    string
	msg    string
}

func (e *apiError) Error() string { return e.typ + ": " + e.msg }

func invalid(msg string) error {
	return &apiError{http.StatusBadRequest, "InvalidParameterException", msg}
}

type request struct {
	account string
	body    []byte
}

func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := awsapi.NewRequestID()
	w.Header().Set("X-Amzn-RequestId", id)
	op, _ := strings.CutPrefix(r.Header.Get("X-Amz-Target"), TargetPrefix)
	if r.Method != http.MethodPost {
		a.fail(w, id, &apiError{http.StatusBadRequest, "UnknownOperationException", "Unsupported method: " + r.Method})
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		a.fail(w, id, &apiError{http.StatusBadRequest, "SerializationException", "The request body could not be read."})
		return
	}
	if len(body) > maxBody {
		a.fail(w, id, &apiError{http.StatusRequestEntityTooLarge, "RequestEntityTooLargeException", "Request body too large."})
		return
	}
	creds, service, err := a.cfg.Verifier.Verify(r, body)
	if err != nil {
		var se *sigv4.Error
		if errors.As(err, &se) {
			err = &apiError{http.StatusBadRequest, se.Type, se.Message}
		}
		a.fail(w, id, err)
		return
	}
	if service != "logs" {
		a.fail(w, id, &apiError{http.StatusBadRequest, "InvalidSignatureException", "Credential should be scoped to correct service: 'logs'. "})
		return
	}
	if creds.AccountID == "" {
		a.fail(w, id, errors.New("logsapi: credentials without an account id"))
		return
	}
	h := handlers[op]
	if h == nil {
		a.fail(w, id, &apiError{http.StatusBadRequest, "UnknownOperationException", ""})
		return
	}
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	}
	out, err := h(a, &request{account: creds.AccountID, body: body})
	if err != nil {
		a.fail(w, id, err)
		return
	}
	data, err := json.Marshal(out)
	if err != nil {
		a.fail(w, id, err)
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	w.Write(data) // a failed write means the client is gone
}

// fail writes err in the JSON 1.1 error shape: store errors by their
// errdefs class, anything unexpected as a logged, generic 500.
func (a *API) fail(w http.ResponseWriter, id string, err error) {
	var ae *apiError
	if !errors.As(err, &ae) {
		msg := classMessage(err)
		switch {
		case errors.Is(err, errdefs.ErrNotFound):
			ae = &apiError{http.StatusBadRequest, "ResourceNotFoundException", msg}
		case errors.Is(err, errdefs.ErrConflict):
			ae = &apiError{http.StatusBadRequest, "ResourceAlreadyExistsException", msg}
		case errors.Is(err, errdefs.ErrInvalid):
			ae = &apiError{http.StatusBadRequest, "InvalidParameterException", msg}
		case errors.Is(err, errdefs.ErrUnavailable):
			ae = &apiError{http.StatusServiceUnavailable, "ServiceUnavailableException", "The service cannot complete the request."}
		default:
			a.log.Error("logs API request failed", "requestId", id, "err", err)
			ae = &apiError{http.StatusInternalServerError, "ServiceUnavailableException", "The service cannot complete the request."}
		}
	}
	body := map[string]string{"__type": ae.typ}
	if ae.msg != "" {
		body["message"] = ae.msg
	}
	data, _ := json.Marshal(body) // a map of strings always marshals
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-ErrorType", ae.typ)
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	w.WriteHeader(ae.status)
	w.Write(data) // a failed write means the client is gone
}

// classMessage is the text after "<class>: " of a store error.
func classMessage(err error) string {
	s := err.Error()
	for _, c := range []error{errdefs.ErrNotFound, errdefs.ErrConflict, errdefs.ErrInvalid} {
		if m, ok := strings.CutPrefix(s, c.Error()+": "); ok {
			return m
		}
	}
	return s
}
