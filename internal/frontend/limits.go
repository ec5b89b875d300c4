package frontend

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"kindling/internal/codestore"
	"kindling/internal/config"
)

// Concurrency, tags and account settings:
//
//	PUT    /2017-10-31/functions/{FunctionName}/concurrency  PutFunctionConcurrency
//	DELETE /2017-10-31/functions/{FunctionName}/concurrency  DeleteFunctionConcurrency
//	GET    /2019-09-30/functions/{FunctionName}/concurrency  GetFunctionConcurrency
//	POST   /2017-03-31/tags/{ARN}                            TagResource
//	DELETE /2017-03-31/tags/{ARN}?tagKeys=K&tagKeys=...      UntagResource
//	GET    /2017-03-31/tags/{ARN}                            ListTags
//	GET    /2016-08-19/account-settings/                     GetAccountSettings
//
// and provisioned concurrency (provisioned.go).
//
// A reservation is stored on the function's $LATEST record (config) and
// enforced by the router's limiter; the frontend changes the limiter first
// (which checks the unreserved floor atomically) and undoes that when the
// store refuses.

// Limits is what the frontend needs of the router's concurrency limiter
// (*router.Limiter).
type Limits interface {
	// Reserve sets (n >= 0) or clears (n < 0) a function's reservation;
	// errdefs.ErrInvalid when it would take the account's unreserved
	// concurrency below the floor.
	Reserve(account, function string, n int) error
	// AccountLimits returns the account's concurrency limit and its
	// unreserved part.
	AccountLimits(account string) (limit, unreserved int)
	// Provision sets a function's total provisioned concurrency;
	// errdefs.ErrInvalid when over its reservation or the floor (with
	// check).
	Provision(account, function string, total int, check bool) error
}

// Lambda's tag limits.
const (
	maxTagKeyLen   = 128
	maxTagValueLen = 256
)

// routeLimits maps the requests listed above (escaped path p).
func routeLimits(r *http.Request, p string) (o op, name string, ok bool) {
	if p == "/2016-08-19/account-settings/" || p == "/2016-08-19/account-settings" {
		return opGetAccountSettings, "", r.Method == http.MethodGet
	}
	if rest, found := strings.CutPrefix(p, "/2017-03-31/tags/"); found {
		arn, err := url.PathUnescape(rest)
		if err != nil || arn == "" {
			return 0, "", false
		}
		switch r.Method {
		case http.MethodPost:
			return opTagResource, arn, true
		case http.MethodDelete:
			return opUntagResource, arn, true
		case http.MethodGet:
			return opListTags, arn, true
		}
		return 0, "", false
	}
	var rest string
	var found bool
	method := ""
	if rest, found = strings.CutPrefix(p, "/2017-10-31/functions/"); found {
		method = r.Method
		if method != http.MethodPut && method != http.MethodDelete {
			return 0, "", false
		}
	} else if rest, found = strings.CutPrefix(p, "/2019-09-30/functions/"); found {
		if o, name, ok := routeProvisioned(r, rest); ok {
			return o, name, true
		}
		method = r.Method
		if method != http.MethodGet {
			return 0, "", false
		}
	} else {
		return 0, "", false
	}
	label, sub, _ := strings.Cut(rest, "/")
	name, err := url.PathUnescape(label)
	if err != nil || name == "" || sub != "concurrency" {
		return 0, "", false
	}
	switch method {
	case http.MethodPut:
		return opPutConcurrency, name, true
	case http.MethodDelete:
		return opDeleteConcurrency, name, true
	}
	return opGetConcurrency, name, true
}

type concurrencyBody struct {
	ReservedConcurrentExecutions *int `json:"ReservedConcurrentExecutions,omitempty"`
}

