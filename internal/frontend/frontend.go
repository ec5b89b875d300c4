// Package frontend serves the Lambda REST API (version 2015-03-31): the
// function control plane (CreateFunction, GetFunction,
// GetFunctionConfiguration, ListFunctions, UpdateFunctionConfiguration,
// UpdateFunctionCode, DeleteFunction), versions and aliases
// (PublishVersion, ListVersionsByFunction, CreateAlias, GetAlias,
// UpdateAlias, DeleteAlias, ListAliases; versions.go, aliases.go) and the
// synchronous Invoke path, on $LATEST, a version or an alias.
//
// Every request but GET /healthz goes through the same steps, in this
// order: route (method and path; an unknown one is answered at once),
// read the body up to the operation's limit (413 beyond it), verify the
// SigV4 signature over it (the credentials name the caller's account, and
// every lookup is scoped to that account), validate, act, answer. Errors
// of every step leave through awsapi.WriteErrorLog, the one place they
// become AWS errors. Every response carries X-Amzn-RequestId; for Invoke
// it is also the invocation's id.
//
// The frontend is stateless: it keeps nothing between requests, so any
// number can serve behind a load balancer. Its handlers run on net/http's
// goroutines, one per request, and share only the Config's components,
// which are safe for concurrent use.
//
// What Kindling does not implement is refused with a clear
// InvalidParameterValueException rather than silently ignored: S3 and
// container-image code, VPC, layers, file systems, KMS
// keys, code signing, active tracing, JSON logs. SnapStart (ApplyOn
// PublishedVersions) is accepted: versions published on a server whose
// sandboxes can be snapshotted (Config.SnapStart) start Pending while their
// snapshot is made, others run with normal cold starts (OptimizationStatus
// Off). Event invocations are queued (async.go) for the pollers of
// internal/async; their settings are the event invoke config API
// (eventconfig.go, API version 2019-09-25). Reserved concurrency, tags and
// GetAccountSettings are in limits.go.
package frontend

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"kindling/internal/awsapi"
	"kindling/internal/clock"
	"kindling/internal/codestore"
	"kindling/internal/config"
	"kindling/internal/invoke"
	"kindling/internal/sigv4"
)

// CodeStore is what the frontend needs of the code store
// (*codestore.Store): storing a validated deployment package.
type CodeStore interface {
	Put(zip []byte) (codestore.Code, error)
	// Zip returns a stored package (for GetFunction's Code.Location).
	Zip(key string) ([]byte, error)
}

// Config holds the frontend's components. All are required but Ready
// (nil: always ready) and Logger (nil: slog.Default()).
type Config struct {
	// Verifier checks SigV4 signatures and maps access keys to accounts.
	Verifier *sigv4.Verifier
	// Functions is the config service.
	Functions *config.Store
	// Code stores deployment packages.
	Code CodeStore
	// Invoker runs synchronous invocations.
	Invoker invoke.Invoker
	// Region is the region this endpoint serves, used in ARNs.
	Region string
	// Clock gives LastModified times.
	Clock clock.Clock
	// Logger receives errors that are not the client's fault.
	Logger *slog.Logger
	// Ready reports whether the server can take requests (GET /healthz).
	Ready func() bool
	// Events queues asynchronous invocations (nil: Event invocations are
	// refused).
	Events EventQueue
	// EventConfigs stores event invoke configurations (nil: that API is
	// refused).
	EventConfigs *config.EventConfigs
	// Limits holds the concurrency limits (limits.go; nil: the
	// concurrency API is refused and GetAccountSettings reports none).
	Limits Limits
	// Retire, when set, is told the ARN of each deleted function
	// (unqualified) or version (qualified) so that its environments go at
	// once instead of at the end of their keep-alive.
	Retire func(arn string)
	// Provisioner keeps provisioned environments (the assignment service;
	// nil: provisioned concurrency is refused).
	Provisioner Provisioner
	// SnapStart makes the snapshots of SnapStart versions (nil: not
	// available; versions with ApplyOn PublishedVersions are published
	// Active with OptimizationStatus Off).
	SnapStart SnapStarter
}

