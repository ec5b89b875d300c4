package frontend

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"kindling/internal/awsapi"
)

// TestFunctionLifecycle drives the control plane with the real AWS SDK:
// create, wait, read, list, update, wait, delete.
func TestFunctionLifecycle(t *testing.T) {
	e := newEnv(t)
	c := e.lambda()
	ctx := context.Background()

	in := createInput(t, "hello")
	in.Description = aws.String("says hello")
	in.MemorySize = aws.Int32(256)
	in.Timeout = aws.Int32(10)
	in.Environment = &types.Environment{Variables: map[string]string{"GREETING": "hi"}}
	in.Tags = map[string]string{"team": "kindling"}
	in.EphemeralStorage = &types.EphemeralStorage{Size: aws.Int32(1024)}
	in.TracingConfig = &types.TracingConfig{Mode: types.TracingModePassThrough}
	before := time.Now().UTC().Truncate(time.Millisecond)
	out, err := c.CreateFunction(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(in.Code.ZipFile)
	if got := aws.ToString(out.CodeSha256); got != base64.StdEncoding.EncodeToString(sum[:]) {
		t.Errorf("CodeSha256 = %s", got)
	}
	if out.CodeSize != int64(len(in.Code.ZipFile)) {
		t.Errorf("CodeSize = %d", out.CodeSize)
	}
	if aws.ToString(out.FunctionArn) != "arn:aws:lambda:us-east-1:123456789012:function:hello" ||
		aws.ToString(out.FunctionName) != "hello" || aws.ToString(out.Version) != "$LATEST" ||
		out.Runtime != types.RuntimeProvidedal2023 || aws.ToString(out.Handler) != "bootstrap" ||
		aws.ToString(out.Role) != testRole || aws.ToString(out.Description) != "says hello" ||
		aws.ToInt32(out.MemorySize) != 256 || aws.ToInt32(out.Timeout) != 10 ||
		out.Environment.Variables["GREETING"] != "hi" || aws.ToInt32(out.EphemeralStorage.Size) != 1024 ||
		out.PackageType != types.PackageTypeZip || len(out.Architectures) != 1 ||
		out.TracingConfig.Mode != types.TracingModePassThrough || out.State != types.StateActive ||
		out.LastUpdateStatus != types.LastUpdateStatusSuccessful || aws.ToString(out.RevisionId) == "" ||
		aws.ToString(out.LoggingConfig.LogGroup) != "/aws/lambda/hello" || out.LoggingConfig.LogFormat != types.LogFormatText ||
		out.SnapStart.ApplyOn != types.SnapStartApplyOnNone {
		t.Errorf("create output: %+v", out)
	}
	lm, err := time.Parse("2006-01-02T15:04:05.000-0700", aws.ToString(out.LastModified))
	if err != nil || lm.Before(before) || !strings.HasSuffix(aws.ToString(out.LastModified), "+0000") {
		t.Errorf("LastModified %q: %v", aws.ToString(out.LastModified), err)
	}

	if err := lambda.NewFunctionActiveV2Waiter(c).Wait(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("hello")}, 10*time.Second); err != nil {
		t.Fatalf("active waiter: %v", err)
	}
	got, err := c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("hello")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(got.Configuration.RevisionId) != aws.ToString(out.RevisionId) ||
		aws.ToString(got.Code.RepositoryType) != "S3" || got.Tags["team"] != "kindling" {
		t.Errorf("GetFunction: %+v %+v %v", got.Configuration, got.Code, got.Tags)
	}
	// By ARN, partial ARN and qualified name.
	for _, name := range []string{
		"arn:aws:lambda:us-east-1:123456789012:function:hello",
		"123456789012:function:hello", "hello:$LATEST",
	} {
		conf, err := c.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String(name)})
		if err != nil || aws.ToString(conf.FunctionName) != "hello" {
			t.Errorf("GetFunctionConfiguration(%s): %v", name, err)
		}
	}

	// Update the configuration, with and against the revision.
	_, err = c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{
		FunctionName: aws.String("hello"), MemorySize: aws.Int32(512), RevisionId: aws.String("stale"),
	})
	var pf *types.PreconditionFailedException
	if !errors.As(err, &pf) || !strings.Contains(pf.ErrorMessage(), "does not match the latest Revision Id") {
		t.Errorf("stale revision: %v", err)
	}
	upd, err := c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{
		FunctionName: aws.String("hello"), MemorySize: aws.Int32(512), RevisionId: got.Configuration.RevisionId,
		Environment: &types.Environment{Variables: map[string]string{"GREETING": "hello", "EXTRA": "1"}},
		Description: aws.String(""),
	})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToInt32(upd.MemorySize) != 512 || upd.Environment.Variables["EXTRA"] != "1" || aws.ToString(upd.Description) != "" ||
		aws.ToInt32(upd.Timeout) != 10 || aws.ToString(upd.RevisionId) == aws.ToString(out.RevisionId) {
		t.Errorf("update output: %+v", upd)
	}
	if err := lambda.NewFunctionUpdatedV2Waiter(c).Wait(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("hello")}, 10*time.Second); err != nil {
		t.Fatalf("updated waiter: %v", err)
	}

	// Update the code: dry run first, then for real.
	zip2 := makeZip(t, "echo v2")
	dry, err := c.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String("hello"), ZipFile: zip2, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	sum2 := sha256.Sum256(zip2)
	if aws.ToString(dry.CodeSha256) != base64.StdEncoding.EncodeToString(sum2[:]) {
		t.Errorf("dry run CodeSha256 = %s", aws.ToString(dry.CodeSha256))
	}
	cur, _ := c.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String("hello")})
	if aws.ToString(cur.CodeSha256) != aws.ToString(out.CodeSha256) {
		t.Error("dry run changed the code")
	}
	code, err := c.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String("hello"), ZipFile: zip2, RevisionId: cur.RevisionId})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(code.CodeSha256) != aws.ToString(dry.CodeSha256) || aws.ToInt32(code.MemorySize) != 512 ||
		code.LastUpdateStatus != types.LastUpdateStatusSuccessful {
		t.Errorf("update code output: %+v", code)
	}

	if _, err := c.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String("hello")}); err != nil {
		t.Fatal(err)
	}
	_, err = c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("hello")})
	var nf *types.ResourceNotFoundException
	if !errors.As(err, &nf) || nf.ErrorMessage() != "Function not found: arn:aws:lambda:us-east-1:123456789012:function:hello" {
		t.Errorf("after delete: %v", err)
	}
	if _, err := c.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String("hello")}); !errors.As(err, &nf) {
		t.Errorf("second delete: %v", err)
	}
}

