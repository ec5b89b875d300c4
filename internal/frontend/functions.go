package frontend

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"kindling/internal/awsapi"
	"kindling/internal/codestore"
	"kindling/internal/config"
	"kindling/internal/errdefs"
)

// writeJSON answers v as JSON with status.
func (f *Frontend) writeJSON(w http.ResponseWriter, status int, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		f.fail(w, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(data)))
	w.WriteHeader(status)
	w.Write(data) // a failed write means the client is gone
}

// resolve parses and checks the FunctionName label (and the Qualifier
// query parameter) of req under rule, for the caller's account.
func (f *Frontend) resolve(req *request, rule config.NameRule) (config.FunctionRef, error) {
	ref, err := config.ParseFunctionName(req.name, rule)
	if err != nil {
		return ref, err
	}
	if q := req.r.URL.Query().Get("Qualifier"); q != "" {
		if ref, err = ref.WithQualifier(q); err != nil {
			return ref, err
		}
	}
	return ref, ref.Resolve(req.account, f.cfg.Region, req.op.String())
}

func (f *Frontend) create(w http.ResponseWriter, req *request) {
	var in awsapi.CreateFunctionInput
	if err := decodeJSON(req.body, &in); err != nil {
		f.fail(w, err)
		return
	}
	fn, err := f.newFunction(req, &in)
	if err != nil {
		f.fail(w, err)
		return
	}
	if err := f.cfg.Functions.Create(req.r.Context(), fn); err != nil {
		f.fail(w, err)
		return
	}
	if in.Publish {
		f.publishAfter(w, req, http.StatusCreated, fn.Name)
		return
	}
	f.writeJSON(w, http.StatusCreated, awsapi.NewFunctionConfiguration(fn))
}

// newFunction validates a CreateFunction request, stores its code and
// returns the function to create.
func (f *Frontend) newFunction(req *request, in *awsapi.CreateFunctionInput) (*config.Function, error) {
	s := settings{
		Role: in.Role, Description: in.Description, Timeout: in.Timeout, MemorySize: in.MemorySize,
		Env: in.Environment, VpcConfig: in.VpcConfig, TracingConfig: in.TracingConfig,
		SnapStart: in.SnapStart, LoggingConfig: in.LoggingConfig, DeadLetterConfig: in.DeadLetterConfig,
		Layers: in.Layers, KMSKeyArn: in.KMSKeyArn, FileSystemConfigs: in.FileSystemConfigs,
		ImageConfig: in.ImageConfig,
	}
	if in.Handler != "" {
		s.Handler = &in.Handler
	}
	if in.EphemeralStorage != nil {
		s.EphemeralGiven, s.Ephemeral = true, in.EphemeralStorage.Size
	}
	// The model's constraints first, all reported together.
	var v []string
	if in.FunctionName == nil {
		v = append(v, "Value null at 'functionName' failed to satisfy constraint: Member must not be null")
	}
	if in.Role == nil {
		v = append(v, "Value null at 'role' failed to satisfy constraint: Member must not be null")
	}
	if in.Code == nil {
		v = append(v, "Value null at 'code' failed to satisfy constraint: Member must not be null")
	}
	if in.PackageType != "" && in.PackageType != "Zip" && in.PackageType != "Image" {
		v = append(v, config.Violation(shorten(in.PackageType), "packageType", "Member must satisfy enum value set: [Zip, Image]"))
	}
	v = append(v, s.modelViolations()...)
	if err := config.NewValidationError(v...); err != nil {
		return nil, err
	}
	ref, err := config.ParseFunctionName(*in.FunctionName, config.RuleCreate)
	if err != nil {
		var ve *config.ValidationError
		if errors.As(err, &ve) && !strings.Contains(*in.FunctionName, ":") {
			// Lambda reports a bad bare name as an invalid parameter.
			return nil, invalidParam("%s", ve.Message)
		}
		return nil, err
	}
	if err := ref.Resolve(req.account, f.cfg.Region, req.op.String()); err != nil {
		return nil, err
	}
	if ref.Qualifier != "" || !config.ValidName(ref.Name) {
		return nil, invalidParam("The function name %s is not a valid function name for CreateFunction.", shorten(*in.FunctionName))
	}
	if in.PackageType == "Image" || in.Code.ImageUri != "" {
		return nil, invalidParam("Container image functions (PackageType Image, Code.ImageUri) are not supported by Kindling; upload a .zip file as Code.ZipFile.")
	}
	if in.Code.S3Bucket != "" || in.Code.S3Key != "" || in.Code.S3ObjectVersion != "" {
		return nil, invalidParam("Kindling takes deployment packages as Code.ZipFile only; Code.S3Bucket and Code.S3Key are not supported.")
	}
	if in.Code.SourceKMSKeyArn != "" {
		return nil, invalidParam("Code.SourceKMSKeyArn is not supported by Kindling.")
	}
	if in.Runtime == "" || in.Handler == "" {
		return nil, invalidParam("Runtime and Handler are mandatory parameters for functions created with deployment packages.")
	}
	s.Runtime = &in.Runtime
	if err := s.check(); err != nil {
		return nil, err
	}
	if err := checkArchitectures(in.Architectures); err != nil {
		return nil, err
	}
	if len(in.Tags) > maxTags {
		return nil, invalidParam("A function can have at most %d tags.", maxTags)
	}
	if len(in.Code.ZipFile) == 0 {
		return nil, invalidParam("Code.ZipFile is required: Kindling takes deployment packages as a .zip file in the request.")
	}
	code, err := f.cfg.Code.Put(in.Code.ZipFile)
	if err != nil {
		return nil, err
	}
	fn := &config.Function{
		Account: req.account, Region: f.cfg.Region, Name: ref.Name, Version: config.LatestVersion,
		Runtime: in.Runtime, Handler: in.Handler, Role: *in.Role,
		MemoryMB: defaultMemoryMB, TimeoutSec: defaultTimeoutSec, EphemeralMB: defaultEphemeralMB,
		Architectures: []string{hostArchitecture}, PackageType: "Zip", Tags: in.Tags,
		CodeSha256: code.Sha256, CodeKey: code.Key, CodeSize: code.Size,
		LastModified: f.cfg.Clock.Now().UTC(),
	}
	s.apply(fn)
	// The package is stored and unpacked: nothing is left to prepare, so
	// the function goes through Pending to Active at once. (When
	// preparation becomes asynchronous, the preparer sends EvReady.)
	if err := fn.Apply(config.Event{Kind: config.EvCreate}); err != nil {
		return nil, err
	}
	if err := fn.Apply(config.Event{Kind: config.EvReady}); err != nil {
		return nil, err
	}
	return fn, nil
}

