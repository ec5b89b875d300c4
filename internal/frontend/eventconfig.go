package frontend

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"kindling/internal/async"
	"kindling/internal/config"
	"kindling/internal/errdefs"
)

// The event invoke config API (API version 2019-09-25):
//
//	PUT    /2019-09-25/functions/{FunctionName}/event-invoke-config       Put (replace)
//	POST   /2019-09-25/functions/{FunctionName}/event-invoke-config       Update (merge)
//	GET    /2019-09-25/functions/{FunctionName}/event-invoke-config       Get
//	DELETE /2019-09-25/functions/{FunctionName}/event-invoke-config       Delete
//	GET    /2019-09-25/functions/{FunctionName}/event-invoke-config/list  List
//
// each with ?Qualifier= (a version or alias; $LATEST when absent), List with
// Marker and MaxItems.

const eventConfigPrefix = "/2019-09-25/functions/"

// routeEventConfig maps an event invoke config request (escaped path p).
func routeEventConfig(r *http.Request, p string) (o op, name string, ok bool) {
	rest, found := strings.CutPrefix(p, eventConfigPrefix)
	if !found {
		return 0, "", false
	}
	label, sub, _ := strings.Cut(rest, "/")
	name, err := url.PathUnescape(label)
	if err != nil || name == "" {
		return 0, "", false
	}
	switch {
	case sub == "event-invoke-config" && r.Method == http.MethodPut:
		return opPutEventConfig, name, true
	case sub == "event-invoke-config" && r.Method == http.MethodPost:
		return opUpdateEventConfig, name, true
	case sub == "event-invoke-config" && r.Method == http.MethodGet:
		return opGetEventConfig, name, true
	case sub == "event-invoke-config" && r.Method == http.MethodDelete:
		return opDeleteEventConfig, name, true
	case sub == "event-invoke-config/list" && r.Method == http.MethodGet:
		return opListEventConfigs, name, true
	}
	return 0, "", false
}

// eventConfigInput is the body of Put and Update.
type eventConfigInput struct {
	MaximumRetryAttempts     *int               `json:"MaximumRetryAttempts"`
	MaximumEventAgeInSeconds *int               `json:"MaximumEventAgeInSeconds"`
	DestinationConfig        *destinationConfig `json:"DestinationConfig"`
}

type destinationConfig struct {
	OnSuccess *destination `json:"OnSuccess"`
	OnFailure *destination `json:"OnFailure"`
}

type destination struct {
	Destination string `json:"Destination,omitempty"`
}

// eventConfigOutput is FunctionEventInvokeConfig.
type eventConfigOutput struct {
	LastModified             float64           `json:"LastModified"`
	FunctionArn              string            `json:"FunctionArn"`
	MaximumRetryAttempts     *int              `json:"MaximumRetryAttempts,omitempty"`
	MaximumEventAgeInSeconds *int              `json:"MaximumEventAgeInSeconds,omitempty"`
	DestinationConfig        destinationConfig `json:"DestinationConfig"`
}

func (f *Frontend) eventConfigOutput(c *config.EventInvokeConfig) eventConfigOutput {
	return eventConfigOutput{
		LastModified:             float64(c.LastModified.UnixMilli()) / 1000,
		FunctionArn:              c.QualifiedARN(f.cfg.Region),
		MaximumRetryAttempts:     c.MaximumRetryAttempts,
		MaximumEventAgeInSeconds: c.MaximumEventAgeInSeconds,
		DestinationConfig: destinationConfig{
			OnSuccess: &destination{Destination: c.OnSuccess},
			OnFailure: &destination{Destination: c.OnFailure},
		},
	}
}

// maxDestinationARN is the model's limit on a destination ARN.
const maxDestinationARN = 350

