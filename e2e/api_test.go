package e2e

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"kindling/internal/cli"
)

func TestHealthzWithoutAuth(t *testing.T) {
	requireServer(t)
	t.Parallel()
	resp, err := http.Get(srv.url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("GET /healthz = %d, want 200", resp.StatusCode)
	}
}

// TestFunctionLifecycle walks one function through create, get, update code,
// update configuration and delete, with the SDK's waiters.
func TestFunctionLifecycle(t *testing.T) {
	requireServer(t)
	t.Parallel()
	const name = "e2e-lifecycle"
	c := srv.client()

	created := createFunction(t, name, fnSpec{code: "echo", memory: 128, timeout: 3})
	if got := aws.ToString(created.FunctionArn); got != functionARN(name) {
		t.Errorf("CreateFunction FunctionArn = %q, want %q", got, functionARN(name))
	}
	if got := aws.ToString(created.CodeSha256); got != codeSha256(zips["echo"]) {
		t.Errorf("CodeSha256 = %q, want base64(sha256(zip)) %q", got, codeSha256(zips["echo"]))
	}
	if created.CodeSize != int64(len(zips["echo"])) {
		t.Errorf("CodeSize = %d, want %d", created.CodeSize, len(zips["echo"]))
	}
	if created.Runtime != types.RuntimeProvidedal2023 || aws.ToString(created.Handler) != "bootstrap" ||
		aws.ToInt32(created.MemorySize) != 128 || aws.ToInt32(created.Timeout) != 3 {
		t.Errorf("CreateFunction echoed runtime %q handler %q memory %d timeout %d",
			created.Runtime, aws.ToString(created.Handler), aws.ToInt32(created.MemorySize), aws.ToInt32(created.Timeout))
	}
	if created.State != types.StatePending && created.State != types.StateActive {
		t.Errorf("CreateFunction State = %q, want Pending or Active", created.State)
	}
	if got := aws.ToString(created.Role); got != role {
		t.Errorf("Role = %q, want %q", got, role)
	}

	// Duplicate create.
	_, err := c.CreateFunction(ctx(t), createInput(name, fnSpec{code: "echo"}))
	wantAPIError(t, "CreateFunction of an existing name", err, 409, "ResourceConflictException")

	got, err := c.GetFunction(ctx(t), &lambda.GetFunctionInput{FunctionName: aws.String(name)})
	if err != nil {
		t.Fatalf("GetFunction: %s", describe(err))
	}
	cfg := got.Configuration
	if cfg == nil {
		t.Fatal("GetFunction returned no Configuration")
	}
	if cfg.State != types.StateActive || cfg.LastUpdateStatus != types.LastUpdateStatusSuccessful {
		t.Errorf("after the active waiter: State %q LastUpdateStatus %q", cfg.State, cfg.LastUpdateStatus)
	}
	if aws.ToString(cfg.FunctionName) != name || aws.ToString(cfg.Version) != "$LATEST" ||
		aws.ToString(cfg.CodeSha256) != codeSha256(zips["echo"]) || aws.ToString(cfg.RevisionId) == "" ||
		aws.ToString(cfg.LastModified) == "" {
		t.Errorf("GetFunction Configuration: name %q version %q sha %q revision %q lastModified %q",
			aws.ToString(cfg.FunctionName), aws.ToString(cfg.Version), aws.ToString(cfg.CodeSha256),
			aws.ToString(cfg.RevisionId), aws.ToString(cfg.LastModified))
	}
	if cfg.EphemeralStorage == nil || aws.ToInt32(cfg.EphemeralStorage.Size) != 512 {
		t.Errorf("EphemeralStorage = %+v, want the default 512", cfg.EphemeralStorage)
	}
	if got.Code == nil || aws.ToString(got.Code.RepositoryType) != "S3" {
		t.Logf("note: GetFunction Code = %+v (AWS gives RepositoryType S3 and a Location URL)", got.Code)
	}
	if _, err := time.Parse("2006-01-02T15:04:05.000-0700", aws.ToString(cfg.LastModified)); err != nil {
		t.Errorf("LastModified %q is not in Lambda's format (2006-01-02T15:04:05.000+0000): %v", aws.ToString(cfg.LastModified), err)
	}

	gc, err := c.GetFunctionConfiguration(ctx(t), &lambda.GetFunctionConfigurationInput{FunctionName: aws.String(name)})
	if err != nil {
		t.Fatalf("GetFunctionConfiguration: %s", describe(err))
	}
	if aws.ToString(gc.FunctionArn) != functionARN(name) || aws.ToString(gc.RevisionId) != aws.ToString(cfg.RevisionId) {
		t.Errorf("GetFunctionConfiguration: arn %q revision %q (GetFunction said %q)",
			aws.ToString(gc.FunctionArn), aws.ToString(gc.RevisionId), aws.ToString(cfg.RevisionId))
	}

	inv := invoke(t, name, []byte(`{"before":"update"}`))
	if string(inv.payload()) != `{"before":"update"}` {
		t.Errorf("echo before update = %s", inv.payload())
	}

	// Update the code: echo becomes behave.
	uc, err := c.UpdateFunctionCode(ctx(t), &lambda.UpdateFunctionCodeInput{
		FunctionName: aws.String(name), ZipFile: zips["behave"],
	})
	if err != nil {
		t.Fatalf("UpdateFunctionCode: %s", describe(err))
	}
	if aws.ToString(uc.CodeSha256) != codeSha256(zips["behave"]) {
		t.Errorf("UpdateFunctionCode CodeSha256 = %q, want %q", aws.ToString(uc.CodeSha256), codeSha256(zips["behave"]))
	}
	if aws.ToString(uc.RevisionId) == aws.ToString(cfg.RevisionId) {
		t.Error("UpdateFunctionCode did not change RevisionId")
	}
	waitUpdated(t, c, name)
	before, _ := counter(t, name)
	if before.Count != 1 {
		t.Errorf("first invoke of the new code: count %d, want 1 (a fresh environment)", before.Count)
	}

	// Update the configuration.
	_, err = c.UpdateFunctionConfiguration(ctx(t), &lambda.UpdateFunctionConfigurationInput{
		FunctionName: aws.String(name),
		Timeout:      aws.Int32(7),
		MemorySize:   aws.Int32(256),
		Handler:      aws.String("new.handler"),
		Environment: &types.Environment{Variables: map[string]string{
			"E2E_RUN_ID": runID, "E2E_FN": name + "-" + runID, "COLOR": "blue",
		}},
	})
	if err != nil {
		t.Fatalf("UpdateFunctionConfiguration: %s", describe(err))
	}
	waitUpdated(t, c, name)
	gc, err = c.GetFunctionConfiguration(ctx(t), &lambda.GetFunctionConfigurationInput{FunctionName: aws.String(name)})
	if err != nil {
		t.Fatalf("GetFunctionConfiguration: %s", describe(err))
	}
	if aws.ToInt32(gc.Timeout) != 7 || aws.ToInt32(gc.MemorySize) != 256 || aws.ToString(gc.Handler) != "new.handler" ||
		gc.Environment == nil || gc.Environment.Variables["COLOR"] != "blue" {
		t.Errorf("after UpdateFunctionConfiguration: timeout %d memory %d handler %q env %+v",
			aws.ToInt32(gc.Timeout), aws.ToInt32(gc.MemorySize), aws.ToString(gc.Handler), gc.Environment)
	}
	if aws.ToString(gc.CodeSha256) != codeSha256(zips["behave"]) {
		t.Error("UpdateFunctionConfiguration changed CodeSha256")
	}
	// The old environment is retired: the next invoke sees the new
	// configuration in a new process.
	env := invoke(t, name, map[string]any{"op": "env"})
	var er struct {
		Env map[string]string `json:"env"`
		ID  string            `json:"id"`
	}
	env.decode(t, &er)
	if er.Env["COLOR"] != "blue" || er.Env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] != "256" || er.Env["_HANDLER"] != "new.handler" {
		t.Errorf("environment after the update: COLOR=%q memory=%q _HANDLER=%q",
			er.Env["COLOR"], er.Env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"], er.Env["_HANDLER"])
	}
	if er.ID == before.ID {
		t.Errorf("invoke after UpdateFunctionConfiguration ran in the old environment (id %s)", er.ID)
	}
	if r := parseReport(t, env.logs); r.memorySize != 256 || !r.hasInit {
		t.Errorf("REPORT after the update: %q (want Memory Size: 256 MB and Init Duration)", r.line)
	}

	// Delete.
	if _, err := c.DeleteFunction(ctx(t), &lambda.DeleteFunctionInput{FunctionName: aws.String(name)}); err != nil {
		t.Fatalf("DeleteFunction: %s", describe(err))
	}
	_, err = c.GetFunction(ctx(t), &lambda.GetFunctionInput{FunctionName: aws.String(name)})
	wantAPIError(t, "GetFunction after delete", err, 404, "ResourceNotFoundException")
	_, err = c.Invoke(ctx(t), &lambda.InvokeInput{FunctionName: aws.String(name), Payload: []byte(`{}`)})
	wantAPIError(t, "Invoke after delete", err, 404, "ResourceNotFoundException")
	_, err = c.DeleteFunction(ctx(t), &lambda.DeleteFunctionInput{FunctionName: aws.String(name)})
	wantAPIError(t, "DeleteFunction twice", err, 404, "ResourceNotFoundException")
	if pids := waitNoProcesses(marker(name), 30*time.Second); len(pids) > 0 {
		t.Errorf("sandbox processes of the deleted function still run: %v", pids)
	}
}