// apply copies the given settings into fn.
func (s *settings) apply(fn *config.Function) {
	if s.Role != nil {
		fn.Role = *s.Role
	}
	if s.Handler != nil {
		fn.Handler = *s.Handler
	}
	if s.Description != nil {
		fn.Description = *s.Description
	}
	if s.Runtime != nil {
		fn.Runtime = *s.Runtime
	}
	if s.Timeout != nil {
		fn.TimeoutSec = *s.Timeout
	}
	if s.MemorySize != nil {
		fn.MemoryMB = *s.MemorySize
	}
	if s.Ephemeral != nil {
		fn.EphemeralMB = *s.Ephemeral
	}
	if s.DeadLetterConfig != nil {
		fn.DeadLetterTarget = s.DeadLetterConfig.TargetArn
	}
	if s.SnapStart != nil {
		// ApplyOn is checked (modelViolations): PublishedVersions, None or
		// absent (None).
		fn.SnapStartApplyOn = ""
		if s.SnapStart.ApplyOn == config.SnapStartPublishedVersions {
			fn.SnapStartApplyOn = config.SnapStartPublishedVersions
		}
	}
	if s.Env != nil {
		fn.Env = nil
		if len(s.Env.Variables) > 0 {
			fn.Env = make(map[string]string, len(s.Env.Variables))
			for k, v := range s.Env.Variables {
				fn.Env[k] = v
			}
		}
	}
}

func (f *Frontend) get(w http.ResponseWriter, req *request) {
	ref, err := f.resolveQualified(req, config.RuleRead)
	if err != nil {
		f.fail(w, err)
		return
	}
	fn, _, err := f.cfg.Functions.GetQualified(req.r.Context(), req.account, ref.Name, ref.Qualifier)
	if err != nil {
		f.fail(w, err)
		return
	}
	conf := awsapi.NewQualifiedConfiguration(fn, ref.Qualifier)
	if req.op == opGetConfig {
		f.writeJSON(w, http.StatusOK, conf)
		return
	}
	latest := fn
	if fn.Version != config.LatestVersion {
		// Tags and reserved concurrency belong to the function, not to
		// its versions.
		if latest, err = f.cfg.Functions.Get(req.r.Context(), req.account, ref.Name); err != nil {
			f.fail(w, err)
			return
		}
	}
	out := awsapi.GetFunctionOutput{
		Configuration: conf,
		Code:          awsapi.FunctionCodeLocation{RepositoryType: "S3", Location: f.codeLocation(req, fn)},
		Tags:          latest.Tags,
	}
	if latest.ReservedConcurrency != nil {
		out.Concurrency = &awsapi.Concurrency{ReservedConcurrentExecutions: latest.ReservedConcurrency}
	}
	f.writeJSON(w, http.StatusOK, out)
}