// check validates the input against the model and Kindling's support.
func (f *Frontend) checkEventConfig(req *request, in *eventConfigInput) error {
	var v []string
	v = appendRange(v, in.MaximumRetryAttempts, "maximumRetryAttempts", 0, config.MaxMaximumRetryAttempts)
	v = appendRange(v, in.MaximumEventAgeInSeconds, "maximumEventAgeInSeconds",
		config.MinMaximumEventAgeInSeconds, config.MaxMaximumEventAgeInSeconds)
	var dests []struct{ field, arn string }
	if dc := in.DestinationConfig; dc != nil {
		if dc.OnSuccess != nil && dc.OnSuccess.Destination != "" {
			dests = append(dests, struct{ field, arn string }{"destinationConfig.onSuccess.destination", dc.OnSuccess.Destination})
		}
		if dc.OnFailure != nil && dc.OnFailure.Destination != "" {
			dests = append(dests, struct{ field, arn string }{"destinationConfig.onFailure.destination", dc.OnFailure.Destination})
		}
	}
	for _, d := range dests {
		if len(d.arn) > maxDestinationARN {
			v = append(v, config.Violation(shorten(d.arn), d.field, fmt.Sprintf("Member must have length less than or equal to %d", maxDestinationARN)))
		}
	}
	if err := config.NewValidationError(v...); err != nil {
		return err
	}
	if in.MaximumRetryAttempts == nil && in.MaximumEventAgeInSeconds == nil && in.DestinationConfig == nil {
		return invalidParam("You must specify at least one of error handling or destination setting.")
	}
	for _, d := range dests {
		if err := f.checkDestination(req, d.arn); err != nil {
			return err
		}
	}
	return nil
}

// checkDestination accepts SQS queues and functions of the caller's
// account in this region.
func (f *Frontend) checkDestination(req *request, arn string) error {
	d, err := async.ParseDestination(arn)
	if err != nil {
		return err
	}
	if d.Account != req.account || d.Region != f.cfg.Region {
		return invalidParam("The destination %s is not in this account and region: Kindling delivers to queues and functions of the same account only.", shorten(arn))
	}
	return nil
}

// eventConfigTarget resolves the function and qualifier of an event invoke
// config request and checks that they exist.
func (f *Frontend) eventConfigTarget(req *request) (config.FunctionRef, error) {
	ref, err := config.ParseFunctionName(req.name, config.RuleManage)
	if err == nil {
		ref, err = ref.WithQualifier(req.r.URL.Query().Get("Qualifier"))
	}
	if err == nil {
		err = ref.ResolveQualified(req.account, f.cfg.Region, req.op.String())
	}
	if err != nil {
		return ref, err
	}
	if ref.Qualifier == "" {
		ref.Qualifier = config.LatestVersion
	}
	q := ref.Qualifier
	if q == config.LatestVersion {
		q = ""
	}
	if _, _, err := f.cfg.Functions.GetQualified(req.r.Context(), req.account, ref.Name, q); err != nil {
		return ref, err
	}
	return ref, nil
}