// concurrency serves Put, Get and DeleteFunctionConcurrency.
func (f *Frontend) concurrency(w http.ResponseWriter, req *request) {
	if f.cfg.Limits == nil {
		f.fail(w, invalidParam("Concurrency limits are not enabled on this server."))
		return
	}
	ref, err := config.ParseFunctionName(req.name, config.RuleManage)
	if err == nil {
		err = ref.Resolve(req.account, f.cfg.Region, req.op.String())
	}
	if err != nil {
		f.fail(w, err)
		return
	}
	ctx := req.r.Context()
	switch req.op {
	case opGetConcurrency:
		fn, err := f.cfg.Functions.Get(ctx, req.account, ref.Name)
		if err != nil {
			f.fail(w, err)
			return
		}
		f.writeJSON(w, http.StatusOK, concurrencyBody{ReservedConcurrentExecutions: fn.ReservedConcurrency})
	case opDeleteConcurrency:
		fn, err := f.cfg.Functions.SetReservedConcurrency(ctx, req.account, ref.Name, nil)
		if err != nil {
			f.fail(w, err)
			return
		}
		f.cfg.Limits.Reserve(req.account, fn.Name, -1) //nolint:errcheck // clearing cannot fail
		w.WriteHeader(http.StatusNoContent)
	case opPutConcurrency:
		var in concurrencyBody
		if err := decodeJSON(req.body, &in); err != nil {
			f.fail(w, err)
			return
		}
		n := in.ReservedConcurrentExecutions
		if n == nil {
			f.fail(w, config.NewValidationError(config.Violation("null", "reservedConcurrentExecutions", "Member must not be null")))
			return
		}
		if *n < 0 {
			f.fail(w, config.NewValidationError(config.Violation(fmt.Sprint(*n), "reservedConcurrentExecutions",
				"Member must have value greater than or equal to 0")))
			return
		}
		old, err := f.cfg.Functions.Get(ctx, req.account, ref.Name)
		if err != nil {
			f.fail(w, err)
			return
		}
		if err := f.cfg.Limits.Reserve(req.account, ref.Name, *n); err != nil {
			f.fail(w, err)
			return
		}
		if _, err := f.cfg.Functions.SetReservedConcurrency(ctx, req.account, ref.Name, n); err != nil {
			undo := -1
			if old.ReservedConcurrency != nil {
				undo = *old.ReservedConcurrency
			}
			f.cfg.Limits.Reserve(req.account, ref.Name, undo) //nolint:errcheck // restores what was accepted before
			f.fail(w, err)
			return
		}
		f.writeJSON(w, http.StatusOK, concurrencyBody{ReservedConcurrentExecutions: n})
	}
}

// tagTarget resolves the Resource ARN of a tag operation to a function of
// the caller's account.
func (f *Frontend) tagTarget(req *request) (config.FunctionRef, error) {
	ref, err := config.ParseFunctionName(req.name, config.RuleManage)
	if err != nil || ref.Account == "" {
		return ref, config.NewValidationError(config.Violation(shorten(req.name), "resource",
			"Member must satisfy regular expression pattern: arn:(aws[a-zA-Z-]*):lambda:[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\\d{1}:\\d{12}:(function:[a-zA-Z0-9-_]+(:(\\$LATEST|[a-zA-Z0-9-_]+))?|layer:[a-zA-Z0-9-_]+|code-signing-config:csc-[a-z0-9]{17}|event-source-mapping:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"))
	}
	if err := ref.ResolveQualified(req.account, f.cfg.Region, req.op.String()); err != nil {
		return ref, err
	}
	if ref.Qualifier != "" {
		return ref, invalidParam("Tags are not supported on function versions or aliases: %s", shorten(req.name))
	}
	return ref, nil
}

type tagsBody struct {
	Tags map[string]string `json:"Tags"`
}