func (f *Frontend) list(w http.ResponseWriter, req *request) {
	q := req.r.URL.Query()
	max := 50
	if s := q.Get("MaxItems"); s != "" {
		n, err := strconv.Atoi(s)
		switch {
		case err != nil:
			f.fail(w, config.NewValidationError(config.Violation(shorten(s), "maxItems", "Member must be an integer")))
			return
		case n < 1:
			f.fail(w, config.NewValidationError(config.Violation(s, "maxItems", "Member must have value greater than or equal to 1")))
			return
		case n > 10000:
			f.fail(w, config.NewValidationError(config.Violation(s, "maxItems", "Member must have value less than or equal to 10000")))
			return
		}
		max = n
	}
	if v := q.Get("FunctionVersion"); v != "" && v != "ALL" {
		f.fail(w, config.NewValidationError(config.Violation(shorten(v), "functionVersion", "Member must satisfy enum value set: [ALL]")))
		return
	}
	fns, next, err := f.cfg.Functions.List(req.r.Context(), req.account, q.Get("Marker"), max)
	if err != nil {
		f.fail(w, err)
		return
	}
	out := awsapi.ListFunctionsOutput{Functions: make([]awsapi.FunctionConfiguration, 0, len(fns)), NextMarker: next}
	for _, fn := range fns {
		out.Functions = append(out.Functions, awsapi.NewFunctionConfiguration(fn))
	}
	f.writeJSON(w, http.StatusOK, out)
}

func (f *Frontend) updateConfig(w http.ResponseWriter, req *request) {
	var in awsapi.UpdateFunctionConfigurationInput
	if err := decodeJSON(req.body, &in); err != nil {
		f.fail(w, err)
		return
	}
	s := settings{
		Role: in.Role, Handler: in.Handler, Description: in.Description, Runtime: in.Runtime,
		Timeout: in.Timeout, MemorySize: in.MemorySize, Env: in.Environment, VpcConfig: in.VpcConfig,
		TracingConfig: in.TracingConfig, SnapStart: in.SnapStart, LoggingConfig: in.LoggingConfig,
		DeadLetterConfig: in.DeadLetterConfig, Layers: in.Layers, FileSystemConfigs: in.FileSystemConfigs,
		ImageConfig: in.ImageConfig,
	}
	if in.KMSKeyArn != nil {
		s.KMSKeyArn = *in.KMSKeyArn
	}
	if in.EphemeralStorage != nil {
		s.EphemeralGiven, s.Ephemeral = true, in.EphemeralStorage.Size
	}
	ref, err := f.resolve(req, config.RuleManage)
	if err == nil {
		err = config.NewValidationError(s.modelViolations()...)
	}
	if err == nil {
		err = s.check()
	}
	if err != nil {
		f.fail(w, err)
		return
	}
	fn, err := f.cfg.Functions.Update(req.r.Context(), req.account, ref.Name, func(fn *config.Function) error {
		if err := checkRevision(in.RevisionId, fn); err != nil {
			return err
		}
		if err := fn.Apply(config.Event{Kind: config.EvUpdate}); err != nil {
			return err
		}
		s.apply(fn)
		// Applied synchronously: the update is complete when stored.
		return fn.Apply(config.Event{Kind: config.EvReady})
	})
	if err != nil {
		f.fail(w, err)
		return
	}
	f.writeJSON(w, http.StatusOK, awsapi.NewFunctionConfiguration(fn))
}