func TestListFunctionsPagination(t *testing.T) {
	requireServer(t)
	t.Parallel()
	names := []string{"e2e-list-a", "e2e-list-b", "e2e-list-c"}
	for _, n := range names {
		createFunction(t, n, fnSpec{code: "echo"})
	}
	c := srv.client()
	seen := map[string]int{}
	pages := 0
	var marker *string
	for {
		out, err := c.ListFunctions(ctx(t), &lambda.ListFunctionsInput{MaxItems: aws.Int32(1), Marker: marker})
		if err != nil {
			t.Fatalf("ListFunctions: %s", describe(err))
		}
		pages++
		if len(out.Functions) > 1 {
			t.Fatalf("ListFunctions with MaxItems=1 returned %d functions", len(out.Functions))
		}
		for _, f := range out.Functions {
			seen[aws.ToString(f.FunctionName)]++
			if aws.ToString(f.FunctionArn) != functionARN(aws.ToString(f.FunctionName)) {
				t.Errorf("listed ARN %q", aws.ToString(f.FunctionArn))
			}
		}
		if out.NextMarker == nil || *out.NextMarker == "" {
			break
		}
		if pages > 1000 {
			t.Fatal("ListFunctions does not terminate")
		}
		marker = out.NextMarker
	}
	for n, k := range seen {
		if k > 1 {
			t.Errorf("%s listed %d times across pages", n, k)
		}
	}
	for _, n := range names {
		if seen[n] != 1 {
			t.Errorf("%s not listed (pages: %d, seen %v)", n, pages, seen)
		}
	}
	if pages < len(names) {
		t.Errorf("%d pages for at least %d functions at MaxItems=1", pages, len(names))
	}

	// The SDK paginator walks the same list.
	p := lambda.NewListFunctionsPaginator(c, &lambda.ListFunctionsInput{MaxItems: aws.Int32(2)})
	total := map[string]bool{}
	for p.HasMorePages() {
		page, err := p.NextPage(ctx(t))
		if err != nil {
			t.Fatalf("paginator: %s", describe(err))
		}
		for _, f := range page.Functions {
			total[aws.ToString(f.FunctionName)] = true
		}
	}
	for _, n := range names {
		if !total[n] {
			t.Errorf("paginator missed %s", n)
		}
	}
}

