package config

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"kindling/internal/errdefs"
)

// TestPickVersionSplit draws from a seeded source and checks the share
// routed to the additional version against the binomial 3-sigma bound.
func TestPickVersionSplit(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, w := range []float64{0, 0.01, 0.25, 0.5, 0.9, 1} {
		a := &Alias{FunctionVersion: "1", Weights: map[string]float64{"2": w}}
		const n = 100000
		hits := 0
		for range n {
			switch a.PickVersion(r.Float64()) {
			case "2":
				hits++
			case "1":
			default:
				t.Fatal("picked neither version")
			}
		}
		sigma := math.Sqrt(n * w * (1 - w))
		if d := math.Abs(float64(hits) - n*w); d > 3*sigma+1e-9 {
			t.Errorf("weight %v: %d of %d routed, %.1f sigma off", w, hits, n, d/sigma)
		}
	}
	// The boundaries of [0, 1).
	a := &Alias{FunctionVersion: "1", Weights: map[string]float64{"2": 0.5}}
	if a.PickVersion(0) != "2" || a.PickVersion(0.5) != "1" || a.PickVersion(math.Nextafter(0.5, 0)) != "2" {
		t.Error("interval boundaries")
	}
	if (&Alias{FunctionVersion: "3"}).PickVersion(0.1) != "3" {
		t.Error("no routing")
	}
	// Several weights (not allowed by Lambda, but defined): ascending key
	// order, cumulative.
	m := &Alias{FunctionVersion: "1", Weights: map[string]float64{"3": 0.2, "2": 0.1}}
	for u, want := range map[float64]string{0.05: "2", 0.15: "3", 0.29: "3", 0.31: "1"} {
		if got := m.PickVersion(u); got != want {
			t.Errorf("PickVersion(%v) = %s, want %s", u, got, want)
		}
	}
}

func TestRoutingChecks(t *testing.T) {
	for _, tc := range []struct {
		primary string
		weights map[string]float64
		msg     string
	}{
		{"1", nil, ""},
		{"1", map[string]float64{"2": 0.5}, ""},
		{"1", map[string]float64{"2": 0.5, "3": 0.1}, "Number of items in AdditionalVersionWeights cannot be greater than 1"},
		{"1", map[string]float64{"1": 0.5}, "Invalid function version 1. Function version 1 is already included in routing configuration."},
		{LatestVersion, map[string]float64{"1": 0.5}, "$LATEST is not supported for an alias pointing to more than 1 version"},
	} {
		err := CheckRouting(tc.primary, tc.weights)
		if tc.msg == "" {
			if err != nil {
				t.Errorf("%v %v: %v", tc.primary, tc.weights, err)
			}
			continue
		}
		if !errors.Is(err, errdefs.ErrInvalid) || !strings.HasSuffix(err.Error(), tc.msg) {
			t.Errorf("%v %v: %v, want %q", tc.primary, tc.weights, err, tc.msg)
		}
	}
	v := RoutingViolations(map[string]float64{"2": 2})
	if len(v) != 1 || v[0] != "Value '{2=2.0}' at 'routingConfig.additionalVersionWeights' failed to satisfy constraint: Map value must satisfy constraint: [Member must have value less than or equal to 1.0, Member must have value greater than or equal to 0.0, Member must not be null]" {
		t.Errorf("too high: %q", v)
	}
	v = RoutingViolations(map[string]float64{"$LATEST": 0.5})
	if len(v) != 1 || v[0] != "Value '{$LATEST=0.5}' at 'routingConfig.additionalVersionWeights' failed to satisfy constraint: Map keys must satisfy constraint: [Member must have length less than or equal to 1024, Member must have length greater than or equal to 1, Member must satisfy regular expression pattern: [0-9]+]" {
		t.Errorf("bad key: %q", v)
	}
	if v := RoutingViolations(map[string]float64{"2": -1, "3": math.NaN()}); len(v) != 2 {
		t.Errorf("negative and null: %q", v)
	}
	if v := RoutingViolations(map[string]float64{"2": 0, "3": 1}); len(v) != 0 {
		t.Errorf("bounds refused: %q", v)
	}
}

func TestAliasNames(t *testing.T) {
	for _, ok := range []string{"live", "a", "v1", "1a", "_-", strings.Repeat("x", 128)} {
		if !ValidAliasName(ok) || len(AliasNameViolations(ok, "name")) != 0 {
			t.Errorf("%q refused", ok)
		}
	}
	for _, bad := range []string{"", "2024", "a.b", "a$b", "$LATEST", strings.Repeat("x", 129)} {
		if ValidAliasName(bad) || len(AliasNameViolations(bad, "name")) == 0 {
			t.Errorf("%q accepted", bad)
		}
	}
	v := AliasNameViolations("2024", "name")
	if len(v) != 1 || v[0] != "Value '2024' at 'name' failed to satisfy constraint: Member must satisfy regular expression pattern: (?!^[0-9]+$)([a-zA-Z0-9-_]+)" {
		t.Errorf("digits: %q", v)
	}
	if v := FunctionVersionViolations("v1", "functionVersion"); len(v) != 1 ||
		v[0] != `Value 'v1' at 'functionVersion' failed to satisfy constraint: Member must satisfy regular expression pattern: (\$LATEST|[0-9]+)` {
		t.Errorf("function version: %q", v)
	}
}