func (f *Frontend) updateCode(w http.ResponseWriter, req *request) {
	var in awsapi.UpdateFunctionCodeInput
	if err := decodeJSON(req.body, &in); err != nil {
		f.fail(w, err)
		return
	}
	ref, err := f.resolve(req, config.RuleManage)
	if err != nil {
		f.fail(w, err)
		return
	}
	switch {
	case in.ImageUri != "":
		err = invalidParam("Container images are not supported by Kindling; upload a .zip file as ZipFile.")
	case in.S3Bucket != "" || in.S3Key != "" || in.S3ObjectVersion != "":
		err = invalidParam("Kindling takes deployment packages as ZipFile only; S3Bucket and S3Key are not supported.")
	case in.SourceKMSKeyArn != "":
		err = invalidParam("SourceKMSKeyArn is not supported by Kindling.")
	case len(in.ZipFile) == 0:
		err = invalidParam("ZipFile is required: Kindling takes deployment packages as a .zip file in the request.")
	}
	if err == nil {
		err = checkArchitectures(in.Architectures)
	}
	if err != nil {
		f.fail(w, err)
		return
	}
	code, err := f.cfg.Code.Put(in.ZipFile)
	if err != nil {
		if errors.Is(err, errdefs.ErrTooLarge) {
			err = codestore.TooLargeError(req.op.String())
		}
		f.fail(w, err)
		return
	}
	mutate := func(fn *config.Function) error {
		if err := checkRevision(in.RevisionId, fn); err != nil {
			return err
		}
		if err := fn.Apply(config.Event{Kind: config.EvUpdate}); err != nil {
			return err
		}
		fn.CodeSha256, fn.CodeKey, fn.CodeSize = code.Sha256, code.Key, code.Size
		return fn.Apply(config.Event{Kind: config.EvReady})
	}
	var fn *config.Function
	if in.DryRun {
		// Validate everything, change nothing.
		fn, err = f.cfg.Functions.Get(req.r.Context(), req.account, ref.Name)
		if err == nil {
			err = mutate(fn)
		}
	} else {
		fn, err = f.cfg.Functions.Update(req.r.Context(), req.account, ref.Name, mutate)
	}
	if err != nil {
		f.fail(w, err)
		return
	}
	if in.Publish && !in.DryRun {
		f.publishAfter(w, req, http.StatusOK, fn.Name)
		return
	}
	f.writeJSON(w, http.StatusOK, awsapi.NewFunctionConfiguration(fn))
}

// forgetSnapshots tells the SnapStarter that the version (or, for "",
// every version of the function) was deleted. A failure is logged: the
// records are gone, the request succeeded.
func (f *Frontend) forgetSnapshots(req *request, name, version string) {
	if f.cfg.SnapStart == nil {
		return
	}
	ctx := context.WithoutCancel(req.r.Context())
	if err := f.cfg.SnapStart.Forget(ctx, req.account, name, version); err != nil {
		f.log.Error("SnapStart: deleting the snapshots of a deleted function or version", "requestId", req.id,
			"account", req.account, "function", name, "version", version, "err", err)
	}
}

func (f *Frontend) delete(w http.ResponseWriter, req *request) {
	ref, err := config.ParseFunctionName(req.name, config.RuleManage)
	if err == nil {
		ref, err = ref.WithQualifier(req.r.URL.Query().Get("Qualifier"))
	}
	if err == nil && ref.Qualifier != "" && ref.Qualifier != config.LatestVersion && !config.IsVersionQualifier(ref.Qualifier) {
		err = invalidParam("Deletion of aliases is not currently supported.")
	}
	if err == nil && ref.Qualifier == config.LatestVersion {
		err = invalidParam("$LATEST version cannot be deleted without deleting the function.")
	}
	if err == nil {
		err = ref.ResolveQualified(req.account, f.cfg.Region, req.op.String())
	}
	if err == nil {
		if ref.Qualifier != "" {
			err = f.cfg.Functions.DeleteVersion(req.r.Context(), req.account, ref.Name, ref.Qualifier)
		} else {
			var latest *config.Function
			latest, err = f.cfg.Functions.Get(req.r.Context(), req.account, ref.Name)
			if err == nil {
				err = f.cfg.Functions.Delete(req.r.Context(), req.account, ref.Name)
			}
			if err == nil {
				f.clearReservation(req.account, ref.Name)
				f.clearProvisioned(latest)
			}
		}
	}
	if err == nil {
		f.forgetSnapshots(req, ref.Name, ref.Qualifier)
		f.deleteEventConfigs(req, ref)
		if f.cfg.Retire != nil {
			arn := fmt.Sprintf("arn:aws:lambda:%s:%s:function:%s", f.cfg.Region, req.account, ref.Name)
			if ref.Qualifier != "" {
				arn += ":" + ref.Qualifier
			}
			f.cfg.Retire(arn)
		}
	}
	if err != nil {
		f.fail(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
