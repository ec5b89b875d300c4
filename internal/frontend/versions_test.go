package frontend

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"kindling/internal/invoke"
)

const fnARN = "arn:aws:lambda:us-east-1:123456789012:function:"

// wantErr fails t unless err is the AWS error code with status and a
// message ending in msg ("" for any).
func wantErr(t *testing.T, what string, err error, status int, code, msg string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: succeeded, want %d %s", what, status, code)
		return
	}
	c, m, s := apiError(t, err)
	if c != code || s != status || !strings.HasSuffix(m, msg) {
		t.Errorf("%s: %s %d %q, want %s %d %q", what, c, s, m, code, status, msg)
	}
}

// TestVersions drives PublishVersion, ListVersionsByFunction, qualified
// GetFunction/GetFunctionConfiguration and DeleteFunction with a qualifier
// through the real SDK.
func TestVersions(t *testing.T) {
	e := newEnv(t)
	c := e.lambda()
	ctx := context.Background()

	in := createInput(t, "ver")
	in.Publish = true
	in.Description = aws.String("first")
	created, err := c.CreateFunction(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(created.Version) != "1" || aws.ToString(created.FunctionArn) != fnARN+"ver:1" {
		t.Errorf("CreateFunction with Publish: version %s, arn %s", aws.ToString(created.Version), aws.ToString(created.FunctionArn))
	}
	latest, err := c.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String("ver")})
	if err != nil {
		t.Fatal(err)
	}

	// Unchanged: PublishVersion returns version 1 again.
	again, err := c.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("ver")})
	if err != nil || aws.ToString(again.Version) != "1" || aws.ToString(again.RevisionId) != aws.ToString(created.RevisionId) {
		t.Errorf("unchanged publish: %v %v", again, err)
	}

	// Preconditions.
	_, err = c.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("ver"), CodeSha256: aws.String("bogus")})
	wantErr(t, "wrong CodeSha256", err, 400, "InvalidParameterValueException",
		"CodeSHA256 (bogus) is different from current CodeSHA256 in $LATEST ("+aws.ToString(latest.CodeSha256)+"). Please try again with the CodeSHA256 in $LATEST.")
	_, err = c.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("ver"), RevisionId: aws.String("bogus")})
	wantErr(t, "wrong RevisionId", err, 412, "PreconditionFailedException",
		"The Revision Id provided does not match the latest Revision Id. Call the GetFunction/GetAlias API to retrieve the latest Revision Id")

	// Change the configuration and publish 2 with both preconditions met.
	upd, err := c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{
		FunctionName: aws.String("ver"), MemorySize: aws.Int32(512),
	})
	if err != nil {
		t.Fatal(err)
	}
	v2, err := c.PublishVersion(ctx, &lambda.PublishVersionInput{
		FunctionName: aws.String("ver"), CodeSha256: upd.CodeSha256, RevisionId: upd.RevisionId,
		Description: aws.String("second"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(v2.Version) != "2" || aws.ToString(v2.FunctionArn) != fnARN+"ver:2" ||
		aws.ToInt32(v2.MemorySize) != 512 || aws.ToString(v2.Description) != "second" || v2.State != types.StateActive {
		t.Errorf("v2: %+v", v2)
	}

	// UpdateFunctionCode with Publish answers with the new version.
	code, err := c.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{
		FunctionName: aws.String("ver"), ZipFile: makeZip(t, "echo three"), Publish: true,
	})
	if err != nil || aws.ToString(code.Version) != "3" {
		t.Fatalf("UpdateFunctionCode with Publish: %v %v", code, err)
	}

	// Qualified reads: by parameter, by name:qualifier, by ARN; $LATEST
	// qualified too.
	for _, tc := range []struct{ name, qualifier, arn, version string }{
		{"ver", "1", fnARN + "ver:1", "1"},
		{"ver:2", "", fnARN + "ver:2", "2"},
		{fnARN + "ver:1", "", fnARN + "ver:1", "1"},
		{"123456789012:function:ver:2", "2", fnARN + "ver:2", "2"},
		{"ver", "$LATEST", fnARN + "ver:$LATEST", "$LATEST"},
		{"ver", "", fnARN + "ver", "$LATEST"},
	} {
		in := &lambda.GetFunctionInput{FunctionName: aws.String(tc.name)}
		if tc.qualifier != "" {
			in.Qualifier = aws.String(tc.qualifier)
		}
		got, err := c.GetFunction(ctx, in)
		if err != nil {
			t.Errorf("GetFunction %s %s: %v", tc.name, tc.qualifier, err)
			continue
		}
		if aws.ToString(got.Configuration.FunctionArn) != tc.arn || aws.ToString(got.Configuration.Version) != tc.version {
			t.Errorf("GetFunction %s %s: arn %s version %s", tc.name, tc.qualifier,
				aws.ToString(got.Configuration.FunctionArn), aws.ToString(got.Configuration.Version))
		}
	}
	old, err := c.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String("ver"), Qualifier: aws.String("1")})
	if err != nil || aws.ToInt32(old.MemorySize) != 128 || aws.ToString(old.Description) != "first" {
		t.Errorf("version 1 changed: %+v %v", old, err)
	}
	_, err = c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("ver"), Qualifier: aws.String("9")})
	wantErr(t, "missing version", err, 404, "ResourceNotFoundException", "Function not found: "+fnARN+"ver:9")
	_, err = c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("ver:1"), Qualifier: aws.String("2")})
	wantErr(t, "qualifier mismatch", err, 400, "InvalidParameterValueException", "The derived qualifier from the function name does not match the specified qualifier.")

	// Updates are for $LATEST only.
	_, err = c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("ver:1"), Timeout: aws.Int32(9)})
	wantErr(t, "update a version", err, 404, "ResourceNotFoundException", "Function not found: "+fnARN+"ver:1")

	// Listing, two per page.
	var listed []string
	var marker *string
	for range 10 {
		page, err := c.ListVersionsByFunction(ctx, &lambda.ListVersionsByFunctionInput{FunctionName: aws.String("ver"), MaxItems: aws.Int32(2), Marker: marker})
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range page.Versions {
			listed = append(listed, aws.ToString(v.Version)+"="+aws.ToString(v.FunctionArn))
			if v.State != "" {
				t.Errorf("listed version %s has State %s", aws.ToString(v.Version), v.State)
			}
		}
		if marker = page.NextMarker; marker == nil {
			break
		}
	}
	want := "$LATEST=" + fnARN + "ver:$LATEST 1=" + fnARN + "ver:1 2=" + fnARN + "ver:2 3=" + fnARN + "ver:3"
	if strings.Join(listed, " ") != want {
		t.Errorf("ListVersionsByFunction: %v", listed)
	}

	// Deleting: $LATEST and aliases refused, an aliased version conflicts,
	// a missing version is fine.
	_, err = c.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String("ver"), Qualifier: aws.String("$LATEST")})
	wantErr(t, "delete $LATEST", err, 400, "InvalidParameterValueException", "$LATEST version cannot be deleted without deleting the function.")
	_, err = c.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String("ver"), Qualifier: aws.String("live")})
	wantErr(t, "delete an alias", err, 400, "InvalidParameterValueException", "Deletion of aliases is not currently supported.")
	if _, err := c.CreateAlias(ctx, &lambda.CreateAliasInput{FunctionName: aws.String("ver"), Name: aws.String("live"), FunctionVersion: aws.String("2")}); err != nil {
		t.Fatal(err)
	}
	_, err = c.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String("ver"), Qualifier: aws.String("2")})
	wantErr(t, "delete an aliased version", err, 409, "ResourceConflictException", "Unable to delete version because the following aliases reference it: [live]")
	if _, err := c.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String("ver:1")}); err != nil {
		t.Errorf("delete version 1: %v", err)
	}
	if _, err := c.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String("ver"), Qualifier: aws.String("1")}); err != nil {
		t.Errorf("delete version 1 again: %v", err)
	}
	_, err = c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("ver:1")})
	wantErr(t, "deleted version", err, 404, "ResourceNotFoundException", "Function not found: "+fnARN+"ver:1")
	_, err = c.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String("nope"), Qualifier: aws.String("1")})
	wantErr(t, "version of a missing function", err, 404, "ResourceNotFoundException", "Function not found: "+fnARN+"nope")

	// Deleting the function takes its versions and aliases.
	if _, err := c.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String("ver")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateFunction(ctx, createInput(t, "ver")); err != nil {
		t.Fatal(err)
	}
	vs, err := c.ListVersionsByFunction(ctx, &lambda.ListVersionsByFunctionInput{FunctionName: aws.String("ver")})
	if err != nil || len(vs.Versions) != 1 {
		t.Errorf("versions after re-creation: %v %v", vs, err)
	}
	as, err := c.ListAliases(ctx, &lambda.ListAliasesInput{FunctionName: aws.String("ver")})
	if err != nil || len(as.Aliases) != 0 {
		t.Errorf("aliases after re-creation: %v %v", as, err)
	}
}

