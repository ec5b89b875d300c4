package frontend

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"kindling/internal/awsapi"
	"kindling/internal/config"
)

// Provisioned concurrency:
//
//	PUT    /2019-09-30/functions/{FunctionName}/provisioned-concurrency?Qualifier=Q  Put (202)
//	GET    /2019-09-30/functions/{FunctionName}/provisioned-concurrency?Qualifier=Q  Get
//	DELETE /2019-09-30/functions/{FunctionName}/provisioned-concurrency?Qualifier=Q  Delete (204)
//	GET    /2019-09-30/functions/{FunctionName}/provisioned-concurrency?List=ALL     List
//
// A configuration is on a published version or an alias (not $LATEST); an
// alias's environments are of the version it points to when the
// configuration is put (an alias with additional version weights is
// refused). Configurations are stored on $LATEST (config), counted by the
// limiter against the function's reservation or the account's unreserved
// floor, and kept by the assignment service (Provisioner), which reports
// how many environments are ready: Status IN_PROGRESS until all are, then
// READY.

// Provisioner is what the frontend needs of the assignment service
// (*assignment.Manager).
type Provisioner interface {
	// Provision keeps n environments of fn for owner (a qualified ARN);
	// n = 0 removes owner's configuration (fn may then be nil).
	Provision(owner string, fn *config.Function, n int)
	// Provisioned is how many of owner's environments are ready.
	Provisioned(owner string) int
}

// routeProvisioned maps the requests above (rest: the path after
// /2019-09-30/functions/).
func routeProvisioned(r *http.Request, rest string) (o op, name string, ok bool) {
	label, sub, _ := strings.Cut(rest, "/")
	name, err := url.PathUnescape(label)
	if err != nil || name == "" || sub != "provisioned-concurrency" {
		return 0, "", false
	}
	switch r.Method {
	case http.MethodPut:
		return opPutProvisioned, name, true
	case http.MethodDelete:
		return opDeleteProvisioned, name, true
	case http.MethodGet:
		if r.URL.Query().Get("List") == "ALL" {
			return opListProvisioned, name, true
		}
		return opGetProvisioned, name, true
	}
	return 0, "", false
}

// provisionedOutput is a ProvisionedConcurrencyConfig (Get, Put, and List's
// items with FunctionArn).
type provisionedOutput struct {
	FunctionArn                              string `json:"FunctionArn,omitempty"`
	RequestedProvisionedConcurrentExecutions int    `json:"RequestedProvisionedConcurrentExecutions"`
	AvailableProvisionedConcurrentExecutions int    `json:"AvailableProvisionedConcurrentExecutions"`
	AllocatedProvisionedConcurrentExecutions int    `json:"AllocatedProvisionedConcurrentExecutions"`
	Status                                   string `json:"Status"`
	LastModified                             string `json:"LastModified"`
}

func provisionedNotFound() error {
	return &awsapi.Error{Status: http.StatusNotFound, Type: "ProvisionedConcurrencyConfigNotFoundException",
		Message: "No Provisioned Concurrency Config found for this function"}
}

func (f *Frontend) provisionedOutput(owner string, c config.ProvisionedConfig) provisionedOutput {
	ready := min(f.cfg.Provisioner.Provisioned(owner), c.Requested)
	status := "IN_PROGRESS"
	if ready >= c.Requested {
		status = "READY"
	}
	return provisionedOutput{
		RequestedProvisionedConcurrentExecutions: c.Requested,
		AvailableProvisionedConcurrentExecutions: ready,
		AllocatedProvisionedConcurrentExecutions: ready,
		Status:                                   status,
		LastModified:                             awsapi.FormatLastModified(c.LastModified),
	}
}