// SnapStarter makes and deletes the snapshots of SnapStart versions.
type SnapStarter interface {
	// Available reports whether this server's sandboxes can be snapshotted.
	Available() bool
	// Prepare makes the snapshot of version v (Pending, SnapStartOn) in the
	// background, then moves the version to Active or Failed through the
	// config store. It returns at once.
	Prepare(v *config.Function)
	// Forget deletes the snapshot of a deleted version (version != "") or
	// the snapshots of every version of a deleted function (version == "").
	Forget(ctx context.Context, account, name, version string) error
}

// Frontend is the Lambda API's http.Handler.
type Frontend struct {
	cfg Config
	log *slog.Logger
	// verify authenticates a request; tests replace it.
	verify func(r *http.Request, body []byte) (sigv4.Credentials, string, error)
}

// New returns a Frontend. A nil Verifier refuses every request.
func New(cfg Config) *Frontend {
	f := &Frontend{cfg: cfg, log: cfg.Logger}
	if f.log == nil {
		f.log = slog.Default()
	}
	if cfg.Verifier != nil {
		f.verify = cfg.Verifier.Verify
	} else {
		f.verify = func(*http.Request, []byte) (sigv4.Credentials, string, error) {
			return sigv4.Credentials{}, "", &awsapi.Error{Status: http.StatusForbidden,
				Type: "UnrecognizedClientException", Message: "The security token included in the request is invalid."}
		}
	}
	return f
}

// The operations, and what each may read.
type op uint8

const (
	opCreate op = iota + 1
	opList
	opGet
	opGetConfig
	opDownloadCode
	opUpdateConfig
	opUpdateCode
	opDelete
	opInvoke
	opPublishVersion
	opListVersions
	opCreateAlias
	opListAliases
	opGetAlias
	opUpdateAlias
	opDeleteAlias
	opPutEventConfig
	opUpdateEventConfig
	opGetEventConfig
	opDeleteEventConfig
	opListEventConfigs
	opPutConcurrency
	opGetConcurrency
	opDeleteConcurrency
	opTagResource
	opUntagResource
	opListTags
	opGetAccountSettings
	opPutProvisioned
	opGetProvisioned
	opDeleteProvisioned
	opListProvisioned
)

var opNames = [...]string{
	opCreate: "CreateFunction", opList: "ListFunctions", opGet: "GetFunction",
	opGetConfig: "GetFunctionConfiguration", opDownloadCode: "GetFunctionCode", opUpdateConfig: "UpdateFunctionConfiguration",
	opUpdateCode: "UpdateFunctionCode", opDelete: "DeleteFunction", opInvoke: "Invoke",
	opPublishVersion: "PublishVersion", opListVersions: "ListVersionsByFunction",
	opCreateAlias: "CreateAlias", opListAliases: "ListAliases", opGetAlias: "GetAlias",
	opUpdateAlias: "UpdateAlias", opDeleteAlias: "DeleteAlias",
	opPutEventConfig: "PutFunctionEventInvokeConfig", opUpdateEventConfig: "UpdateFunctionEventInvokeConfig",
	opGetEventConfig: "GetFunctionEventInvokeConfig", opDeleteEventConfig: "DeleteFunctionEventInvokeConfig",
	opListEventConfigs: "ListFunctionEventInvokeConfigs",
	opPutConcurrency:   "PutFunctionConcurrency", opGetConcurrency: "GetFunctionConcurrency",
	opDeleteConcurrency: "DeleteFunctionConcurrency", opTagResource: "TagResource",
	opUntagResource: "UntagResource", opListTags: "ListTags", opGetAccountSettings: "GetAccountSettings",
	opPutProvisioned: "PutProvisionedConcurrencyConfig", opGetProvisioned: "GetProvisionedConcurrencyConfig",
	opDeleteProvisioned: "DeleteProvisionedConcurrencyConfig", opListProvisioned: "ListProvisionedConcurrencyConfigs",
}

// Body limits.
const (
	// maxInvokePayload is Lambda's synchronous request payload limit.
	maxInvokePayload = 6291456
	// maxCodeRequest bounds CreateFunction and UpdateFunctionCode bodies:
	// a base64 zip of codestore.MaxZipSize plus room for the other members.
	maxCodeRequest = codestore.MaxRequestSize + 1<<20
	// maxSmallRequest bounds the bodies of the other operations.
	maxSmallRequest = 1 << 20
)

