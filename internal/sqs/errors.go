package sqs

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"kindling/internal/awsapi"
	"kindling/internal/errdefs"
	"kindling/internal/sigv4"
)

// apiError is an SQS error as the JSON protocol sends it:
//
//	HTTP 400
//	X-Amzn-Query-Error: AWS.SimpleQueueService.NonExistentQueue;Sender
//	{"__type":"com.amazonaws.sqs#QueueDoesNotExist","message":"The specified queue does not exist."}
//
// SQS is "query compatible": the SDKs report the code in
// X-Amzn-Query-Error (the one the older query protocol used) as the error
// code, and the __type's shape name picks the modelled error type.
type apiError struct {
	status int
	shape  string // the __type after '#'
	ns     string // the __type's namespace
	query  string // the query-protocol code
	sender bool   // fault: Sender (true) or Receiver
	msg    string
}

func (e *apiError) Error() string { return e.shape + ": " + e.msg }

func newErr(shape, query, msg string) *apiError {
	return &apiError{status: http.StatusBadRequest, shape: shape, ns: "com.amazonaws.sqs", query: query, sender: true, msg: msg}
}

func errQueueDoesNotExist() *apiError {
	return newErr("QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue", "The specified queue does not exist.")
}

func errQueueNameExists(attr string) *apiError {
	return newErr("QueueNameExists", "QueueAlreadyExists",
		"A queue already exists with the same name and a different value for attribute "+attr)
}

func errReceiptHandleIsInvalid(handle string) *apiError {
	return newErr("ReceiptHandleIsInvalid", "ReceiptHandleIsInvalid",
		"The input receipt handle \""+clip(handle)+"\" is not a valid receipt handle.")
}

func errMessageNotInflight() *apiError {
	return newErr("MessageNotInflight", "AWS.SimpleQueueService.MessageNotInflight", "Message does not exist or is not available for visibility timeout change.")
}

func errInvalidAttributeName(msg string) *apiError {
	return newErr("InvalidAttributeName", "InvalidAttributeName", msg)
}

func errInvalidAttributeValue(msg string) *apiError {
	return newErr("InvalidAttributeValue", "InvalidAttributeValue", msg)
}

func errInvalidParameterValue(msg string) *apiError {
	return newErr("InvalidParameterValueException", "InvalidParameterValue", msg)
}

func errMissingParameter(name string) *apiError {
	return newErr("MissingRequiredParameterException", "MissingParameter",
		"The request must contain the parameter "+name+".")
}

func errInvalidMessageContents(msg string) *apiError {
	return newErr("InvalidMessageContents", "InvalidMessageContents", msg)
}

func errUnsupported(msg string) *apiError {
	return newErr("UnsupportedOperation", "AWS.SimpleQueueService.UnsupportedOperation", msg)
}

func errTooManyEntries() *apiError {
	return newErr("TooManyEntriesInBatchRequest", "AWS.SimpleQueueService.TooManyEntriesInBatchRequest",
		"Maximum number of entries per request are 10.")
}

func errEmptyBatch() *apiError {
	return newErr("EmptyBatchRequest", "AWS.SimpleQueueService.EmptyBatchRequest",
		"There should be at least one SendMessageBatchRequestEntry in the request.")
}

func errInvalidAction(target string) *apiError {
	e := newErr("UnknownOperationException", "InvalidAction", "The action "+clip(target)+" is not valid for this web service.")
	e.ns = "com.amazon.coral.service"
	return e
}

func errMalformed(msg string) *apiError {
	e := newErr("SerializationException", "MalformedQueryString", msg)
	e.ns = "com.amazon.coral.service"
	return e
}

// queryCodes maps SigV4 failures to the query codes SQS reports.
var queryCodes = map[string]string{
	"UnrecognizedClientException":         "InvalidClientTokenId",
	"InvalidSignatureException":           "SignatureDoesNotMatch",
	"IncompleteSignatureException":        "IncompleteSignature",
	"MissingAuthenticationTokenException": "MissingAuthenticationToken",
}

// fromError converts err to the SQS error to send; internal is true when
// its text must not reach the client.
func fromError(err error) (e *apiError, internal bool) {
	if errors.As(err, &e) {
		return e, false
	}
	var se *sigv4.Error
	if errors.As(err, &se) {
		q := queryCodes[se.Type]
		if q == "" {
			q = se.Type
		}
		return &apiError{status: se.Status, shape: se.Type, ns: "com.amazon.coral.service", query: q, sender: true, msg: se.Message}, false
	}
	switch {
	case errors.Is(err, errdefs.ErrNotFound):
		return errQueueDoesNotExist(), false
	case errors.Is(err, errdefs.ErrUnavailable):
		return &apiError{status: http.StatusServiceUnavailable, shape: "ServiceUnavailable", ns: "com.amazon.coral.service",
			query: "ServiceUnavailable", msg: "Service is unable to handle request."}, true
	}
	return &apiError{status: http.StatusInternalServerError, shape: "InternalFailure", ns: "com.amazon.coral.service",
		query: "InternalFailure", msg: "The request processing has failed because of an unknown error, exception or failure."}, true
}

// writeError answers err, logging internal errors.
func writeError(w http.ResponseWriter, err error, log *slog.Logger) {
	e, internal := fromError(err)
	if internal {
		log.Error("sqs: request failed", "requestId", w.Header().Get(awsapi.HeaderRequestID), "err", err)
	}
	fault := "Receiver"
	if e.sender {
		fault = "Sender"
	}
	body, _ := json.Marshal(map[string]string{"__type": e.ns + "#" + e.shape, "message": e.msg}) // strings always marshal
	h := w.Header()
	h.Set("X-Amzn-Query-Error", e.query+";"+fault)
	h.Set("Content-Type", contentType)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(e.status)
	w.Write(body) // a failed write means the client is gone
}