// TestFunctionNamesAndARNs uses every form of function identifier Lambda
// accepts on get and invoke.
func TestFunctionNamesAndARNs(t *testing.T) {
	requireServer(t)
	t.Parallel()
	const name = "e2e-arns"
	createFunction(t, name, fnSpec{code: "echo"})
	c := srv.client()
	ids := []string{
		name,
		functionARN(name),
		account + ":function:" + name,
		functionARN(name) + ":$LATEST",
		name + ":$LATEST",
	}
	for _, id := range ids {
		if _, err := c.GetFunction(ctx(t), &lambda.GetFunctionInput{FunctionName: aws.String(id)}); err != nil {
			t.Errorf("GetFunction(%q): %s", id, describe(err))
		}
		if _, err := c.GetFunctionConfiguration(ctx(t), &lambda.GetFunctionConfigurationInput{FunctionName: aws.String(id)}); err != nil {
			t.Errorf("GetFunctionConfiguration(%q): %s", id, describe(err))
		}
		inv, err := invokeRaw(t, c, id, []byte(`{"id":"`+id+`"}`))
		if err != nil {
			t.Errorf("Invoke(%q): %s", id, describe(err))
			continue
		}
		if string(inv.payload()) != `{"id":"`+id+`"}` || aws.ToString(inv.out.ExecutedVersion) != "$LATEST" {
			t.Errorf("Invoke(%q) = %s, version %q", id, inv.payload(), aws.ToString(inv.out.ExecutedVersion))
		}
	}
	for _, bad := range []string{
		"arn:aws:lambda:us-east-1:111111111111:function:" + name,    // other account
		"arn:aws:lambda:eu-west-1:" + account + ":function:" + name, // other region
		"e2e-no-such-function",
	} {
		_, err := c.GetFunction(ctx(t), &lambda.GetFunctionInput{FunctionName: aws.String(bad)})
		if code, _ := apiError(err); err == nil || (code != "ResourceNotFoundException" && code != "AccessDeniedException" && code != "InvalidParameterValueException") {
			t.Errorf("GetFunction(%q) = %s, want an error", bad, describe(err))
		}
	}
	_, err := c.GetFunction(ctx(t), &lambda.GetFunctionInput{FunctionName: aws.String("e2e-no-such-function")})
	wantAPIError(t, "GetFunction of a missing function", err, 404, "ResourceNotFoundException")
}