func (o op) String() string { return opNames[o] }

func (o op) bodyLimit() int64 {
	switch o {
	case opInvoke:
		return maxInvokePayload
	case opCreate, opUpdateCode:
		return maxCodeRequest
	}
	return maxSmallRequest
}

// tooLarge is the error for a body over o's limit, in Lambda's words.
func (o op) tooLarge() error {
	switch o {
	case opInvoke:
		return &awsapi.Error{Status: http.StatusRequestEntityTooLarge, Type: awsapi.TypeRequestEntityTooLarge,
			Message: "Request must be smaller than 6291456 bytes for the InvokeFunction operation"}
	case opCreate, opUpdateCode:
		return codestore.TooLargeError(o.String())
	}
	return &awsapi.Error{Status: http.StatusRequestEntityTooLarge, Type: awsapi.TypeRequestEntityTooLarge,
		Message: "Request must be smaller than 1048576 bytes for the " + o.String() + " operation"}
}

const apiPrefix = "/2015-03-31/functions"

// route maps a request to an operation and the (unescaped) FunctionName
// path label. ok is false for anything Kindling does not serve.
func route(r *http.Request) (o op, name string, ok bool) {
	p := r.URL.EscapedPath()
	if o, name, ok := routeEventConfig(r, p); ok {
		return o, name, true
	}
	if o, name, ok := routeLimits(r, p); ok {
		return o, name, true
	}
	if o, name, ok := routeCodeDownload(r, p); ok {
		return o, name, true
	}
	rest, found := strings.CutPrefix(p, apiPrefix)
	if !found {
		return 0, "", false
	}
	if rest == "" || rest == "/" {
		switch r.Method {
		case http.MethodPost:
			return opCreate, "", true
		case http.MethodGet:
			return opList, "", true
		}
		return 0, "", false
	}
	if rest[0] != '/' {
		return 0, "", false
	}
	rest = rest[1:]
	label, sub, _ := strings.Cut(rest, "/")
	name, err := url.PathUnescape(label)
	if err != nil || name == "" {
		return 0, "", false
	}
	switch {
	case sub == "" && r.Method == http.MethodGet:
		return opGet, name, true
	case sub == "" && r.Method == http.MethodDelete:
		return opDelete, name, true
	case sub == "configuration" && r.Method == http.MethodGet:
		return opGetConfig, name, true
	case sub == "configuration" && r.Method == http.MethodPut:
		return opUpdateConfig, name, true
	case sub == "code" && r.Method == http.MethodPut:
		return opUpdateCode, name, true
	case sub == "invocations" && r.Method == http.MethodPost:
		return opInvoke, name, true
	case sub == "versions" && r.Method == http.MethodPost:
		return opPublishVersion, name, true
	case sub == "versions" && r.Method == http.MethodGet:
		return opListVersions, name, true
	case sub == "aliases" && r.Method == http.MethodPost:
		return opCreateAlias, name, true
	case sub == "aliases" && r.Method == http.MethodGet:
		return opListAliases, name, true
	case strings.HasPrefix(sub, "aliases/") && !strings.Contains(sub[len("aliases/"):], "/"):
		switch r.Method {
		case http.MethodGet:
			return opGetAlias, name, true
		case http.MethodPut:
			return opUpdateAlias, name, true
		case http.MethodDelete:
			return opDeleteAlias, name, true
		}
	}
	return 0, "", false
}

// request is one authenticated API call.
type request struct {
	op      op
	name    string // the FunctionName label, unescaped, not yet validated
	id      string // request id
	account string
	creds   sigv4.Credentials // the caller's (to presign Code.Location)
	body    []byte
	r       *http.Request
}