func (f *Frontend) provisioned(w http.ResponseWriter, req *request) {
	if f.cfg.Provisioner == nil || f.cfg.Limits == nil {
		f.fail(w, invalidParam("Provisioned concurrency is not enabled on this server."))
		return
	}
	ref, err := config.ParseFunctionName(req.name, config.RuleManage)
	if err == nil && req.op != opListProvisioned {
		ref, err = ref.WithQualifier(req.r.URL.Query().Get("Qualifier"))
		if err == nil && ref.Qualifier == "" {
			err = config.NewValidationError(config.Violation("null", "qualifier", "Member must not be null"))
		}
	}
	if err == nil {
		err = ref.ResolveQualified(req.account, f.cfg.Region, req.op.String())
	}
	if err == nil && ref.Qualifier == config.LatestVersion {
		err = invalidParam("Provisioned Concurrency Configs cannot be applied to unpublished function versions.")
	}
	if err != nil {
		f.fail(w, err)
		return
	}
	ctx := req.r.Context()
	latest, err := f.cfg.Functions.Get(ctx, req.account, ref.Name)
	if err != nil {
		f.fail(w, err)
		return
	}
	owner := latest.ARN() + ":" + ref.Qualifier
	switch req.op {
	case opListProvisioned:
		out := struct {
			ProvisionedConcurrencyConfigs []provisionedOutput `json:"ProvisionedConcurrencyConfigs"`
		}{ProvisionedConcurrencyConfigs: []provisionedOutput{}}
		quals := make([]string, 0, len(latest.Provisioned))
		for q := range latest.Provisioned {
			quals = append(quals, q)
		}
		slices.Sort(quals)
		for _, q := range quals {
			o := f.provisionedOutput(latest.ARN()+":"+q, latest.Provisioned[q])
			o.FunctionArn = latest.ARN() + ":" + q
			out.ProvisionedConcurrencyConfigs = append(out.ProvisionedConcurrencyConfigs, o)
		}
		f.writeJSON(w, http.StatusOK, out)
	case opGetProvisioned:
		c, ok := latest.Provisioned[ref.Qualifier]
		if !ok {
			f.fail(w, provisionedNotFound())
			return
		}
		f.writeJSON(w, http.StatusOK, f.provisionedOutput(owner, c))
	case opDeleteProvisioned:
		if _, ok := latest.Provisioned[ref.Qualifier]; !ok {
			f.fail(w, provisionedNotFound())
			return
		}
		if _, err := f.setProvisioned(req, latest, ref.Qualifier, 0); err != nil {
			f.fail(w, err)
			return
		}
		f.cfg.Provisioner.Provision(owner, nil, 0)
		w.WriteHeader(http.StatusNoContent)
	case opPutProvisioned:
		var in struct {
			N *int `json:"ProvisionedConcurrentExecutions"`
		}
		if err := decodeJSON(req.body, &in); err != nil {
			f.fail(w, err)
			return
		}
		if in.N == nil {
			f.fail(w, config.NewValidationError(config.Violation("null", "provisionedConcurrentExecutions", "Member must not be null")))
			return
		}
		if *in.N < 1 {
			f.fail(w, config.NewValidationError(config.Violation(fmt.Sprint(*in.N),
				"provisionedConcurrentExecutions", "Member must have value greater than or equal to 1")))
			return
		}
		fn, alias, err := f.cfg.Functions.GetQualified(ctx, req.account, ref.Name, ref.Qualifier)
		if err != nil {
			f.fail(w, err)
			return
		}
		if fn.Version == config.LatestVersion {
			f.fail(w, invalidParam("Provisioned Concurrency Configs cannot be applied to unpublished function versions."))
			return
		}
		if alias != nil && len(alias.Weights) > 0 {
			f.fail(w, invalidParam("Provisioned Concurrency Configs are not supported on aliases with additional version weights."))
			return
		}
		stored, err := f.setProvisioned(req, latest, ref.Qualifier, *in.N)
		if err != nil {
			f.fail(w, err)
			return
		}
		f.cfg.Provisioner.Provision(owner, fn, *in.N)
		f.writeJSON(w, http.StatusAccepted, f.provisionedOutput(owner, stored.Provisioned[ref.Qualifier]))
	}
}

// setProvisioned stores qualifier's configuration (n = 0: removes it)
// under the limiter's checks, undoing the limiter's change if the store
// fails.
func (f *Frontend) setProvisioned(req *request, latest *config.Function, qualifier string, n int) (*config.Function, error) {
	check := func(next *config.Function) error {
		return f.cfg.Limits.Provision(req.account, next.Name, next.ProvisionedTotal(), n > 0)
	}
	stored, err := f.cfg.Functions.SetProvisioned(req.r.Context(), req.account, latest.Name, qualifier, n, check)
	if err != nil {
		// What the store holds again (a refused check changed nothing).
		if cur, gerr := f.cfg.Functions.Get(req.r.Context(), req.account, latest.Name); gerr == nil {
			f.cfg.Limits.Provision(req.account, latest.Name, cur.ProvisionedTotal(), false) //nolint:errcheck // unchecked: cannot fail
		}
		return nil, err
	}
	return stored, nil
}

// clearProvisioned drops a deleted function's provisioned environments
// and their share in the limiter.
func (f *Frontend) clearProvisioned(latest *config.Function) {
	if f.cfg.Provisioner != nil {
		for q := range latest.Provisioned {
			f.cfg.Provisioner.Provision(latest.ARN()+":"+q, nil, 0)
		}
	}
	if f.cfg.Limits != nil && len(latest.Provisioned) > 0 {
		f.cfg.Limits.Provision(latest.Account, latest.Name, 0, false) //nolint:errcheck // unchecked: cannot fail
	}
}
