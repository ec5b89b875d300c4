package server

import (
	"net/http"
	"strings"

	"kindling/internal/accounts"
)

// serviceMux sends each request to the service it is for. AWS's
// JSON-protocol services (CloudWatch Logs, SQS) name their operation in the
// X-Amz-Target header ("Logs_20140328.GetLogEvents"); Kindling's admin
// endpoint (accounts) has its own path prefix; everything else is the Lambda
// REST API. Each service verifies SigV4 itself, for its own signing name.
type serviceMux struct {
	lambda http.Handler
	// targets maps an X-Amz-Target prefix (up to and including the dot) to
	// its service.
	targets map[string]http.Handler
	// admin serves Kindling's own endpoint under accounts.PathPrefix.
	admin http.Handler
}

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
	}
	m.lambda.ServeHTTP(w, r)
}