// ServeHTTP serves the Lambda API.
func (f *Frontend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := awsapi.NewRequestID()
	w.Header().Set(awsapi.HeaderRequestID, id)
	if r.URL.Path == "/healthz" && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		f.health(w)
		return
	}
	o, name, ok := route(r)
	if !ok {
		f.fail(w, &awsapi.Error{Status: http.StatusNotFound, Type: awsapi.TypeUnknownOperation,
			Message: "Unknown operation: " + r.Method + " " + shorten(r.URL.EscapedPath())})
		return
	}
	body, err := readBody(r, o.bodyLimit())
	if err != nil {
		if errors.Is(err, errBodyTooLarge) {
			err = o.tooLarge()
		}
		f.fail(w, err)
		return
	}
	creds, service, err := f.verify(r, body)
	if err != nil {
		f.fail(w, authError(err))
		return
	}
	if service != "lambda" {
		f.fail(w, &awsapi.Error{Status: http.StatusForbidden, Type: awsapi.TypeInvalidSignature,
			Message: "Credential should be scoped to correct service: 'lambda'. "})
		return
	}
	if creds.AccountID == "" {
		f.fail(w, errors.New("frontend: credentials without an account id"))
		return
	}
	req := &request{op: o, name: name, id: id, account: creds.AccountID, creds: creds, body: body, r: r}
	switch o {
	case opInvoke:
		f.invoke(w, req)
	case opCreate:
		f.create(w, req)
	case opList:
		f.list(w, req)
	case opDownloadCode:
		f.downloadCode(w, req)
	case opGet, opGetConfig:
		f.get(w, req)
	case opUpdateConfig:
		f.updateConfig(w, req)
	case opUpdateCode:
		f.updateCode(w, req)
	case opDelete:
		f.delete(w, req)
	case opPublishVersion:
		f.publishVersion(w, req)
	case opListVersions:
		f.listVersions(w, req)
	case opCreateAlias:
		f.createAlias(w, req)
	case opListAliases:
		f.listAliases(w, req)
	case opGetAlias:
		f.getAlias(w, req)
	case opUpdateAlias:
		f.updateAlias(w, req)
	case opDeleteAlias:
		f.deleteAlias(w, req)
	case opPutEventConfig, opUpdateEventConfig, opGetEventConfig, opDeleteEventConfig, opListEventConfigs:
		f.eventConfig(w, req)
	case opPutConcurrency, opGetConcurrency, opDeleteConcurrency:
		f.concurrency(w, req)
	case opTagResource, opUntagResource, opListTags:
		f.tags(w, req)
	case opGetAccountSettings:
		f.accountSettings(w, req)
	case opPutProvisioned, opGetProvisioned, opDeleteProvisioned, opListProvisioned:
		f.provisioned(w, req)
	}
}

func (f *Frontend) health(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if f.cfg.Ready != nil && !f.cfg.Ready() {
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, "not ready\n") // a failed write means the client is gone
		return
	}
	io.WriteString(w, "ok\n") // a failed write means the client is gone
}

// fail answers err as an AWS error.
func (f *Frontend) fail(w http.ResponseWriter, err error) {
	awsapi.WriteErrorLog(w, err, f.log)
}

// authError converts a verification failure into the AWS error it carries.
func authError(err error) error {
	var se *sigv4.Error
	if errors.As(err, &se) {
		return &awsapi.Error{Status: se.Status, Type: se.Type, Message: se.Message}
	}
	return err
}

var errBodyTooLarge = errors.New("request body over the operation's limit")

// readBody reads the whole body, at most limit bytes, into one buffer sized
// by Content-Length when the client sent one.
func readBody(r *http.Request, limit int64) ([]byte, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	if r.ContentLength > limit {
		return nil, errBodyTooLarge
	}
	if r.ContentLength >= 0 {
		buf := make([]byte, r.ContentLength)
		if _, err := io.ReadFull(r.Body, buf); err != nil {
			return nil, &awsapi.Error{Status: http.StatusBadRequest, Type: awsapi.TypeInvalidRequestContent,
				Message: "The request body is shorter than its Content-Length."}
		}
		return buf, nil
	}
	var b bytes.Buffer
	n, err := b.ReadFrom(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, &awsapi.Error{Status: http.StatusBadRequest, Type: awsapi.TypeInvalidRequestContent,
			Message: "The request body could not be read."}
	}
	if n > limit {
		return nil, errBodyTooLarge
	}
	return b.Bytes(), nil
}

// shorten bounds what is echoed from a request in a message.
func shorten(s string) string {
	const max = 256
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}
