package server

import (
	"bytes"
	"io"
	"net/http"
	"strings"

	"kindling/internal/accounts"
	"kindling/internal/sqs"
)

// serviceMux sends each request to the service it is for. AWS's
// JSON-protocol services (CloudWatch Logs, SQS) name their operation in the
// X-Amz-Target header ("Logs_20140328.GetLogEvents"); SQS's older query
// protocol (form-encoded POSTs with an Action parameter, as older AWS CLIs
// and boto3 send) goes to SQS's query handler; Kindling's admin endpoint
// (accounts) has its own path prefix; everything else is the Lambda REST
// API. Each service verifies SigV4 itself, for its own signing name.
type serviceMux struct {
	lambda http.Handler
	// targets maps an X-Amz-Target prefix (up to and including the dot) to
	// its service.
	targets map[string]http.Handler
	// admin serves Kindling's own endpoint under accounts.PathPrefix.
	admin http.Handler
}

// queryServer is a service that also serves SQS's query protocol.
type queryServer interface {
	ServeQuery(http.ResponseWriter, *http.Request)
}

// maxQueryPeek bounds how much of a form body the mux reads to find its
// Action (SQS's own request limit).
const maxQueryPeek = 8 << 20

func (m *serviceMux) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if m.admin != nil && strings.HasPrefix(r.URL.Path, accounts.PathPrefix) {
		m.admin.ServeHTTP(w, r)
		return
	}
	if t := r.Header.Get("X-Amz-Target"); t != "" {
		if prefix, _, ok := strings.Cut(t, "."); ok {
			if h := m.targets[prefix+"."]; h != nil {
				h.ServeHTTP(w, r)
				return
			}
		}
	} else if sqs.IsQueryRequest(r) && m.serveQuery(w, r) {
		// The method and content type are checked first: a Lambda
		// request (never a form) costs no body read.
		return
	}
	m.lambda.ServeHTTP(w, r)
}

// serveQuery serves r with SQS's query handler when its form body has an
// Action; otherwise it restores the body for the next handler and returns
// false.
func (m *serviceMux) serveQuery(w http.ResponseWriter, r *http.Request) bool {
	qs, ok := m.targets[sqs.TargetPrefix].(queryServer)
	if !ok {
		return false
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxQueryPeek+1))
	// Whatever was read goes back in front of the rest, so that the
	// handler sees the body whole.
	r.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(body), r.Body), r.Body}
	if err != nil || len(body) > maxQueryPeek || sqs.FormAction(body) == "" {
		return false
	}
	qs.ServeQuery(w, r)
	return true
}
