package frontend

import (
	"math"
	"net/http"
	"net/url"
	"strings"

	"kindling/internal/awsapi"
	"kindling/internal/config"
)

// aliasLabel returns the {Name} path label of the alias operations
// (.../functions/{FunctionName}/aliases/{Name}), unescaped.
func aliasLabel(r *http.Request) string {
	p := r.URL.EscapedPath()
	i := strings.LastIndex(p, "/aliases/")
	if i < 0 {
		return ""
	}
	name, err := url.PathUnescape(p[i+len("/aliases/"):])
	if err != nil {
		return ""
	}
	return name
}

// weightsOf converts a request's routing weights; a null weight becomes
// NaN, which config.RoutingViolations refuses.
func weightsOf(rc *awsapi.AliasRoutingConfigurationInput) map[string]float64 {
	if rc == nil || len(rc.AdditionalVersionWeights) == 0 {
		return nil
	}
	out := make(map[string]float64, len(rc.AdditionalVersionWeights))
	for k, w := range rc.AdditionalVersionWeights {
		if w == nil {
			out[k] = math.NaN()
			continue
		}
		out[k] = *w
	}
	return out
}

// checkAliasRevision is UpdateAlias's RevisionId precondition.
func checkAliasRevision(want string, a *config.Alias) error {
	if want != "" && want != a.RevisionID {
		return &awsapi.Error{Status: http.StatusPreconditionFailed, Type: awsapi.TypePreconditionFailed,
			Message: "The Revision Id provided does not match the latest Revision Id. Call the GetFunction/GetAlias API to retrieve the latest Revision Id"}
	}
	return nil
}

func descriptionViolations(d *string) []string {
	if d != nil && len(*d) > maxDescription {
		return []string{config.Violation(shorten(*d), "description", "Member must have length less than or equal to 256")}
	}
	return nil
}

func (f *Frontend) createAlias(w http.ResponseWriter, req *request) {
	var in awsapi.CreateAliasInput
	if err := decodeJSON(req.body, &in); err != nil {
		f.fail(w, err)
		return
	}
	ref, err := f.resolve(req, config.RuleManage)
	if err != nil {
		f.fail(w, err)
		return
	}
	weights := weightsOf(in.RoutingConfig)
	var v []string
	if in.Name == nil {
		v = append(v, "Value null at 'name' failed to satisfy constraint: Member must not be null")
	} else {
		v = append(v, config.AliasNameViolations(shorten(*in.Name), "name")...)
	}
	if in.FunctionVersion == nil {
		v = append(v, "Value null at 'functionVersion' failed to satisfy constraint: Member must not be null")
	} else {
		v = append(v, config.FunctionVersionViolations(shorten(*in.FunctionVersion), "functionVersion")...)
	}
	v = append(v, descriptionViolations(in.Description)...)
	v = append(v, config.RoutingViolations(weights)...)
	if err := config.NewValidationError(v...); err != nil {
		f.fail(w, err)
		return
	}
	a := &config.Alias{
		Account: req.account, Function: ref.Name, Name: *in.Name,
		FunctionVersion: *in.FunctionVersion, Weights: weights,
	}
	if in.Description != nil {
		a.Description = *in.Description
	}
	if err := f.cfg.Functions.CreateAlias(req.r.Context(), a); err != nil {
		f.fail(w, err)
		return
	}
	f.writeJSON(w, http.StatusCreated, awsapi.NewAliasConfiguration(a))
}

// aliasRef resolves the function and validates the alias label of the
// Get/Update/DeleteAlias operations.
func (f *Frontend) aliasRef(req *request) (config.FunctionRef, string, error) {
	ref, err := f.resolve(req, config.RuleManage)
	if err != nil {
		return ref, "", err
	}
	name := aliasLabel(req.r)
	if err := config.NewValidationError(config.AliasNameViolations(shorten(name), "name")...); err != nil {
		return ref, "", err
	}
	return ref, name, nil
}

func (f *Frontend) getAlias(w http.ResponseWriter, req *request) {
	ref, name, err := f.aliasRef(req)
	if err != nil {
		f.fail(w, err)
		return
	}
	a, err := f.cfg.Functions.GetAlias(req.r.Context(), req.account, ref.Name, name)
	if err != nil {
		f.fail(w, err)
		return
	}
	f.writeJSON(w, http.StatusOK, awsapi.NewAliasConfiguration(a))
}

func (f *Frontend) updateAlias(w http.ResponseWriter, req *request) {
	var in awsapi.UpdateAliasInput
	if err := decodeJSON(req.body, &in); err != nil {
		f.fail(w, err)
		return
	}
	ref, name, err := f.aliasRef(req)
	if err != nil {
		f.fail(w, err)
		return
	}
	weights := weightsOf(in.RoutingConfig)
	var v []string
	if in.FunctionVersion != nil {
		v = append(v, config.FunctionVersionViolations(shorten(*in.FunctionVersion), "functionVersion")...)
	}
	v = append(v, descriptionViolations(in.Description)...)
	v = append(v, config.RoutingViolations(weights)...)
	if err := config.NewValidationError(v...); err != nil {
		f.fail(w, err)
		return
	}
	a, err := f.cfg.Functions.UpdateAlias(req.r.Context(), req.account, ref.Name, name, func(a *config.Alias) error {
		if err := checkAliasRevision(in.RevisionId, a); err != nil {
			return err
		}
		if in.FunctionVersion != nil {
			a.FunctionVersion = *in.FunctionVersion
		}
		if in.Description != nil {
			a.Description = *in.Description
		}
		if in.RoutingConfig != nil {
			a.Weights = weights
		}
		return nil
	})
	if err != nil {
		f.fail(w, err)
		return
	}
	f.writeJSON(w, http.StatusOK, awsapi.NewAliasConfiguration(a))
}

func (f *Frontend) deleteAlias(w http.ResponseWriter, req *request) {
	ref, name, err := f.aliasRef(req)
	if err == nil {
		err = f.cfg.Functions.DeleteAlias(req.r.Context(), req.account, ref.Name, name)
	}
	if err != nil {
		f.fail(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (f *Frontend) listAliases(w http.ResponseWriter, req *request) {
	ref, err := f.resolve(req, config.RuleManage)
	if err != nil {
		f.fail(w, err)
		return
	}
	q := req.r.URL.Query()
	version := q.Get("FunctionVersion")
	if version != "" {
		if err := config.NewValidationError(config.FunctionVersionViolations(shorten(version), "functionVersion")...); err != nil {
			f.fail(w, err)
			return
		}
	}
	max, err := maxItems(req.r)
	if err != nil {
		f.fail(w, err)
		return
	}
	as, next, err := f.cfg.Functions.ListAliases(req.r.Context(), req.account, ref.Name, version, q.Get("Marker"), max)
	if err != nil {
		f.fail(w, err)
		return
	}
	out := awsapi.ListAliasesOutput{Aliases: make([]awsapi.AliasConfiguration, 0, len(as)), NextMarker: next}
	for _, a := range as {
		out.Aliases = append(out.Aliases, awsapi.NewAliasConfiguration(a))
	}
	f.writeJSON(w, http.StatusOK, out)
}