func TestListFunctionsPagination(t *testing.T) {
	e := newEnv(t)
	c := e.lambda()
	ctx := context.Background()
	var want []string
	for i := range 7 {
		name := fmt.Sprintf("fn-%d", i)
		want = append(want, name)
		if _, err := c.CreateFunction(ctx, createInput(t, name)); err != nil {
			t.Fatal(err)
		}
	}
	// Another account's function is invisible.
	if _, err := e.client(otherKeyID, testSecret).CreateFunction(ctx, createInput(t, "theirs")); err != nil {
		t.Fatal(err)
	}
	var got []string
	pages := 0
	p := lambda.NewListFunctionsPaginator(c, &lambda.ListFunctionsInput{MaxItems: aws.Int32(3)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, f := range page.Functions {
			got = append(got, aws.ToString(f.FunctionName))
		}
	}
	if strings.Join(got, ",") != strings.Join(want, ",") || pages != 3 {
		t.Errorf("pages=%d got %v", pages, got)
	}
	all, err := c.ListFunctions(ctx, &lambda.ListFunctionsInput{})
	if err != nil || len(all.Functions) != 7 || all.NextMarker != nil {
		t.Errorf("default page: %v %d", err, len(all.Functions))
	}
	_, err = c.ListFunctions(ctx, &lambda.ListFunctionsInput{MaxItems: aws.Int32(20000)})
	if code, msg, status := apiError(t, err); code != "ValidationException" || status != 400 || !strings.Contains(msg, "'maxItems'") {
		t.Errorf("MaxItems 20000: %s %s %d", code, msg, status)
	}
}

func TestCreateFunctionErrors(t *testing.T) {
	e := newEnv(t)
	c := e.lambda()
	ctx := context.Background()
	if _, err := c.CreateFunction(ctx, createInput(t, "dup")); err != nil {
		t.Fatal(err)
	}
	type check func(in *lambda.CreateFunctionInput)
	cases := []struct {
		name   string
		mod    check
		code   string
		status int
		msg    string
	}{
		{"duplicate", func(in *lambda.CreateFunctionInput) { in.FunctionName = aws.String("dup") },
			"ResourceConflictException", 409, "Function already exist: dup"},
		{"bad name", func(in *lambda.CreateFunctionInput) { in.FunctionName = aws.String("bad name!") },
			"InvalidParameterValueException", 400, "1 validation error detected: Value 'bad name!' at 'functionName' failed to satisfy constraint: Member must satisfy regular expression pattern"},
		{"long name", func(in *lambda.CreateFunctionInput) { in.FunctionName = aws.String(strings.Repeat("n", 65)) },
			"InvalidParameterValueException", 400, "Member must have length less than or equal to 64"},
		{"other account ARN", func(in *lambda.CreateFunctionInput) {
			in.FunctionName = aws.String("arn:aws:lambda:us-east-1:999999999999:function:x")
		}, "AccessDeniedException", 403, "lambda:CreateFunction"},
		{"python", func(in *lambda.CreateFunctionInput) { in.Runtime = types.RuntimePython312 },
			"InvalidParameterValueException", 400, "The runtime parameter of python3.12 is not supported by Kindling"},
		{"go1.x", func(in *lambda.CreateFunctionInput) { in.Runtime = types.RuntimeGo1x },
			"InvalidParameterValueException", 400, "The runtime parameter of go1.x is no longer supported"},
		{"unknown runtime", func(in *lambda.CreateFunctionInput) { in.Runtime = "cobol" },
			"InvalidParameterValueException", 400, "Value cobol at 'runtime' failed to satisfy constraint: Member must satisfy enum value set: [provided.al2023, provided.al2] or be a valid ARN"},
		{"no runtime", func(in *lambda.CreateFunctionInput) { in.Runtime = "" },
			"InvalidParameterValueException", 400, "Runtime and Handler are mandatory parameters"},
		{"bad role", func(in *lambda.CreateFunctionInput) { in.Role = aws.String("admin") },
			"ValidationException", 400, "Value 'admin' at 'role' failed to satisfy constraint"},
		{"memory", func(in *lambda.CreateFunctionInput) { in.MemorySize = aws.Int32(64); in.Timeout = aws.Int32(901) },
			"ValidationException", 400, "2 validation errors detected: Value '901' at 'timeout' failed to satisfy constraint: Member must have value less than or equal to 900; Value '64' at 'memorySize' failed to satisfy constraint: Member must have value greater than or equal to 128"},
		{"ephemeral", func(in *lambda.CreateFunctionInput) {
			in.EphemeralStorage = &types.EphemeralStorage{Size: aws.Int32(100)}
		},
			"ValidationException", 400, "'ephemeralStorage.size'"},
		{"description", func(in *lambda.CreateFunctionInput) { in.Description = aws.String(strings.Repeat("d", 257)) },
			"ValidationException", 400, "Member must have length less than or equal to 256"},
		{"reserved env", func(in *lambda.CreateFunctionInput) {
			in.Environment = &types.Environment{Variables: map[string]string{"AWS_REGION": "x", "AWS_ACCESS_KEY_ID": "y", "OK": "z"}}
		}, "InvalidParameterValueException", 400, "Reserved keys used in this request: AWS_ACCESS_KEY_ID, AWS_REGION"},
		{"env too large", func(in *lambda.CreateFunctionInput) {
			in.Environment = &types.Environment{Variables: map[string]string{"BIG": strings.Repeat("x", 4090)}}
		}, "InvalidParameterValueException", 400, `exceeded the 4KB limit. String measured: {"BIG":"xxx`},
		{"env key", func(in *lambda.CreateFunctionInput) {
			in.Environment = &types.Environment{Variables: map[string]string{"bad-key": "x"}}
		}, "ValidationException", 400, "Map keys must satisfy constraint"},
		{"s3 code", func(in *lambda.CreateFunctionInput) {
			in.Code = &types.FunctionCode{S3Bucket: aws.String("b"), S3Key: aws.String("k")}
		}, "InvalidParameterValueException", 400, "Code.S3Bucket and Code.S3Key are not supported"},
		{"image", func(in *lambda.CreateFunctionInput) {
			in.PackageType = types.PackageTypeImage
			in.Code = &types.FunctionCode{ImageUri: aws.String("x")}
		}, "InvalidParameterValueException", 400, "Container image functions"},
		{"not a zip", func(in *lambda.CreateFunctionInput) { in.Code = &types.FunctionCode{ZipFile: []byte("nope")} },
			"InvalidParameterValueException", 400, "Could not unzip uploaded file. Please check your file, then try to upload again."},
		{"vpc", func(in *lambda.CreateFunctionInput) {
			in.VpcConfig = &types.VpcConfig{SubnetIds: []string{"subnet-1"}}
		}, "InvalidParameterValueException", 400, "VpcConfig is not supported"},
		{"layers", func(in *lambda.CreateFunctionInput) {
			in.Layers = []string{"arn:aws:lambda:us-east-1:123456789012:layer:l:1"}
		},
			"InvalidParameterValueException", 400, "Layers are not supported"},
		{"arch", func(in *lambda.CreateFunctionInput) {
			in.Architectures = []types.Architecture{types.ArchitectureArm64, types.ArchitectureX8664}
		}, "ValidationException", 400, "'architectures'"},
	}
	for _, tc := range cases {
		in := createInput(t, "new-fn")
		tc.mod(in)
		_, err := c.CreateFunction(ctx, in)
		if err == nil {
			t.Errorf("%s: no error", tc.name)
			continue
		}
		code, msg, status := apiError(t, err)
		if code != tc.code || status != tc.status || !strings.Contains(msg, tc.msg) {
			t.Errorf("%s: got %s %d %q; want %s %d containing %q", tc.name, code, status, msg, tc.code, tc.status, tc.msg)
		}
	}
	// Typed SDK errors surface as such.
	in := createInput(t, "dup")
	_, err := c.CreateFunction(ctx, in)
	var rc *types.ResourceConflictException
	if !errors.As(err, &rc) || rc.ErrorMessage() != "Function already exist: dup" || aws.ToString(rc.Type) != "User" {
		t.Errorf("typed conflict: %#v", err)
	}
	in = createInput(t, "x")
	in.Runtime = "cobol"
	_, err = c.CreateFunction(ctx, in)
	var ip *types.InvalidParameterValueException
	if !errors.As(err, &ip) {
		t.Errorf("typed invalid parameter: %#v", err)
	}
}

func TestUpdateErrors(t *testing.T) {
	e := newEnv(t)
	c := e.lambda()
	ctx := context.Background()
	if _, err := c.CreateFunction(ctx, createInput(t, "u")); err != nil {
		t.Fatal(err)
	}
	_, err := c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("nope"), Timeout: aws.Int32(5)})
	var nf *types.ResourceNotFoundException
	if !errors.As(err, &nf) {
		t.Errorf("missing function: %v", err)
	}
	_, err = c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("u"), Timeout: aws.Int32(0)})
	if code, _, _ := apiError(t, err); code != "ValidationException" {
		t.Errorf("timeout 0: %v", err)
	}
	_, err = c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("u"), Runtime: types.RuntimeNodejs20x})
	var ip *types.InvalidParameterValueException
	if !errors.As(err, &ip) {
		t.Errorf("runtime nodejs20.x: %v", err)
	}
	_, err = c.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String("u"), ZipFile: []byte("PK\x03\x04junk")})
	if !errors.As(err, &ip) {
		t.Errorf("bad zip: %v", err)
	}
	_, err = c.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String("u"), S3Bucket: aws.String("b"), S3Key: aws.String("k")})
	if !errors.As(err, &ip) {
		t.Errorf("s3: %v", err)
	}
	_, err = c.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String("u"), ZipFile: makeZip(t, "x"), RevisionId: aws.String("old")})
	var pf *types.PreconditionFailedException
	if !errors.As(err, &pf) {
		t.Errorf("stale revision: %v", err)
	}
	_, err = c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("u"), Qualifier: aws.String("1")})
	if !errors.As(err, &nf) || !strings.HasSuffix(nf.ErrorMessage(), "function:u:1") {
		t.Errorf("version qualifier: %v", err)
	}
	_, err = c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("arn:aws:lambda:eu-west-1:123456789012:function:u")})
	if !errors.As(err, &nf) || nf.ErrorMessage() != "Functions from 'eu-west-1' are not reachable in this region ('us-east-1')" {
		t.Errorf("other region: %v", err)
	}
	_, err = c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("arn:aws:lambda:us-east-1:999999999999:function:u")})
	if code, msg, status := apiError(t, err); code != "AccessDeniedException" || status != 403 || !strings.Contains(msg, "lambda:GetFunction") {
		t.Errorf("other account: %s %s %d", code, msg, status)
	}
	_, err = c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("bad name")})
	if code, msg, status := apiError(t, err); code != "ValidationException" || status != 400 || !strings.HasPrefix(msg, "1 validation error detected: Value 'bad name' at 'functionName'") {
		t.Errorf("bad name: %s %s %d", code, msg, status)
	}
	// Another account cannot see the function by name.
	_, err = e.client(otherKeyID, testSecret).GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("u")})
	if !errors.As(err, &nf) || !strings.Contains(nf.ErrorMessage(), otherAcct) {
		t.Errorf("other account by name: %v", err)
	}
	_, err = c.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String("u"), Qualifier: aws.String("$LATEST")})
	if !errors.As(err, &ip) {
		t.Errorf("delete $LATEST: %v", err)
	}
}

