package sigv4

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
)

// verifyingServer is an httptest server that verifies every request and
// answers 403 with the AWS error, or 200 with "{}".
type verifyingServer struct {
	*httptest.Server
	mu       sync.Mutex // guards services and paths
	services []string
	paths    []string
}

func newVerifyingServer(t *testing.T, v *Verifier) *verifyingServer {
	s := &verifyingServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		_, service, verr := v.Verify(r, body)
		if verr != nil {
			e := verr.(*Error)
			w.Header().Set("X-Amzn-Errortype", e.Type)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(e.Status)
			if err := json.NewEncoder(w).Encode(map[string]string{"message": e.Message}); err != nil {
				t.Error(err)
			}
			return
		}
		s.mu.Lock()
		s.services = append(s.services, service)
		s.paths = append(s.paths, r.RequestURI)
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if _, err := io.WriteString(w, "{}"); err != nil {
			t.Error(err)
		}
	}))
	t.Cleanup(s.Close)
	return s
}

func lambdaClient(s *verifyingServer, secret string) *lambda.Client {
	return lambda.New(lambda.Options{
		Region:           testRegion,
		BaseEndpoint:     aws.String(s.URL),
		HTTPClient:       s.Client(),
		RetryMaxAttempts: 1,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: testKeyID, SecretAccessKey: secret}, nil
		}),
	})
}

// TestLambdaClientEndToEnd drives the real aws-sdk-go-v2 Lambda client
// against a server that verifies with the wall clock.
func TestLambdaClientEndToEnd(t *testing.T) {
	s := newVerifyingServer(t, &Verifier{Lookup: testCreds, Region: testRegion})
	c := lambdaClient(s, testSecret)
	ctx := context.Background()
	const arn = "arn:aws:lambda:us-east-1:123456789012:function:my-fn"

	if _, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(arn), Qualifier: aws.String("$LATEST"),
		Payload: []byte(`{"hello":"world"}`)}); err != nil {
		t.Fatalf("Invoke: %v", err)
	}
	if _, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("my-fn")}); err != nil {
		t.Fatalf("Invoke with empty payload: %v", err)
	}
	if _, err := c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(arn + ":$LATEST")}); err != nil {
		t.Fatalf("GetFunction: %v", err)
	}
	if _, err := c.ListFunctions(ctx, &lambda.ListFunctionsInput{MaxItems: aws.Int32(5), Marker: aws.String("a b/c+d=e&f")}); err != nil {
		t.Fatalf("ListFunctions: %v", err)
	}
	if _, err := c.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String(arn)}); err != nil {
		t.Fatalf("DeleteFunction: %v", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.services) != 5 {
		t.Fatalf("verified %d requests, want 5", len(s.services))
	}
	for i, svc := range s.services {
		if svc != "lambda" {
			t.Errorf("request %s: service %q", s.paths[i], svc)
		}
	}
	// The ARN arrives escaped once, as the brief for this package expects.
	if want := "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Amy-fn/invocations?Qualifier=%24LATEST"; s.paths[0] != want {
		t.Errorf("Invoke path %q, want %q", s.paths[0], want)
	}
	t.Logf("verified: %q", s.paths)
}

func TestLambdaClientWrongSecret(t *testing.T) {
	s := newVerifyingServer(t, &Verifier{Lookup: testCreds, Region: testRegion})
	_, err := lambdaClient(s, "not-the-secret").Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String("f")})
	if err == nil {
		t.Fatal("Invoke with the wrong secret succeeded")
	}
	t.Logf("client error: %v", err)
}

