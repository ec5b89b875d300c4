package sigv4

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// t0 is when test requests are signed.
var t0 = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

const (
	testKeyID   = "AKIAKINDLINGTEST0001"
	testSecret  = "kindling/Test+Secret/Key0000000000000000"
	testAccount = "123456789012"
	testRegion  = "us-east-1"
	testHost    = "kindling.example:9000"
)

// testCreds knows one access key, plus the AWS test-suite key.
func testCreds(id string) (Credentials, bool) {
	switch id {
	case testKeyID:
		return Credentials{AccessKeyID: id, SecretAccessKey: testSecret, AccountID: testAccount}, true
	case "AKIDEXAMPLE":
		return Credentials{AccessKeyID: id, SecretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", AccountID: "000000000000"}, true
	}
	return Credentials{}, false
}

// verifierAt returns a Verifier for testRegion whose clock reads now.
func verifierAt(now time.Time) *Verifier {
	return &Verifier{Lookup: testCreds, Region: testRegion, Now: func() time.Time { return now }}
}

func hexSHA256(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// newClientRequest builds a client-side request to testHost.
func newClientRequest(t testing.TB, method, target string, body []byte, header map[string]string) *http.Request {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, "http://"+testHost+target, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	return req
}

// sdkSign signs req in place with aws-sdk-go-v2's signer, hashing body.
func sdkSign(t testing.TB, req *http.Request, body []byte, keyID, secret, service, region string, at time.Time) {
	t.Helper()
	sdkSignPayload(t, req, hexSHA256(body), keyID, secret, service, region, at)
}

func sdkSignPayload(t testing.TB, req *http.Request, payloadHash, keyID, secret, service, region string, at time.Time) {
	t.Helper()
	creds := aws.Credentials{AccessKeyID: keyID, SecretAccessKey: secret}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, payloadHash, service, region, at); err != nil {
		t.Fatal(err)
	}
}

// toServer writes a client request to the wire and reads it back the way
// net/http's server does, returning the server-side request and its body.
func toServer(t testing.TB, req *http.Request) (*http.Request, []byte) {
	t.Helper()
	var wire bytes.Buffer
	if err := req.Write(&wire); err != nil {
		t.Fatal(err)
	}
	return parseWire(t, wire.String())
}

// parseWire parses a raw HTTP/1.1 request as net/http's server would.
func parseWire(t testing.TB, wire string) (*http.Request, []byte) {
	t.Helper()
	sreq, err := http.ReadRequest(bufio.NewReader(strings.NewReader(wire)))
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(sreq.Body)
	if err != nil {
		t.Fatal(err)
	}
	return sreq, body
}

// signedLambdaInvoke is a signed Invoke of my-function with a JSON body, as
// the server receives it.
func signedLambdaInvoke(t testing.TB) (*http.Request, []byte) {
	t.Helper()
	body := []byte(`{"orderId":"o-123","items":[{"sku":"A-1","qty":2}],"note":"hello from kindling tests"}`)
	req := newClientRequest(t, http.MethodPost, "/2015-03-31/functions/my-function/invocations", body, map[string]string{
		"Content-Type":          "application/json",
		"X-Amz-Invocation-Type": "RequestResponse",
		"X-Amz-Log-Type":        "None",
	})
	sdkSign(t, req, body, testKeyID, testSecret, "lambda", testRegion, t0)
	return toServer(t, req)
}

// wantError checks that err is an *Error of type typ, 403, whose message is
// msg (or starts with msg when prefix is set).
func wantError(t testing.TB, err error, typ, msg string, prefix bool) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error = %v (%T), want *Error %s", err, err, typ)
	}
	if e.Status != http.StatusForbidden || e.Type != typ {
		t.Fatalf("error = %d %s %q, want 403 %s", e.Status, e.Type, e.Message, typ)
	}
	if prefix && !strings.HasPrefix(e.Message, msg) || !prefix && e.Message != msg {
		t.Fatalf("message = %q\nwant      %q (prefix %v)", e.Message, msg, prefix)
	}
}

// referenceSignature computes a SigV4 signature from a canonical request
// with crypto/hmac, independently of the package's own HMAC code.
func referenceSignature(secret, amzDate, region, service, canonicalRequest string) string {
	mac := func(key []byte, msg string) []byte {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(msg))
		return m.Sum(nil)
	}
	k := mac([]byte("AWS4"+secret), amzDate[:8])
	k = mac(k, region)
	k = mac(k, service)
	k = mac(k, "aws4_request")
	sts := "AWS4-HMAC-SHA256\n" + amzDate + "\n" + amzDate[:8] + "/" + region + "/" + service + "/aws4_request\n" +
		hexSHA256([]byte(canonicalRequest))
	return hex.EncodeToString(mac(k, sts))
}