// TestAliases drives the alias operations through the real SDK.
func TestAliases(t *testing.T) {
	e := newEnv(t)
	c := e.lambda()
	ctx := context.Background()
	in := createInput(t, "al")
	in.Publish = true
	if _, err := c.CreateFunction(ctx, in); err != nil {
		t.Fatal(err)
	}
	if _, err := c.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String("al"), ZipFile: makeZip(t, "echo 2"), Publish: true}); err != nil {
		t.Fatal(err)
	}

	a, err := c.CreateAlias(ctx, &lambda.CreateAliasInput{
		FunctionName: aws.String("al"), Name: aws.String("live"), FunctionVersion: aws.String("1"),
		Description:   aws.String("canary"),
		RoutingConfig: &types.AliasRoutingConfiguration{AdditionalVersionWeights: map[string]float64{"2": 0.2}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(a.AliasArn) != fnARN+"al:live" || aws.ToString(a.FunctionVersion) != "1" ||
		aws.ToString(a.Description) != "canary" || a.RoutingConfig.AdditionalVersionWeights["2"] != 0.2 || aws.ToString(a.RevisionId) == "" {
		t.Errorf("CreateAlias: %+v", a)
	}
	got, err := c.GetAlias(ctx, &lambda.GetAliasInput{FunctionName: aws.String("al"), Name: aws.String("live")})
	if err != nil || aws.ToString(got.RevisionId) != aws.ToString(a.RevisionId) {
		t.Errorf("GetAlias: %+v %v", got, err)
	}
	conf, err := c.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String("al"), Qualifier: aws.String("live")})
	if err != nil || aws.ToString(conf.FunctionArn) != fnARN+"al:live" || aws.ToString(conf.Version) != "1" {
		t.Errorf("configuration by alias: %+v %v", conf, err)
	}

	for _, tc := range []struct {
		in           lambda.CreateAliasInput
		status       int
		code, suffix string
	}{
		{lambda.CreateAliasInput{Name: aws.String("live"), FunctionVersion: aws.String("1")}, 409, "ResourceConflictException", "Alias already exists: " + fnARN + "al:live"},
		{lambda.CreateAliasInput{Name: aws.String("2024"), FunctionVersion: aws.String("1")}, 400, "ValidationException",
			"1 validation error detected: Value '2024' at 'name' failed to satisfy constraint: Member must satisfy regular expression pattern: (?!^[0-9]+$)([a-zA-Z0-9-_]+)"},
		{lambda.CreateAliasInput{Name: aws.String("x"), FunctionVersion: aws.String("10")}, 404, "ResourceNotFoundException", "Function not found: " + fnARN + "al:10"},
		{lambda.CreateAliasInput{Name: aws.String("x"), FunctionVersion: aws.String("1"),
			RoutingConfig: &types.AliasRoutingConfiguration{AdditionalVersionWeights: map[string]float64{"2": 2}}}, 400, "ValidationException",
			"Value '{2=2.0}' at 'routingConfig.additionalVersionWeights' failed to satisfy constraint: Map value must satisfy constraint: [Member must have value less than or equal to 1.0, Member must have value greater than or equal to 0.0, Member must not be null]"},
		{lambda.CreateAliasInput{Name: aws.String("x"), FunctionVersion: aws.String("1"),
			RoutingConfig: &types.AliasRoutingConfiguration{AdditionalVersionWeights: map[string]float64{"1": 0.5}}}, 400, "InvalidParameterValueException",
			"Invalid function version 1. Function version 1 is already included in routing configuration."},
		{lambda.CreateAliasInput{Name: aws.String("x"), FunctionVersion: aws.String("$LATEST"),
			RoutingConfig: &types.AliasRoutingConfiguration{AdditionalVersionWeights: map[string]float64{"1": 0.5}}}, 400, "InvalidParameterValueException",
			"$LATEST is not supported for an alias pointing to more than 1 version"},
		{lambda.CreateAliasInput{Name: aws.String("x"), FunctionVersion: aws.String("1"),
			RoutingConfig: &types.AliasRoutingConfiguration{AdditionalVersionWeights: map[string]float64{"2": 0.5, "3": 0.1}}}, 400, "InvalidParameterValueException",
			"Number of items in AdditionalVersionWeights cannot be greater than 1"},
	} {
		tc.in.FunctionName = aws.String("al")
		_, err := c.CreateAlias(ctx, &tc.in)
		wantErr(t, "CreateAlias "+aws.ToString(tc.in.Name), err, tc.status, tc.code, tc.suffix)
	}
	_, err = c.CreateAlias(ctx, &lambda.CreateAliasInput{FunctionName: aws.String("nope"), Name: aws.String("x"), FunctionVersion: aws.String("1")})
	wantErr(t, "alias of a missing function", err, 404, "ResourceNotFoundException", "Function not found: "+fnARN+"nope")
	_, err = c.GetAlias(ctx, &lambda.GetAliasInput{FunctionName: aws.String("al"), Name: aws.String("nope")})
	wantErr(t, "missing alias", err, 404, "ResourceNotFoundException", "Cannot find alias arn: "+fnARN+"al:nope")

	// UpdateAlias: RevisionId precondition, then a change.
	_, err = c.UpdateAlias(ctx, &lambda.UpdateAliasInput{FunctionName: aws.String("al"), Name: aws.String("live"), RevisionId: aws.String("bogus")})
	wantErr(t, "UpdateAlias revision", err, 412, "PreconditionFailedException", "Call the GetFunction/GetAlias API to retrieve the latest Revision Id")
	up, err := c.UpdateAlias(ctx, &lambda.UpdateAliasInput{
		FunctionName: aws.String("al"), Name: aws.String("live"), RevisionId: a.RevisionId,
		FunctionVersion: aws.String("2"), RoutingConfig: &types.AliasRoutingConfiguration{},
	})
	if err != nil || aws.ToString(up.FunctionVersion) != "2" || up.RoutingConfig != nil || aws.ToString(up.Description) != "canary" ||
		aws.ToString(up.RevisionId) == aws.ToString(a.RevisionId) {
		t.Errorf("UpdateAlias: %+v %v", up, err)
	}
	_, err = c.UpdateAlias(ctx, &lambda.UpdateAliasInput{FunctionName: aws.String("al"), Name: aws.String("nope")})
	wantErr(t, "update a missing alias", err, 404, "ResourceNotFoundException", "Alias not found: "+fnARN+"al:nope")

	// ListAliases with a version filter and pages.
	for _, n := range []string{"b", "c"} {
		if _, err := c.CreateAlias(ctx, &lambda.CreateAliasInput{FunctionName: aws.String("al"), Name: aws.String(n), FunctionVersion: aws.String("1")}); err != nil {
			t.Fatal(err)
		}
	}
	var names []string
	p := lambda.NewListAliasesPaginator(c, &lambda.ListAliasesInput{FunctionName: aws.String("al"), MaxItems: aws.Int32(2)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range page.Aliases {
			names = append(names, aws.ToString(a.Name))
		}
	}
	if strings.Join(names, " ") != "b c live" {
		t.Errorf("ListAliases: %v", names)
	}
	only, err := c.ListAliases(ctx, &lambda.ListAliasesInput{FunctionName: aws.String("al"), FunctionVersion: aws.String("2")})
	if err != nil || len(only.Aliases) != 1 || aws.ToString(only.Aliases[0].Name) != "live" {
		t.Errorf("ListAliases for version 2: %+v %v", only, err)
	}

	if _, err := c.DeleteAlias(ctx, &lambda.DeleteAliasInput{FunctionName: aws.String("al"), Name: aws.String("b")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteAlias(ctx, &lambda.DeleteAliasInput{FunctionName: aws.String("al"), Name: aws.String("b")}); err != nil {
		t.Errorf("deleting a deleted alias: %v", err)
	}
}

// TestInvokeQualified: the invoker gets the version's configuration; the
// executed version header names it.
func TestInvokeQualified(t *testing.T) {
	e := newEnv(t)
	c := e.lambda()
	ctx := context.Background()
	in := createInput(t, "iq")
	in.Publish = true
	if _, err := c.CreateFunction(ctx, in); err != nil {
		t.Fatal(err)
	}
	if _, err := c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("iq"), MemorySize: aws.Int32(256)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateAlias(ctx, &lambda.CreateAliasInput{FunctionName: aws.String("iq"), Name: aws.String("live"), FunctionVersion: aws.String("1")}); err != nil {
		t.Fatal(err)
	}
	// The fake invoker reports no ExecutedVersion: the frontend names the
	// version of the configuration it handed over.
	for _, tc := range []struct {
		name, qualifier, version string
		memory                   int
	}{
		{"iq", "", "$LATEST", 256}, {"iq", "1", "1", 128}, {"iq:1", "", "1", 128}, {"iq", "live", "1", 128},
		{fnARN + "iq:live", "", "1", 128}, {"iq", "$LATEST", "$LATEST", 256},
	} {
		in := &lambda.InvokeInput{FunctionName: aws.String(tc.name), Payload: []byte(`{}`)}
		if tc.qualifier != "" {
			in.Qualifier = aws.String(tc.qualifier)
		}
		out, err := c.Invoke(ctx, in)
		if err != nil {
			t.Errorf("Invoke %s %s: %v", tc.name, tc.qualifier, err)
			continue
		}
		var req *invoke.Request = e.invoker.last()
		if aws.ToString(out.ExecutedVersion) != tc.version || req.Function.Version != tc.version || req.Function.MemoryMB != tc.memory {
			t.Errorf("Invoke %s %s: executed %s, invoker got version %s with %d MB", tc.name, tc.qualifier,
				aws.ToString(out.ExecutedVersion), req.Function.Version, req.Function.MemoryMB)
		}
	}
	for _, q := range []string{"7", "nope"} {
		_, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("iq"), Qualifier: aws.String(q)})
		wantErr(t, "Invoke "+q, err, 404, "ResourceNotFoundException", "Function not found: "+fnARN+"iq:"+q)
	}
}