// TestPresigned verifies query-string (presigned URL) authentication.
func TestPresigned(t *testing.T) {
	presign := func(t *testing.T, target string) *http.Request {
		req := newClientRequest(t, "GET", target, nil, nil)
		uri, hdr, err := v4.NewSigner().PresignHTTP(context.Background(),
			aws.Credentials{AccessKeyID: testKeyID, SecretAccessKey: testSecret}, req, hexSHA256(nil), "lambda", testRegion, t0)
		if err != nil {
			t.Fatal(err)
		}
		preq, err := http.NewRequest("GET", uri, nil)
		if err != nil {
			t.Fatal(err)
		}
		for k, vs := range hdr {
			for _, v := range vs {
				preq.Header.Add(k, v)
			}
		}
		sreq, _ := toServer(t, preq)
		return sreq
	}
	const withExpiry = "/2015-03-31/functions?MaxItems=5&X-Amz-Expires=300"

	t.Run("valid", func(t *testing.T) {
		sreq := presign(t, withExpiry)
		creds, service, err := verifierAt(t0.Add(4*time.Minute)).Verify(sreq, nil)
		if err != nil || service != "lambda" || creds.AccountID != testAccount {
			t.Fatalf("Verify = %+v, %q, %v (URI %s)", creds, service, err, sreq.RequestURI)
		}
	})
	t.Run("no X-Amz-Expires uses MaxSkew", func(t *testing.T) {
		sreq := presign(t, "/2015-03-31/functions")
		if _, _, err := verifierAt(t0.Add(4*time.Minute)).Verify(sreq, nil); err != nil {
			t.Fatal(err)
		}
		_, _, err := verifierAt(t0.Add(6*time.Minute)).Verify(sreq, nil)
		wantError(t, err, typeInvalid, "Signature expired:", true)
	})
	t.Run("expired", func(t *testing.T) {
		_, _, err := verifierAt(t0.Add(6*time.Minute)).Verify(presign(t, withExpiry), nil)
		wantError(t, err, typeInvalid,
			"Signature expired: 20240101T000000Z is now earlier than 20240101T000100Z (20240101T000600Z - 5 min.)", false)
	})
	t.Run("not yet current", func(t *testing.T) {
		_, _, err := verifierAt(t0.Add(-6*time.Minute)).Verify(presign(t, withExpiry), nil)
		wantError(t, err, typeInvalid, "Signature not yet current:", true)
	})
	t.Run("tampered query", func(t *testing.T) {
		sreq := presign(t, withExpiry)
		sreq.RequestURI += "&MaxItems=6"
		_, _, err := verifierAt(t0).Verify(sreq, nil)
		wantError(t, err, typeInvalid, msgMismatch, false)
	})
	t.Run("expiry extended", func(t *testing.T) {
		sreq := presign(t, withExpiry)
		sreq.RequestURI = strings.Replace(sreq.RequestURI, "X-Amz-Expires=300", "X-Amz-Expires=3000", 1)
		_, _, err := verifierAt(t0).Verify(sreq, nil)
		wantError(t, err, typeInvalid, msgMismatch, false)
	})
	t.Run("missing credential", func(t *testing.T) {
		_, _, err := verifierAt(t0).Verify(mustWire(t, "GET /?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date=20240101T000000Z"+
			"&X-Amz-SignedHeaders=host&X-Amz-Signature=00 HTTP/1.1\r\nHost: h\r\n\r\n"), nil)
		wantError(t, err, typeIncomplete,
			"AWS query-string parameters must include 'X-Amz-Credential'. Re-examine the query-string parameters.", false)
	})
	t.Run("expires too long", func(t *testing.T) {
		sreq := presign(t, "/?X-Amz-Expires=604801")
		_, _, err := verifierAt(t0).Verify(sreq, nil)
		wantError(t, err, typeIncomplete, "X-Amz-Expires must be less than a week (in seconds) that is 604800", false)
	})
	t.Run("expires not a number", func(t *testing.T) {
		sreq := presign(t, "/?X-Amz-Expires=soon")
		_, _, err := verifierAt(t0).Verify(sreq, nil)
		wantError(t, err, typeIncomplete, "X-Amz-Expires should be a number", false)
	})
}

func mustWire(t *testing.T, wire string) *http.Request {
	r, _ := parseWire(t, wire)
	return r
}