// tags serves TagResource, UntagResource and ListTags.
func (f *Frontend) tags(w http.ResponseWriter, req *request) {
	ref, err := f.tagTarget(req)
	if err != nil {
		f.fail(w, err)
		return
	}
	ctx := req.r.Context()
	switch req.op {
	case opListTags:
		fn, err := f.cfg.Functions.Get(ctx, req.account, ref.Name)
		if err != nil {
			f.fail(w, err)
			return
		}
		tags := fn.Tags
		if tags == nil {
			tags = map[string]string{}
		}
		f.writeJSON(w, http.StatusOK, tagsBody{Tags: tags})
	case opTagResource:
		var in tagsBody
		if err := decodeJSON(req.body, &in); err != nil {
			f.fail(w, err)
			return
		}
		if in.Tags == nil {
			f.fail(w, config.NewValidationError(config.Violation("null", "tags", "Member must not be null")))
			return
		}
		if err := checkTags(in.Tags); err != nil {
			f.fail(w, err)
			return
		}
		_, err := f.cfg.Functions.UpdateTags(ctx, req.account, ref.Name, func(tags map[string]string) error {
			for k, v := range in.Tags {
				tags[k] = v
			}
			if len(tags) > maxTags {
				return invalidParam("A function can have at most %d tags.", maxTags)
			}
			return nil
		})
		if err != nil {
			f.fail(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	case opUntagResource:
		keys := req.r.URL.Query()["tagKeys"]
		if len(keys) == 0 {
			f.fail(w, config.NewValidationError(config.Violation("null", "tagKeys", "Member must not be null")))
			return
		}
		_, err := f.cfg.Functions.UpdateTags(ctx, req.account, ref.Name, func(tags map[string]string) error {
			for _, k := range keys {
				delete(tags, k)
			}
			return nil
		})
		if err != nil {
			f.fail(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

// checkTags checks tag keys and values against Lambda's limits.
func checkTags(tags map[string]string) error {
	if len(tags) > maxTags {
		return invalidParam("A function can have at most %d tags.", maxTags)
	}
	for k, v := range tags {
		if k == "" || len(k) > maxTagKeyLen || strings.HasPrefix(k, "aws:") {
			return invalidParam("Tag key %q is not valid: 1 to %d characters, not starting with 'aws:'.", shorten(k), maxTagKeyLen)
		}
		if len(v) > maxTagValueLen {
			return invalidParam("Tag value of %q is longer than %d characters.", shorten(k), maxTagValueLen)
		}
	}
	return nil
}

// accountSettings is GetAccountSettings' response.
type accountSettings struct {
	AccountLimit struct {
		TotalCodeSize                  int64 `json:"TotalCodeSize"`
		CodeSizeUnzipped               int64 `json:"CodeSizeUnzipped"`
		CodeSizeZipped                 int64 `json:"CodeSizeZipped"`
		ConcurrentExecutions           int   `json:"ConcurrentExecutions"`
		UnreservedConcurrentExecutions int   `json:"UnreservedConcurrentExecutions"`
	} `json:"AccountLimit"`
	AccountUsage struct {
		TotalCodeSize int64 `json:"TotalCodeSize"`
		FunctionCount int   `json:"FunctionCount"`
	} `json:"AccountUsage"`
}

// totalCodeSizeLimit is Lambda's default code storage per account (75 GB).
const totalCodeSizeLimit = 80530636800

func (f *Frontend) accountSettings(w http.ResponseWriter, req *request) {
	u, err := f.cfg.Functions.Usage(req.r.Context(), req.account)
	if err != nil {
		f.fail(w, err)
		return
	}
	var out accountSettings
	out.AccountLimit.TotalCodeSize = totalCodeSizeLimit
	out.AccountLimit.CodeSizeUnzipped = codestore.MaxUnzippedSize
	out.AccountLimit.CodeSizeZipped = codestore.MaxZipSize
	if f.cfg.Limits != nil {
		out.AccountLimit.ConcurrentExecutions, out.AccountLimit.UnreservedConcurrentExecutions = f.cfg.Limits.AccountLimits(req.account)
	}
	out.AccountUsage.TotalCodeSize = u.TotalCodeSize
	out.AccountUsage.FunctionCount = u.FunctionCount
	f.writeJSON(w, http.StatusOK, out)
}

// clearReservation forgets a deleted function's reservation in the limiter.
func (f *Frontend) clearReservation(account, name string) {
	if f.cfg.Limits != nil {
		f.cfg.Limits.Reserve(account, name, -1) //nolint:errcheck // clearing cannot fail
	}
}
