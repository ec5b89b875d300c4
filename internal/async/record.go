package async

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Record is Lambda's invocation record, sent to destinations:
//
//	{"version":"1.0","timestamp":"2019-11-14T18:16:05.568Z",
//	 "requestContext":{"requestId":"...","functionArn":"...:function:NAME:$LATEST",
//	                   "condition":"RetriesExhausted","approximateInvokeCount":3},
//	 "requestPayload":{...},
//	 "responseContext":{"statusCode":200,"executedVersion":"$LATEST","functionError":"Unhandled"},
//	 "responsePayload":{...}}
//
// responseContext and responsePayload are absent when the function never
// ran (an event that expired waiting).
type Record struct {
	Version         string           `json:"version"`
	Timestamp       string           `json:"timestamp"`
	RequestContext  RequestContext   `json:"requestContext"`
	RequestPayload  json.RawMessage  `json:"requestPayload"`
	ResponseContext *ResponseContext `json:"responseContext,omitempty"`
	ResponsePayload json.RawMessage  `json:"responsePayload,omitempty"`
}

// RequestContext is the record's requestContext.
type RequestContext struct {
	RequestID              string    `json:"requestId"`
	FunctionArn            string    `json:"functionArn"`
	Condition              Condition `json:"condition"`
	ApproximateInvokeCount int       `json:"approximateInvokeCount"`
}

// ResponseContext is the record's responseContext.
type ResponseContext struct {
	StatusCode      int    `json:"statusCode"`
	ExecutedVersion string `json:"executedVersion"`
	FunctionError   string `json:"functionError,omitempty"`
}

// recordTimeFormat is the record's timestamp layout (milliseconds, Z).
const recordTimeFormat = "2006-01-02T15:04:05.000Z"

// newRecord builds the record of ev's final attempt. resp is nil when the
// function never ran.
func newRecord(ev *Event, functionARN string, cond Condition, now time.Time, resp *ResponseContext, payload []byte) *Record {
	r := &Record{
		Version:   "1.0",
		Timestamp: now.UTC().Format(recordTimeFormat),
		RequestContext: RequestContext{
			RequestID:              ev.RequestID,
			FunctionArn:            functionARN,
			Condition:              cond,
			ApproximateInvokeCount: ev.State.Invocations,
		},
		RequestPayload: asJSON(ev.Payload),
	}
	if resp != nil {
		r.ResponseContext = resp
		r.ResponsePayload = asJSON(payload)
	}
	return r
}

// asJSON embeds b in a record: as is when it is JSON, as a JSON string
// otherwise, null when empty.
func asJSON(b []byte) json.RawMessage {
	if len(b) == 0 {
		return json.RawMessage("null")
	}
	if json.Valid(b) {
		return json.RawMessage(b)
	}
	s, err := json.Marshal(strings.ToValidUTF8(string(b), "\uFFFD"))
	if err != nil { // a valid UTF-8 string always marshals
		return json.RawMessage("null")
	}
	return s
}

// Attribute is a message attribute of a dead-letter message.
type Attribute struct {
	Name     string
	DataType string // String or Number
	Value    string
}

// maxErrorMessage is how much of the error message a dead-letter message
// carries (Lambda: the first 1 KB).
const maxErrorMessage = 1024

// deadLetterAttributes are the attributes Lambda puts on a dead-letter
// message: RequestID, ErrorCode (the HTTP status of the last attempt) and
// ErrorMessage (the first 1 KB of its error message).
func deadLetterAttributes(requestID string, status int, message string) []Attribute {
	if len(message) > maxErrorMessage {
		cut := maxErrorMessage
		for cut > 0 && !utf8.RuneStart(message[cut]) {
			cut--
		}
		message = message[:cut]
	}
	if message == "" {
		message = "Unknown error"
	}
	return []Attribute{
		{Name: "RequestID", DataType: "String", Value: requestID},
		{Name: "ErrorCode", DataType: "Number", Value: strconv.Itoa(status)},
		{Name: "ErrorMessage", DataType: "String", Value: strings.ToValidUTF8(message, "\uFFFD")},
	}
}

// errorMessage extracts the errorMessage of a function error document, or
// returns the payload itself.
func errorMessage(payload []byte) string {
	var doc struct {
		ErrorMessage string `json:"errorMessage"`
	}
	if json.Unmarshal(payload, &doc) == nil && doc.ErrorMessage != "" {
		return doc.ErrorMessage
	}
	return string(payload)
}
