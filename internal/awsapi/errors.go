package awsapi

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"kindling/internal/config"
	"kindling/internal/errdefs"
)

// Error is an AWS error as it goes on the wire. Code that knows exactly
// which AWS error it means (a SigV4 failure, PreconditionFailedException,
// a throttle with its Reason) returns one; everything else returns errdefs
// classes and WriteError picks the type.
type Error struct {
	// Status is the HTTP status code.
	Status int
	// Type is the AWS error type (X-Amzn-ErrorType), e.g.
	// "ResourceNotFoundException".
	Type string
	// Message is the text for the user.
	Message string
	// Reason is sent as "Reason" when set (TooManyRequestsException).
	Reason string
}

func (e *Error) Error() string { return e.Type + ": " + e.Message }

// The AWS error types Kindling's Lambda API sends.
const (
	TypeResourceNotFound      = "ResourceNotFoundException"
	TypeResourceConflict      = "ResourceConflictException"
	TypeInvalidParameterValue = "InvalidParameterValueException"
	TypeInvalidRequestContent = "InvalidRequestContentException"
	TypeValidation            = "ValidationException"
	TypeRequestEntityTooLarge = "RequestEntityTooLargeException"
	TypeTooManyRequests       = "TooManyRequestsException"
	TypePreconditionFailed    = "PreconditionFailedException"
	TypeAccessDenied          = "AccessDeniedException"
	TypeService               = "ServiceException"
	TypeUnknownOperation      = "UnknownOperationException"
	TypeInvalidSignature      = "InvalidSignatureException"
	TypeUnsupportedMediaType  = "UnsupportedMediaTypeException"
	// SnapStart: a version whose snapshot is being made (409), a failed
	// after-restore hook (400), a restore over its time limit (408).
	TypeSnapStartNotReady = "SnapStartNotReadyException"
	TypeSnapStart         = "SnapStartException"
	TypeSnapStartTimeout  = "SnapStartTimeoutException"
)

// Messages for errors that carry none of their own.
const (
	msgInternal    = "An internal error occurred"
	msgUnavailable = "The service is temporarily unavailable. Please try again."
	msgThrottled   = "Rate Exceeded."
	msgNotFound    = "The resource you requested does not exist."
	msgConflict    = "The resource already exists, or another operation is in progress."
	msgInvalid     = "One of the parameters in the request is not valid."
	msgTooLarge    = "The request payload exceeded the maximum allowed size."

	defaultThrottleReason = "ConcurrentInvocationLimitExceeded"
)

// Header names.
const (
	HeaderRequestID = "X-Amzn-RequestId"
	headerErrorType = "X-Amzn-ErrorType"
)

// lowerMessage lists the types whose modelled message member is "message"
// (the others use "Message"), as Lambda's own responses do. SDKs accept
// either; this keeps the bodies byte-for-byte like Lambda's.
var lowerMessage = map[string]bool{
	TypeInvalidParameterValue:      true,
	TypeInvalidRequestContent:      true,
	TypePreconditionFailed:         true,
	TypeResourceConflict:           true,
	TypeTooManyRequests:            true,
	TypeUnsupportedMediaType:       true,
	TypeValidation:                 true,
	"ResourceNotReadyException":    true,
	"CodeStorageExceededException": true,
	"RequestTooLargeException":     true,
}