func zipOf(t *testing.T, entries map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, content := range entries {
		h := &zip.FileHeader{Name: name, Method: zip.Deflate}
		h.SetMode(0o755)
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, content)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestInvalidRequests sends malformed requests: each gets an AWS error, and
// the server keeps serving.
func TestInvalidRequests(t *testing.T) {
	requireServer(t)
	t.Parallel()
	c := srv.client()
	for _, tc := range []struct {
		what   string
		mutate func(*lambda.CreateFunctionInput)
		codes  []string
	}{
		{"not a zip", func(in *lambda.CreateFunctionInput) { in.Code.ZipFile = []byte("this is not a zip archive") },
			[]string{"InvalidParameterValueException"}},
		{"zip with path traversal", func(in *lambda.CreateFunctionInput) {
			in.Code.ZipFile = zipOf(t, map[string]string{"bootstrap": "#!/bin/sh\n", "../../etc/evil": "x"})
		}, []string{"InvalidParameterValueException"}},
		{"absolute path in zip", func(in *lambda.CreateFunctionInput) {
			in.Code.ZipFile = zipOf(t, map[string]string{"/etc/evil": "x"})
		}, []string{"InvalidParameterValueException"}},
		{"symlink out of the package", func(in *lambda.CreateFunctionInput) {
			in.Code.ZipFile = zipWithSymlink(t, "bootstrap", "../../../etc/passwd")
		}, []string{"InvalidParameterValueException"}},
		{"absolute symlink", func(in *lambda.CreateFunctionInput) {
			in.Code.ZipFile = zipWithSymlink(t, "bootstrap", "/etc/passwd")
		}, []string{"InvalidParameterValueException"}},
		{"unzipped size over 250 MB", func(in *lambda.CreateFunctionInput) {
			in.Code.ZipFile = zipOfZeros(t, 251<<20)
		}, []string{"InvalidParameterValueException", "CodeStorageExceededException", "RequestEntityTooLargeException"}},
		{"invalid name", func(in *lambda.CreateFunctionInput) { in.FunctionName = aws.String("bad name!") },
			[]string{"ValidationException", "InvalidParameterValueException"}},
		{"memory below 128", func(in *lambda.CreateFunctionInput) { in.MemorySize = aws.Int32(64) },
			[]string{"ValidationException", "InvalidParameterValueException"}},
		{"timeout above 900", func(in *lambda.CreateFunctionInput) { in.Timeout = aws.Int32(901) },
			[]string{"ValidationException", "InvalidParameterValueException"}},
		{"unknown runtime", func(in *lambda.CreateFunctionInput) { in.Runtime = "cobol85" },
			[]string{"ValidationException", "InvalidParameterValueException"}},
	} {
		in := createInput("e2e-invalid", fnSpec{code: "echo"})
		tc.mutate(in)
		_, err := c.CreateFunction(ctx(t), in)
		wantAPIError(t, "CreateFunction with "+tc.what, err, 400, tc.codes...)
		if err == nil {
			c.DeleteFunction(ctx(t), &lambda.DeleteFunctionInput{FunctionName: in.FunctionName})
		}
	}
	// A JSON body that is not JSON, signed correctly.
	resp := signedRequest(t, srv.creds, "POST", "/2015-03-31/functions", []byte(`{"FunctionName": `), time.Now())
	if resp.status != 400 || resp.errorType == "" {
		t.Errorf("CreateFunction with a truncated JSON body: %d %q %s", resp.status, resp.errorType, resp.body)
	}
	// An invoke payload that is not JSON.
	createFunction(t, "e2e-invalid-payload", fnSpec{code: "echo"})
	_, err := c.Invoke(ctx(t), &lambda.InvokeInput{FunctionName: aws.String("e2e-invalid-payload"), Payload: []byte(`{"unterminated": `)})
	wantAPIError(t, "Invoke with a payload that is not JSON", err, 400, "InvalidRequestContentException")
	if _, err := c.ListFunctions(ctx(t), &lambda.ListFunctionsInput{}); err != nil {
		t.Errorf("server unhealthy after invalid requests: %s", describe(err))
	}
}

// zipWithSymlink is a package whose entry name is a symbolic link to target.
func zipWithSymlink(t *testing.T, name, target string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	h := &zip.FileHeader{Name: name, Method: zip.Store}
	h.SetMode(os.ModeSymlink | 0o777)
	w, err := zw.CreateHeader(h)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, target)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// zipOfZeros is a small package that unpacks to n bytes (a zip bomb in
// miniature).
func zipOfZeros(t *testing.T, n int) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	h := &zip.FileHeader{Name: "bootstrap", Method: zip.Deflate}
	h.SetMode(0o755)
	w, err := zw.CreateHeader(h)
	if err != nil {
		t.Fatal(err)
	}
	zeros := make([]byte, 1<<20)
	for written := 0; written < n; written += len(zeros) {
		w.Write(zeros)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

type rawResponse struct {
	status    int
	errorType string
	body      string
}

// signedRequest sends a SigV4-signed request (signed at signTime) with the
// plain HTTP client, to look at the raw error shape.
func signedRequest(t *testing.T, creds cli.Credentials, method, path string, body []byte, signTime time.Time) rawResponse {
	t.Helper()
	req, err := http.NewRequest(method, srv.url+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	sum := sha256.Sum256(body)
	hash := hex.EncodeToString(sum[:])
	req.Header.Set("X-Amz-Content-Sha256", hash)
	err = v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{
		AccessKeyID: creds.AccessKeyID, SecretAccessKey: creds.SecretAccessKey,
	}, req, hash, "lambda", region, signTime)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return rawResponse{resp.StatusCode, resp.Header.Get("X-Amzn-ErrorType"), string(b)}
}

func TestSigV4(t *testing.T) {
	requireServer(t)
	t.Parallel()
	wrongSecret := srv.creds
	wrongSecret.SecretAccessKey = "not-the-secret"
	_, err := srv.clientWith(wrongSecret).ListFunctions(ctx(t), &lambda.ListFunctionsInput{})
	wantAPIError(t, "ListFunctions with a wrong secret", err, 403, "InvalidSignatureException")

	unknown := cli.Credentials{AccessKeyID: "AKIDUNKNOWN000000000", SecretAccessKey: "whatever"}
	_, err = srv.clientWith(unknown).ListFunctions(ctx(t), &lambda.ListFunctionsInput{})
	wantAPIError(t, "ListFunctions with an unknown key", err, 403, "UnrecognizedClientException")

	_, err = srv.clientWith(wrongSecret).Invoke(ctx(t), &lambda.InvokeInput{FunctionName: aws.String("anything"), Payload: []byte(`{}`)})
	wantAPIError(t, "Invoke with a wrong secret", err, 403, "InvalidSignatureException")

	// Raw shapes: X-Amzn-ErrorType and a JSON body with a message.
	for _, tc := range []struct {
		what  string
		creds cli.Credentials
		when  time.Time
		code  string
	}{
		{"wrong secret", wrongSecret, time.Now(), "InvalidSignatureException"},
		{"unknown key", unknown, time.Now(), "UnrecognizedClientException"},
		{"clock skew (20 minutes old)", srv.creds, time.Now().Add(-20 * time.Minute), "InvalidSignatureException"},
	} {
		r := signedRequest(t, tc.creds, "GET", "/2015-03-31/functions/", nil, tc.when)
		var body map[string]any
		if r.status != 403 || !strings.HasPrefix(r.errorType, tc.code) || json.Unmarshal([]byte(r.body), &body) != nil {
			t.Errorf("%s: HTTP %d, X-Amzn-ErrorType %q, body %s; want 403 %s with a JSON body", tc.what, r.status, r.errorType, r.body, tc.code)
		} else if body["message"] == nil && body["Message"] == nil {
			t.Errorf("%s: error body has no message: %s", tc.what, r.body)
		}
	}
	r := signedRequest(t, srv.creds, "GET", "/2015-03-31/functions/", nil, time.Now())
	if r.status != 200 {
		t.Errorf("a correctly signed raw ListFunctions: HTTP %d %s", r.status, r.body)
	}

	// No signature at all.
	resp, err := http.Get(srv.url + "/2015-03-31/functions/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Errorf("unsigned ListFunctions: HTTP %d, want 403", resp.StatusCode)
	}
}
