package frontend

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
)

func TestCodeLocation(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	in := createInput(t, "dl")
	if _, err := e.lambda().CreateFunction(ctx, in); err != nil {
		t.Fatal(err)
	}
	got, err := e.lambda().GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("dl")})
	if err != nil {
		t.Fatal(err)
	}
	loc := aws.ToString(got.Code.Location)
	if !strings.Contains(loc, "/kindling/code/dl/$LATEST/") || !strings.Contains(loc, "X-Amz-Signature=") {
		t.Fatalf("Code.Location = %q, want a presigned download URL", loc)
	}
	get := func(u string) (int, []byte) {
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	// No credentials needed: the URL carries the signature.
	if status, body := get(loc); status != http.StatusOK || !bytes.Equal(body, in.Code.ZipFile) {
		t.Fatalf("download: %d, %d bytes (want the %d uploaded)", status, len(body), len(in.Code.ZipFile))
	}
	// A changed path breaks the signature; no signature is no access.
	if status, _ := get(strings.Replace(loc, "/dl/", "/dm/", 1)); status != http.StatusForbidden {
		t.Errorf("tampered path: %d, want 403", status)
	}
	if status, _ := get(strings.SplitN(loc, "?", 2)[0]); status != http.StatusForbidden {
		t.Errorf("unsigned: %d, want 403", status)
	}
	// Another account's key cannot reach this account's package.
	other, err := e.client(otherKeyID, testSecret).GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("dl")})
	if err == nil {
		t.Fatalf("another account sees the function: %+v", other.Code)
	}
}