// FromError classifies err as the AWS error to send. internal is true when
// err is not a client error and its text must not reach the client (it is
// replaced by a generic message and should be logged).
//
// Mapping: an *Error as is; *config.ValidationError → 400
// ValidationException; *config.AccessDeniedError → 403
// AccessDeniedException; *config.SnapStartNotReadyError → 409
// SnapStartNotReadyException; errdefs.ErrNotFound → 404
// ResourceNotFoundException; ErrConflict → 409 ResourceConflictException;
// ErrInvalid → 400 InvalidParameterValueException; ErrTooLarge → 413
// RequestEntityTooLargeException; ErrThrottled → 429
// TooManyRequestsException; ErrUnavailable → 503 ServiceException (generic
// message); anything else → 500 ServiceException "An internal error
// occurred".
//
// The message of a class error is taken from the error that wraps the class
// directly: its text after "<class>: " when it was made with
// fmt.Errorf("%w: <message>", class), else its whole text (a typed error
// whose Error() is the message, such as codestore's).
func FromError(err error) (e *Error, internal bool) {
	var ae *Error
	if errors.As(err, &ae) {
		return ae, false
	}
	var ve *config.ValidationError
	if errors.As(err, &ve) {
		return &Error{Status: http.StatusBadRequest, Type: TypeValidation, Message: ve.Message}, false
	}
	var ad *config.AccessDeniedError
	if errors.As(err, &ad) {
		return &Error{Status: http.StatusForbidden, Type: TypeAccessDenied, Message: ad.Message}, false
	}
	var snr *config.SnapStartNotReadyError
	if errors.As(err, &snr) {
		return &Error{Status: http.StatusConflict, Type: TypeSnapStartNotReady, Message: snr.Error()}, false
	}
	switch {
	case errors.Is(err, errdefs.ErrNotFound):
		return classError(err, errdefs.ErrNotFound, http.StatusNotFound, TypeResourceNotFound, msgNotFound), false
	case errors.Is(err, errdefs.ErrConflict):
		return classError(err, errdefs.ErrConflict, http.StatusConflict, TypeResourceConflict, msgConflict), false
	case errors.Is(err, errdefs.ErrInvalid):
		return classError(err, errdefs.ErrInvalid, http.StatusBadRequest, TypeInvalidParameterValue, msgInvalid), false
	case errors.Is(err, errdefs.ErrTooLarge):
		return classError(err, errdefs.ErrTooLarge, http.StatusRequestEntityTooLarge, TypeRequestEntityTooLarge, msgTooLarge), false
	case errors.Is(err, errdefs.ErrThrottled):
		e := classError(err, errdefs.ErrThrottled, http.StatusTooManyRequests, TypeTooManyRequests, msgThrottled)
		e.Reason = defaultThrottleReason
		var tr interface{ ThrottleReason() string }
		if errors.As(err, &tr) && tr.ThrottleReason() != "" {
			e.Reason = tr.ThrottleReason()
		}
		return e, false
	case errors.Is(err, errdefs.ErrUnavailable):
		return &Error{Status: http.StatusServiceUnavailable, Type: TypeService, Message: msgUnavailable}, true
	}
	return &Error{Status: http.StatusInternalServerError, Type: TypeService, Message: msgInternal}, true
}

// classError builds the AWS error for a class error (see FromError).
func classError(err, class error, status int, typ, def string) *Error {
	msg, ok := classMessage(err, class)
	if !ok || msg == "" {
		msg = def
	}
	return &Error{Status: status, Type: typ, Message: msg}
}

// classMessage finds the error in err's tree that wraps class directly and
// returns its message.
func classMessage(err, class error) (string, bool) {
	if err == nil || err == class {
		return "", false
	}
	wraps := false
	var children []error
	switch u := err.(type) {
	case interface{ Unwrap() error }:
		if c := u.Unwrap(); c != nil {
			children = []error{c}
		}
	case interface{ Unwrap() []error }:
		children = u.Unwrap()
	}
	for _, c := range children {
		if c == class {
			wraps = true
		}
	}
	if wraps {
		msg := err.Error()
		if msg == class.Error() { // fmt.Errorf("%w", class): no message of its own
			return "", false
		}
		return strings.TrimPrefix(msg, class.Error()+": "), true
	}
	for _, c := range children {
		if msg, ok := classMessage(c, class); ok {
			return msg, true
		}
	}
	return "", false
}

// WriteError sends err as an AWS error (see FromError), logging internal
// errors to log (slog.Default() when nil) with the request id. It sets
// X-Amzn-RequestId when the handler has not.
func WriteError(w http.ResponseWriter, err error) {
	WriteErrorLog(w, err, nil)
}

// WriteErrorLog is WriteError with the logger given.
func WriteErrorLog(w http.ResponseWriter, err error, log *slog.Logger) {
	e, internal := FromError(err)
	h := w.Header()
	if h.Get(HeaderRequestID) == "" {
		h.Set(HeaderRequestID, NewRequestID())
	}
	if internal {
		if log == nil {
			log = slog.Default()
		}
		level := slog.LevelError
		if e.Status == http.StatusServiceUnavailable || errors.Is(err, context.Canceled) {
			level = slog.LevelWarn
		}
		log.Log(context.Background(), level, "request failed", "requestId", h.Get(HeaderRequestID),
			"status", e.Status, "err", err)
	}
	writeAWSError(w, e)
}

// writeAWSError writes e: the status, X-Amzn-ErrorType and a JSON body
// {"Type":"User","message":"..."} (Lambda's REST-JSON error shape; the
// message key's case follows Lambda's model for the type).
func writeAWSError(w http.ResponseWriter, e *Error) {
	fault := "User"
	if e.Status >= 500 {
		fault = "Service"
	}
	body := map[string]string{"Type": fault}
	if lowerMessage[e.Type] {
		body["message"] = e.Message
	} else {
		body["Message"] = e.Message
	}
	if e.Reason != "" {
		body["Reason"] = e.Reason
	}
	data, err := json.Marshal(body)
	if err != nil { // a map of strings always marshals
		data = []byte(`{"Type":"Service","Message":"An internal error occurred"}`)
	}
	h := w.Header()
	h.Set(headerErrorType, e.Type)
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(data)))
	w.WriteHeader(e.Status)
	w.Write(data) // a failed write means the client is gone; nothing to do
}