func TestAuthentication(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	_, err := e.client(testKeyID, "wrong-secret").ListFunctions(ctx, &lambda.ListFunctionsInput{})
	code, _, status := apiError(t, err)
	if status != 403 || code != "InvalidSignatureException" {
		t.Errorf("bad signature: %s %d", code, status)
	}
	_, err = e.client("AKIDUNKNOWN", testSecret).ListFunctions(ctx, &lambda.ListFunctionsInput{})
	code, _, status = apiError(t, err)
	if status != 403 || code != "UnrecognizedClientException" {
		t.Errorf("unknown key: %s %d", code, status)
	}
	// Unsigned.
	resp, err := e.srv.Client().Get(e.srv.URL + "/2015-03-31/functions/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 || resp.Header.Get("X-Amzn-Errortype") == "" || resp.Header.Get(awsapi.HeaderRequestID) == "" {
		t.Errorf("unsigned: %d %v", resp.StatusCode, resp.Header)
	}
}

func TestHealthAndUnknownRoutes(t *testing.T) {
	e := newEnv(t)
	resp, err := e.srv.Client().Get(e.srv.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("healthz: %d", resp.StatusCode)
	}
	e.ready = false
	resp, err = e.srv.Client().Get(e.srv.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 {
		t.Errorf("healthz not ready: %d", resp.StatusCode)
	}
	for _, tc := range []struct{ method, path string }{
		{"GET", "/"}, {"GET", "/2015-03-31/functions/f/policy"}, {"PATCH", "/2015-03-31/functions/f"},
		{"GET", "/2015-03-31/functionsx"}, {"POST", "/2015-03-31/functions/f"},
	} {
		rec := e.do(tc.method, tc.path, nil, nil)
		if rec.Code != 404 || rec.Header().Get("X-Amzn-ErrorType") != awsapi.TypeUnknownOperation {
			t.Errorf("%s %s: %d %v", tc.method, tc.path, rec.Code, rec.Header())
		}
	}
}
