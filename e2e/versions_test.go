package e2e

import (
	"math"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// envResult is what behave's "env" op returns.
type envResult struct {
	Env map[string]string `json:"env"`
	ID  string            `json:"id"`
}

// fnEnv is the environment createInput gives name, plus extra.
func fnEnv(name string, extra map[string]string) map[string]string {
	env := map[string]string{"E2E_RUN_ID": runID, "E2E_FN": name + "-" + runID}
	for k, v := range extra {
		env[k] = v
	}
	return env
}

// invokeQualified invokes name with a Qualifier parameter.
func invokeQualified(t *testing.T, name, qualifier string, event string) (*lambda.InvokeOutput, error) {
	t.Helper()
	return srv.client().Invoke(ctx(t), &lambda.InvokeInput{
		FunctionName: aws.String(name), Qualifier: aws.String(qualifier), Payload: []byte(event),
	})
}

// envOf invokes name:qualifier with {"op":"env"} and returns the executed
// version and the function's environment.
func envOf(t *testing.T, name, qualifier string) (string, map[string]string) {
	t.Helper()
	out, err := invokeQualified(t, name, qualifier, `{"op":"env"}`)
	if err != nil {
		t.Fatalf("Invoke %s:%s: %s", name, qualifier, describe(err))
	}
	inv := &invocation{out: out}
	var r envResult
	inv.decode(t, &r)
	return aws.ToString(out.ExecutedVersion), r.Env
}

// TestVersionsAndAliases publishes two versions of behave that differ only
// in an environment variable, replaces $LATEST's code, and checks that
// each version keeps its own behaviour, that an alias splits traffic by
// its weights, and Lambda's deletion rules, all through the real SDK; then
// that the kindling CLI works on a function that has versions.
func TestVersionsAndAliases(t *testing.T) {
	requireServer(t)
	t.Parallel()
	const name = "e2e-versions"
	c := srv.client()
	createFunction(t, name, fnSpec{env: map[string]string{"BEHAVIOUR": "one"}})

	v1, err := c.PublishVersion(ctx(t), &lambda.PublishVersionInput{FunctionName: aws.String(name), Description: aws.String("one")})
	if err != nil {
		t.Fatalf("PublishVersion: %s", describe(err))
	}
	if aws.ToString(v1.Version) != "1" || aws.ToString(v1.FunctionArn) != functionARN(name)+":1" || v1.State != types.StateActive {
		t.Fatalf("first version: %s %s %s", aws.ToString(v1.Version), aws.ToString(v1.FunctionArn), v1.State)
	}
	same, err := c.PublishVersion(ctx(t), &lambda.PublishVersionInput{FunctionName: aws.String(name)})
	if err != nil || aws.ToString(same.Version) != "1" {
		t.Errorf("publishing unchanged $LATEST: version %v, %s (want 1 again)", same, describe(err))
	}

	if _, err := c.UpdateFunctionConfiguration(ctx(t), &lambda.UpdateFunctionConfigurationInput{
		FunctionName: aws.String(name),
		Environment:  &types.Environment{Variables: fnEnv(name, map[string]string{"BEHAVIOUR": "two"})},
	}); err != nil {
		t.Fatalf("UpdateFunctionConfiguration: %s", describe(err))
	}
	waitUpdated(t, c, name)
	v2, err := c.PublishVersion(ctx(t), &lambda.PublishVersionInput{FunctionName: aws.String(name)})
	if err != nil || aws.ToString(v2.Version) != "2" {
		t.Fatalf("second version: %v %s", v2, describe(err))
	}

	// $LATEST becomes a different program; the published versions must not
	// notice.
	if _, err := c.UpdateFunctionCode(ctx(t), &lambda.UpdateFunctionCodeInput{FunctionName: aws.String(name), ZipFile: zips["echo"]}); err != nil {
		t.Fatalf("UpdateFunctionCode: %s", describe(err))
	}
	waitUpdated(t, c, name)
	out, err := invokeQualified(t, name, "$LATEST", `{"op":"env","marker":"echoed"}`)
	if err != nil || aws.ToString(out.ExecutedVersion) != "$LATEST" || !strings.Contains(string(out.Payload), `"marker":"echoed"`) {
		t.Errorf("$LATEST after the code update: %v %s", out, describe(err))
	}
	for _, tc := range []struct{ qualifier, behaviour string }{{"1", "one"}, {"2", "two"}} {
		version, env := envOf(t, name, tc.qualifier)
		if version != tc.qualifier || env["BEHAVIOUR"] != tc.behaviour || env["AWS_LAMBDA_FUNCTION_VERSION"] != tc.qualifier {
			t.Errorf("version %s: executed %s, BEHAVIOUR=%q, AWS_LAMBDA_FUNCTION_VERSION=%q", tc.qualifier, version,
				env["BEHAVIOUR"], env["AWS_LAMBDA_FUNCTION_VERSION"])
		}
	}
	// The qualifier in a full ARN and in NAME:QUALIFIER.
	for _, fn := range []string{functionARN(name) + ":2", name + ":2"} {
		inv := invoke(t, fn, map[string]string{"op": "env"})
		var r envResult
		inv.decode(t, &r)
		if aws.ToString(inv.out.ExecutedVersion) != "2" || r.Env["BEHAVIOUR"] != "two" {
			t.Errorf("Invoke %s: executed %s, BEHAVIOUR=%q", fn, aws.ToString(inv.out.ExecutedVersion), r.Env["BEHAVIOUR"])
		}
	}
	_, err = invokeQualified(t, name, "9", `{}`)
	wantAPIError(t, "Invoke a missing version", err, 404, "ResourceNotFoundException")

	// An alias sending 30% to version 2.
	const weight = 0.3
	if _, err := c.CreateAlias(ctx(t), &lambda.CreateAliasInput{
		FunctionName: aws.String(name), Name: aws.String("live"), FunctionVersion: aws.String("1"),
		RoutingConfig: &types.AliasRoutingConfiguration{AdditionalVersionWeights: map[string]float64{"2": weight}},
	}); err != nil {
		t.Fatalf("CreateAlias: %s", describe(err))
	}
	const n = 1000
	counts := map[string]int{}
	for range n {
		version, env := envOf(t, name, "live")
		counts[version]++
		if want := map[string]string{"1": "one", "2": "two"}[version]; env["BEHAVIOUR"] != want {
			t.Fatalf("alias ran version %q with BEHAVIOUR=%q", version, env["BEHAVIOUR"])
		}
	}
	// 4.5 sigma: a correct split fails this about once in 150,000 runs,
	// while a weight ignored or misapplied (0, 1000, or 700 of 1000 on
	// version 2) is tens of sigma away.
	sigma := math.Sqrt(n * weight * (1 - weight))
	if d := math.Abs(float64(counts["2"]) - n*weight); d > 4.5*sigma || counts["1"]+counts["2"] != n {
		t.Errorf("alias split %v over %d invokes: version 2 got %d, want %.0f ± %.0f (4.5 sigma)", counts, n, counts["2"], n*weight, 4.5*sigma)
	}
	t.Logf("alias split over %d invokes: %v (weight %.1f on version 2)", n, counts, weight)

	// Deletion rules.
	_, err = c.DeleteFunction(ctx(t), &lambda.DeleteFunctionInput{FunctionName: aws.String(name), Qualifier: aws.String("2")})
	wantAPIError(t, "DeleteFunction of a version an alias routes to", err, 409, "ResourceConflictException")
	_, err = c.DeleteFunction(ctx(t), &lambda.DeleteFunctionInput{FunctionName: aws.String(name), Qualifier: aws.String("$LATEST")})
	wantAPIError(t, "DeleteFunction of $LATEST", err, 400, "InvalidParameterValueException")
	if _, err := c.UpdateAlias(ctx(t), &lambda.UpdateAliasInput{
		FunctionName: aws.String(name), Name: aws.String("live"), FunctionVersion: aws.String("2"),
		RoutingConfig: &types.AliasRoutingConfiguration{},
	}); err != nil {
		t.Fatalf("UpdateAlias: %s", describe(err))
	}
	if version, _ := envOf(t, name, "live"); version != "2" {
		t.Errorf("alias moved to 2 ran %s", version)
	}
	if _, err := c.DeleteFunction(ctx(t), &lambda.DeleteFunctionInput{FunctionName: aws.String(name), Qualifier: aws.String("1")}); err != nil {
		t.Errorf("DeleteFunction of version 1: %s", describe(err))
	}
	_, err = invokeQualified(t, name, "1", `{}`)
	wantAPIError(t, "Invoke a deleted version", err, 404, "ResourceNotFoundException")
	vs, err := c.ListVersionsByFunction(ctx(t), &lambda.ListVersionsByFunctionInput{FunctionName: aws.String(name)})
	if err != nil || len(vs.Versions) != 2 || aws.ToString(vs.Versions[0].Version) != "$LATEST" || aws.ToString(vs.Versions[1].Version) != "2" {
		t.Errorf("ListVersionsByFunction after deleting 1: %v %s", vs, describe(err))
	}
	// A number is never reused: the next version is 3.
	if _, err := c.UpdateFunctionCode(ctx(t), &lambda.UpdateFunctionCodeInput{FunctionName: aws.String(name), ZipFile: zips["behave"], Publish: true}); err != nil {
		t.Fatalf("UpdateFunctionCode with Publish: %s", describe(err))
	}
	waitUpdated(t, c, name)
	if version, env := envOf(t, name, "3"); version != "3" || env["BEHAVIOUR"] != "two" {
		t.Errorf("version 3: executed %s, BEHAVIOUR=%q", version, env["BEHAVIOUR"])
	}

	// The user CLI on a function with versions: it works on $LATEST.
	cliEnv := []string{
		"KINDLING_ENDPOINT=" + srv.url,
		"KINDLING_ACCESS_KEY_ID=" + srv.creds.AccessKeyID,
		"KINDLING_SECRET_ACCESS_KEY=" + srv.creds.SecretAccessKey,
	}
	stdout, stderr, code := runCLI(t, cliEnv, "invoke", name, "--payload", `{"op":"noop"}`, "--no-logs")
	if code != 0 || !strings.Contains(stdout, `"ok":true`) {
		t.Errorf("kindling invoke: exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	stdout, stderr, code = runCLI(t, cliEnv, "list")
	if code != 0 || strings.Count(stdout, name) != 1 {
		t.Errorf("kindling list shows %s %d times (want once): exit %d\nstdout: %s\nstderr: %s", name, strings.Count(stdout, name), code, stdout, stderr)
	}
	stdout, stderr, code = runCLI(t, cliEnv, "delete", name)
	if code != 0 {
		t.Fatalf("kindling delete: exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	_, err = invokeQualified(t, name, "live", `{}`)
	wantAPIError(t, "Invoke an alias of a deleted function", err, 404, "ResourceNotFoundException")
	_, err = c.GetFunction(ctx(t), &lambda.GetFunctionInput{FunctionName: aws.String(name), Qualifier: aws.String("3")})
	wantAPIError(t, "GetFunction of a version of a deleted function", err, 404, "ResourceNotFoundException")
}
