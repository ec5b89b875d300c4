package accounts

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"kindling/internal/awsapi"
	"kindling/internal/sigv4"
)

// The admin endpoint, Kindling's own (no AWS service has it):
//
//	POST /kindling/accounts  {"Name":"NAME"}  -> 201 the Account, with its secret
//	GET  /kindling/accounts                   -> 200 {"Accounts":[...]} without secrets
//	GET  /kindling/<report>                   -> 200 one of API.Reports (e.g. snapshots)
//
// Requests are signed with SigV4 for the service "kindling" by the root
// account's credentials; any other account gets AccessDeniedException.
// The user CLI's `kindling account` commands call it.

// PathPrefix is where the admin endpoint is served.
const PathPrefix = "/kindling/"

// ServiceName is the SigV4 signing name of the admin endpoint.
const ServiceName = "kindling"

const accountsPath = PathPrefix + "accounts"

// maxBody bounds admin request bodies.
const maxBody = 64 << 10

// API is the admin endpoint's http.Handler.
type API struct {
	Store    *Store
	Verifier *sigv4.Verifier
	// RootAccount is the only account allowed.
	RootAccount string
	Logger      *slog.Logger
	// Reports are read-only views of the server served under PathPrefix
	// by name (GET only), e.g. "snapshots"; each returns a JSON value.
	Reports map[string]func(r *http.Request) (any, error)
}

// CreateInput is the body of a create request.
type CreateInput struct {
	Name string `json:"Name"`
}

// Output is an account as the endpoint answers it.
type Output struct {
	AccountID       string `json:"AccountId"`
	Name            string `json:"Name"`
	AccessKeyID     string `json:"AccessKeyId"`
	SecretAccessKey string `json:"SecretAccessKey,omitempty"`
	Created         string `json:"Created"`
}

// ListOutput is the body of a list answer.
type ListOutput struct {
	Accounts []Output `json:"Accounts"`
}

func output(a Account) Output {
	return Output{AccountID: a.ID, Name: a.Name, AccessKeyID: a.AccessKeyID, SecretAccessKey: a.SecretAccessKey,
		Created: a.Created.Format("2006-01-02T15:04:05Z")}
}

func (h *API) fail(w http.ResponseWriter, err error) { awsapi.WriteErrorLog(w, err, h.Logger) }

// ServeHTTP serves the admin endpoint.
func (h *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set(awsapi.HeaderRequestID, awsapi.NewRequestID())
	report := h.Reports[strings.TrimPrefix(r.URL.Path, PathPrefix)]
	if report != nil && r.Method != http.MethodGet {
		report = nil
	}
	if report == nil && (r.URL.Path != accountsPath || (r.Method != http.MethodPost && r.Method != http.MethodGet)) {
		h.fail(w, &awsapi.Error{Status: http.StatusNotFound, Type: awsapi.TypeUnknownOperation,
			Message: "Unknown operation: " + r.Method + " " + r.URL.Path})
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil || len(body) > maxBody {
		h.fail(w, &awsapi.Error{Status: http.StatusRequestEntityTooLarge, Type: awsapi.TypeRequestEntityTooLarge,
			Message: "Request must be smaller than " + strconv.Itoa(maxBody) + " bytes"})
		return
	}
	creds, service, err := h.Verifier.Verify(r, body)
	if err != nil {
		var se *sigv4.Error
		if errors.As(err, &se) {
			err = &awsapi.Error{Status: se.Status, Type: se.Type, Message: se.Message}
		}
		h.fail(w, err)
		return
	}
	if service != ServiceName {
		h.fail(w, &awsapi.Error{Status: http.StatusForbidden, Type: awsapi.TypeInvalidSignature,
			Message: "Credential should be scoped to correct service: '" + ServiceName + "'. "})
		return
	}
	if creds.AccountID != h.RootAccount {
		h.fail(w, &awsapi.Error{Status: http.StatusForbidden, Type: awsapi.TypeAccessDenied,
			Message: "Only the root account may manage accounts."})
		return
	}
	if report != nil {
		out, err := report(r)
		if err != nil {
			h.fail(w, err)
			return
		}
		h.write(w, http.StatusOK, out)
		return
	}
	if r.Method == http.MethodGet {
		out := ListOutput{Accounts: []Output{}}
		for _, a := range h.Store.List() {
			out.Accounts = append(out.Accounts, output(a))
		}
		h.write(w, http.StatusOK, out)
		return
	}
	var in CreateInput
	if err := json.Unmarshal(body, &in); err != nil {
		h.fail(w, &awsapi.Error{Status: http.StatusBadRequest, Type: awsapi.TypeInvalidRequestContent,
			Message: "Could not parse request body into json."})
		return
	}
	a, err := h.Store.Create(r.Context(), in.Name)
	if err != nil {
		h.fail(w, err)
		return
	}
	h.write(w, http.StatusCreated, output(a))
}

func (h *API) write(w http.ResponseWriter, status int, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		h.fail(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	w.WriteHeader(status)
	w.Write(data) // a failed write means the client is gone
}