func TestAliasLifecycle(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	if err := st.Create(ctx, newFn("al")); err != nil {
		t.Fatal(err)
	}
	mustPublish(t, st, "al")
	setMemory(t, st, "al", 256)
	mustPublish(t, st, "al")

	a := &Alias{Account: acct, Function: "al", Name: "live", FunctionVersion: "1", Description: "d", Weights: map[string]float64{"2": 0.1}}
	if err := st.CreateAlias(ctx, a); err != nil {
		t.Fatal(err)
	}
	if a.RevisionID == "" || a.ARN() != "arn:aws:lambda:us-east-1:123456789012:function:al:live" {
		t.Errorf("created %+v", a)
	}
	err := st.CreateAlias(ctx, &Alias{Account: acct, Function: "al", Name: "live", FunctionVersion: "1"})
	if !errors.Is(err, errdefs.ErrConflict) || !strings.HasSuffix(err.Error(), "Alias already exists: arn:aws:lambda:us-east-1:123456789012:function:al:live") {
		t.Errorf("duplicate: %v", err)
	}
	for _, tc := range []struct {
		a   Alias
		msg string
	}{
		{Alias{Function: "al", Name: "x", FunctionVersion: "10"}, "Function not found: arn:aws:lambda:us-east-1:123456789012:function:al:10"},
		{Alias{Function: "al", Name: "x", FunctionVersion: "1", Weights: map[string]float64{"10": 0.5}}, "Function not found: arn:aws:lambda:us-east-1:123456789012:function:al:10"},
		{Alias{Function: "other", Name: "x", FunctionVersion: "1"}, "Function not found: arn:aws:lambda:us-east-1:123456789012:function:other"},
		{Alias{Function: "al", Name: "x", FunctionVersion: LatestVersion, Weights: map[string]float64{"1": 0.5}}, "$LATEST is not supported for an alias pointing to more than 1 version"},
	} {
		tc.a.Account = acct
		if err := st.CreateAlias(ctx, &tc.a); err == nil || !strings.HasSuffix(err.Error(), tc.msg) {
			t.Errorf("%+v: %v", tc.a, err)
		}
	}

	got, err := st.GetAlias(ctx, acct, "al", "live")
	if err != nil || got.FunctionVersion != "1" || got.Weights["2"] != 0.1 || got.RevisionID != a.RevisionID || got.Description != "d" {
		t.Errorf("GetAlias: %+v, %v", got, err)
	}
	_, err = st.GetAlias(ctx, acct, "al", "nope")
	if !errors.Is(err, errdefs.ErrNotFound) || !strings.HasSuffix(err.Error(), "Cannot find alias arn: arn:aws:lambda:us-east-1:123456789012:function:al:nope") {
		t.Errorf("missing alias: %v", err)
	}
	up, err := st.UpdateAlias(ctx, acct, "al", "live", func(a *Alias) error {
		a.FunctionVersion, a.Weights, a.Name = "2", nil, "renamed"
		return nil
	})
	if err != nil || up.FunctionVersion != "2" || up.Weights != nil || up.Name != "live" || up.RevisionID == a.RevisionID {
		t.Errorf("UpdateAlias: %+v, %v", up, err)
	}
	_, err = st.UpdateAlias(ctx, acct, "al", "nope", func(*Alias) error { return nil })
	if !errors.Is(err, errdefs.ErrNotFound) || !strings.HasSuffix(err.Error(), "Alias not found: arn:aws:lambda:us-east-1:123456789012:function:al:nope") {
		t.Errorf("update missing alias: %v", err)
	}
	_, err = st.UpdateAlias(ctx, acct, "al", "live", func(a *Alias) error { a.FunctionVersion = "9"; return nil })
	if !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("update to a missing version: %v", err)
	}

	if err := st.CreateAlias(ctx, &Alias{Account: acct, Function: "al", Name: "beta", FunctionVersion: "1"}); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateAlias(ctx, &Alias{Account: acct, Function: "al", Name: "alpha", FunctionVersion: "2"}); err != nil {
		t.Fatal(err)
	}
	names := func(as []*Alias) string {
		var s []string
		for _, a := range as {
			s = append(s, a.Name)
		}
		return strings.Join(s, " ")
	}
	page, next, err := st.ListAliases(ctx, acct, "al", "", "", 2)
	if err != nil || names(page) != "alpha beta" || next != "beta" {
		t.Errorf("page 1: %s %q %v", names(page), next, err)
	}
	page, next, err = st.ListAliases(ctx, acct, "al", "", next, 2)
	if err != nil || names(page) != "live" || next != "" {
		t.Errorf("page 2: %s %q %v", names(page), next, err)
	}
	page, _, err = st.ListAliases(ctx, acct, "al", "2", "", 50)
	if err != nil || names(page) != "alpha live" {
		t.Errorf("filtered: %s %v", names(page), err)
	}
	err = st.DeleteVersion(ctx, acct, "al", "2")
	if !strings.HasSuffix(fmtErr(err), "Unable to delete version because the following aliases reference it: [alpha, live]") {
		t.Errorf("delete version 2: %v", err)
	}

	if err := st.DeleteAlias(ctx, acct, "al", "live"); err != nil {
		t.Fatal(err)
	}
	if err := st.DeleteAlias(ctx, acct, "al", "live"); err != nil {
		t.Errorf("deleting a missing alias: %v", err)
	}
	if err := st.DeleteAlias(ctx, acct, "gone", "live"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("alias of a missing function: %v", err)
	}
}

func fmtErr(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}