func (f *Frontend) eventConfig(w http.ResponseWriter, req *request) {
	if f.cfg.EventConfigs == nil {
		f.fail(w, invalidParam("Asynchronous invocation is not enabled on this server."))
		return
	}
	switch req.op {
	case opListEventConfigs:
		f.listEventConfigs(w, req)
		return
	}
	ref, err := f.eventConfigTarget(req)
	if err != nil {
		f.fail(w, err)
		return
	}
	ctx := req.r.Context()
	store := f.cfg.EventConfigs
	switch req.op {
	case opGetEventConfig:
		c, err := store.Get(ctx, req.account, ref.Name, ref.Qualifier)
		if err != nil {
			f.fail(w, err)
			return
		}
		f.writeJSON(w, http.StatusOK, f.eventConfigOutput(c))
	case opDeleteEventConfig:
		if err := store.Delete(ctx, req.account, ref.Name, ref.Qualifier); err != nil {
			f.fail(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	case opPutEventConfig, opUpdateEventConfig:
		var in eventConfigInput
		if err := decodeJSON(req.body, &in); err != nil {
			f.fail(w, err)
			return
		}
		if err := f.checkEventConfig(req, &in); err != nil {
			f.fail(w, err)
			return
		}
		var c *config.EventInvokeConfig
		if req.op == opPutEventConfig {
			c = &config.EventInvokeConfig{Account: req.account, Name: ref.Name, Qualifier: ref.Qualifier}
			in.applyTo(c)
			err = store.Put(ctx, c)
		} else {
			c, err = store.Update(ctx, req.account, ref.Name, ref.Qualifier, func(c *config.EventInvokeConfig) error {
				in.applyTo(c)
				return nil
			})
		}
		if err != nil {
			f.fail(w, err)
			return
		}
		f.writeJSON(w, http.StatusOK, f.eventConfigOutput(c))
	}
}

// applyTo sets the members given in in (Update's merge; Put applies to an
// empty configuration). A destination given as "" clears it.
func (in *eventConfigInput) applyTo(c *config.EventInvokeConfig) {
	if in.MaximumRetryAttempts != nil {
		n := *in.MaximumRetryAttempts
		c.MaximumRetryAttempts = &n
	}
	if in.MaximumEventAgeInSeconds != nil {
		n := *in.MaximumEventAgeInSeconds
		c.MaximumEventAgeInSeconds = &n
	}
	if dc := in.DestinationConfig; dc != nil {
		if dc.OnSuccess != nil {
			c.OnSuccess = dc.OnSuccess.Destination
		}
		if dc.OnFailure != nil {
			c.OnFailure = dc.OnFailure.Destination
		}
	}
}

func (f *Frontend) listEventConfigs(w http.ResponseWriter, req *request) {
	ref, err := config.ParseFunctionName(req.name, config.RuleManage)
	if err == nil {
		err = ref.ResolveQualified(req.account, f.cfg.Region, req.op.String())
	}
	if err == nil {
		_, err = f.cfg.Functions.Get(req.r.Context(), req.account, ref.Name)
	}
	if err != nil {
		f.fail(w, err)
		return
	}
	q := req.r.URL.Query()
	max := 50
	if s := q.Get("MaxItems"); s != "" {
		n, err := strconv.Atoi(s)
		switch {
		case err != nil:
			err = config.NewValidationError(config.Violation(shorten(s), "maxItems", "Member must be an integer"))
		case n < 1:
			err = config.NewValidationError(config.Violation(s, "maxItems", "Member must have value greater than or equal to 1"))
		case n > 50:
			err = config.NewValidationError(config.Violation(s, "maxItems", "Member must have value less than or equal to 50"))
		}
		if err != nil {
			f.fail(w, err)
			return
		}
		max = n
	}
	cs, err := f.cfg.EventConfigs.List(req.r.Context(), req.account, ref.Name)
	if err != nil {
		f.fail(w, err)
		return
	}
	start := 0
	if m := q.Get("Marker"); m != "" {
		start = len(cs)
		for i, c := range cs {
			if c.Qualifier == m {
				start = i + 1
				break
			}
		}
	}
	cs = cs[start:]
	out := struct {
		FunctionEventInvokeConfigs []eventConfigOutput `json:"FunctionEventInvokeConfigs"`
		NextMarker                 string              `json:"NextMarker,omitempty"`
	}{FunctionEventInvokeConfigs: []eventConfigOutput{}}
	if len(cs) > max {
		cs = cs[:max]
		out.NextMarker = cs[max-1].Qualifier
	}
	for _, c := range cs {
		out.FunctionEventInvokeConfigs = append(out.FunctionEventInvokeConfigs, f.eventConfigOutput(c))
	}
	f.writeJSON(w, http.StatusOK, out)
}

// deleteEventConfigs removes the event invoke configurations that go with a
// deleted function (every qualifier) or version. A failure is logged: the
// function is gone, and a configuration left behind only applies again if
// a function of the same name is created.
func (f *Frontend) deleteEventConfigs(req *request, ref config.FunctionRef) {
	if f.cfg.EventConfigs == nil {
		return
	}
	var err error
	if ref.Qualifier == "" {
		err = f.cfg.EventConfigs.DeleteAll(req.r.Context(), req.account, ref.Name)
	} else {
		err = f.cfg.EventConfigs.Delete(req.r.Context(), req.account, ref.Name, ref.Qualifier)
		if errors.Is(err, errdefs.ErrNotFound) {
			err = nil
		}
	}
	if err != nil {
		f.log.Warn("deleting event invoke configs of a deleted function", "function", ref.Name, "qualifier", ref.Qualifier, "err", err)
	}
}
