package frontend

import (
	"net/http"
	"strconv"

	"kindling/internal/awsapi"
	"kindling/internal/config"
)

// resolveQualified is resolve for operations that take a version or an
// alias: the qualifier (from the name or the Qualifier parameter) is left
// for the caller to look up.
func (f *Frontend) resolveQualified(req *request, rule config.NameRule) (config.FunctionRef, error) {
	ref, err := config.ParseFunctionName(req.name, rule)
	if err != nil {
		return ref, err
	}
	if q := req.r.URL.Query().Get("Qualifier"); q != "" {
		if ref, err = ref.WithQualifier(q); err != nil {
			return ref, err
		}
	}
	return ref, ref.ResolveQualified(req.account, f.cfg.Region, req.op.String())
}

// publishCheck is PublishVersion's preconditions on $LATEST: no update in
// progress, then RevisionId and CodeSha256 when given (in Lambda's order).
func publishCheck(codeSha256, revisionID string) func(*config.Function) error {
	return func(latest *config.Function) error {
		if latest.State == config.StatePending || latest.LastUpdateStatus == config.UpdateInProgress {
			return &config.StateError{Status: latest.Status(), Resource: latest.ARN()}
		}
		if err := checkRevision(revisionID, latest); err != nil {
			return err
		}
		if codeSha256 != "" && codeSha256 != latest.CodeSha256 {
			return invalidParam("CodeSHA256 (%s) is different from current CodeSHA256 in $LATEST (%s). Please try again with the CodeSHA256 in $LATEST.",
				shorten(codeSha256), latest.CodeSha256)
		}
		return nil
	}
}

func (f *Frontend) publishVersion(w http.ResponseWriter, req *request) {
	var in awsapi.PublishVersionInput
	if err := decodeJSON(req.body, &in); err != nil {
		f.fail(w, err)
		return
	}
	ref, err := f.resolve(req, config.RuleManage)
	if err == nil && in.Description != nil && len(*in.Description) > maxDescription {
		err = config.NewValidationError(config.Violation(shorten(*in.Description), "description",
			"Member must have length less than or equal to 256"))
	}
	if err != nil {
		f.fail(w, err)
		return
	}
	v, err := f.publish(req, ref.Name, config.PublishOptions{
		Check:       publishCheck(in.CodeSha256, in.RevisionId),
		Description: in.Description,
	})
	if err != nil {
		f.fail(w, err)
		return
	}
	f.writeJSON(w, http.StatusCreated, awsapi.NewQualifiedConfiguration(v, v.Version))
}

// publish publishes $LATEST of name as a version (see config.Publish),
// with SnapStart when this server has it: a new version with SnapStartOn
// (created Pending) goes to the SnapStarter to have its snapshot made.
func (f *Frontend) publish(req *request, name string, o config.PublishOptions) (*config.Function, error) {
	o.SnapStart = f.cfg.SnapStart != nil && f.cfg.SnapStart.Available()
	v, created, err := f.cfg.Functions.Publish(req.r.Context(), req.account, name, o)
	if err != nil {
		return nil, err
	}
	if created {
		switch {
		case v.SnapStartOn:
			f.cfg.SnapStart.Prepare(v.Clone())
		case v.SnapStartApplyOn == config.SnapStartPublishedVersions:
			f.log.Warn("SnapStart is not available on this server's sandbox backend: the version uses normal cold starts (OptimizationStatus Off)",
				"requestId", req.id, "function", v.QualifiedARN())
		}
	}
	return v, nil
}

// publishAfter publishes a version of name after CreateFunction or
// UpdateFunctionCode with Publish set, and answers with it (Lambda
// returns the new version's configuration).
func (f *Frontend) publishAfter(w http.ResponseWriter, req *request, status int, name string) {
	v, err := f.publish(req, name, config.PublishOptions{})
	if err != nil {
		f.fail(w, err)
		return
	}
	f.writeJSON(w, status, awsapi.NewQualifiedConfiguration(v, v.Version))
}

// maxItems reads the MaxItems query parameter of a list operation (1 to
// 10000, default 50).
func maxItems(r *http.Request) (int, error) {
	s := r.URL.Query().Get("MaxItems")
	if s == "" {
		return 50, nil
	}
	n, err := strconv.Atoi(s)
	switch {
	case err != nil:
		return 0, config.NewValidationError(config.Violation(shorten(s), "maxItems", "Member must be an integer"))
	case n < 1:
		return 0, config.NewValidationError(config.Violation(s, "maxItems", "Member must have value greater than or equal to 1"))
	case n > 10000:
		return 0, config.NewValidationError(config.Violation(s, "maxItems", "Member must have value less than or equal to 10000"))
	}
	return n, nil
}

func (f *Frontend) listVersions(w http.ResponseWriter, req *request) {
	ref, err := f.resolve(req, config.RuleRead)
	if err != nil {
		f.fail(w, err)
		return
	}
	max, err := maxItems(req.r)
	if err != nil {
		f.fail(w, err)
		return
	}
	vs, next, err := f.cfg.Functions.ListVersions(req.r.Context(), req.account, ref.Name, req.r.URL.Query().Get("Marker"), max)
	if err != nil {
		f.fail(w, err)
		return
	}
	out := awsapi.ListVersionsByFunctionOutput{Versions: make([]awsapi.FunctionConfiguration, 0, len(vs)), NextMarker: next}
	for _, v := range vs {
		out.Versions = append(out.Versions, awsapi.ListedConfiguration(awsapi.NewQualifiedConfiguration(v, v.Version)))
	}
	f.writeJSON(w, http.StatusOK, out)
}
