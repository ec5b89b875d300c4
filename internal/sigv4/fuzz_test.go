package sigv4

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// FuzzParseAuthorization feeds arbitrary Authorization headers to the parser
// and the credential and SignedHeaders checks that follow it.
func FuzzParseAuthorization(f *testing.F) {
	for _, s := range []string{
		"",
		"AWS4-HMAC-SHA256",
		"AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/lambda/aws4_request, SignedHeaders=host;x-amz-date, Signature=" +
			strings.Repeat("ab", 32),
		"AWS4-HMAC-SHA256 Credential=a,SignedHeaders=,Signature=",
		"Bearer eyJhbGciOi.eyJzdWIi.sig",
		"AWS4-HMAC-SHA256 Credential= AKID/x, ,,  Signature==",
		"AWS4-HMAC-SHA256 Credential=a/b/c/d/e/f/g",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		a, err := parseAuthorization(h)
		if err != nil {
			if err.Status != http.StatusForbidden || err.Type != typeIncomplete {
				t.Fatalf("error %+v", err)
			}
			return
		}
		if !strings.HasPrefix(h, a.algorithm) {
			t.Fatalf("algorithm %q is not a prefix of %q", a.algorithm, h)
		}
		for _, part := range []string{a.credential, a.signedHeaders, a.signature} {
			if !strings.Contains(h, part) {
				t.Fatalf("parameter %q is not in %q", part, h)
			}
		}
		if s, ok := parseCredential(a.credential); ok {
			if got := s.keyID + "/" + s.date + "/" + s.region + "/" + s.service + "/" + s.terminator; got != a.credential {
				t.Fatalf("credential %q split and joined is %q", a.credential, got)
			}
		}
		if validSignedHeaders(a.signedHeaders) && strings.Contains(a.signedHeaders, ";;") {
			t.Fatalf("empty header name accepted in %q", a.signedHeaders)
		}
		signsHost(a.signedHeaders)
		decodeSignature(a.signature)
	})
}

// fuzzRequest builds a server-side request from fuzzer-chosen parts. Header
// keys are set as given, canonical or not.
func fuzzRequest(method, target, host, authz, amzDate, contentSHA, hdrName, hdrValue string) *http.Request {
	r := &http.Request{Method: method, RequestURI: target, Host: host, Header: http.Header{}}
	if u, err := url.ParseRequestURI(target); err == nil {
		r.URL = u
	} else if len(target)%2 == 0 {
		r.URL = &url.URL{Opaque: target}
	}
	if authz != "" {
		r.Header["Authorization"] = []string{authz}
	}
	if amzDate != "" {
		r.Header["X-Amz-Date"] = []string{amzDate}
	}
	if contentSHA != "" {
		r.Header["X-Amz-Content-Sha256"] = []string{contentSHA}
	}
	if hdrName != "" {
		r.Header[hdrName] = append(r.Header[hdrName], hdrValue)
	}
	return r
}

// seed is a request fuzzRequest can rebuild, signed by the SDK.
type seed struct {
	method, target, host, authz, amzDate, contentSHA, hdrName, hdrValue string
	body                                                                []byte
}

func fuzzSeed(t testing.TB, method, target string, body []byte) seed {
	req := newClientRequest(t, method, target, body, map[string]string{"X-Amz-Target": "Logs_20140328.PutLogEvents"})
	sdkSign(t, req, body, testKeyID, testSecret, "logs", testRegion, t0)
	return seed{method, req.URL.RequestURI(), testHost, req.Header.Get("Authorization"), req.Header.Get("X-Amz-Date"),
		"", "X-Amz-Target", "Logs_20140328.PutLogEvents", body}
}

func fuzzSeeds(t testing.TB) []seed {
	return []seed{
		fuzzSeed(t, "POST", "/", []byte(`{"logGroupName":"g"}`)),
		fuzzSeed(t, "GET", "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A1%3Afunction%3Af?Qualifier=%24LATEST&b=1", nil),
	}
}

func fuzzVerifier() *Verifier {
	return &Verifier{Lookup: testCreds, Now: func() time.Time { return t0 }}
}

// TestFuzzSeedVerifies makes sure the fuzzer starts from requests that pass,
// so that it explores the whole of Verify.
func TestFuzzSeedVerifies(t *testing.T) {
	for _, s := range fuzzSeeds(t) {
		r := fuzzRequest(s.method, s.target, s.host, s.authz, s.amzDate, s.contentSHA, s.hdrName, s.hdrValue)
		if _, _, err := fuzzVerifier().Verify(r, s.body); err != nil {
			t.Fatalf("seed %q: %v", s.target, err)
		}
	}
}

// FuzzVerify runs Verify on arbitrary requests: it must never panic, and
// every failure must be a 403 *Error.
func FuzzVerify(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s.method, s.target, s.host, s.authz, s.amzDate, s.contentSHA, s.hdrName, s.hdrValue, s.body)
	}
	f.Add("GET", "/?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAKINDLINGTEST0001%2F20240101%2Fus-east-1%2Flambda%2Faws4_request"+
		"&X-Amz-Date=20240101T000000Z&X-Amz-Expires=60&X-Amz-SignedHeaders=host&X-Amz-Signature="+strings.Repeat("0", 64),
		testHost, "", "", "", "", "", []byte(nil))
	f.Add("PUT", "/a/./b/../%zz//c?%=&=%&a+b", "", "AWS4-HMAC-SHA256 Credential=x", "Mon, 01 Jan 2024 00:00:00 GMT",
		unsignedPayload, "date", "x", []byte("body"))
	f.Fuzz(func(t *testing.T, method, target, host, authz, amzDate, contentSHA, hdrName, hdrValue string, body []byte) {
		r := fuzzRequest(method, target, host, authz, amzDate, contentSHA, hdrName, hdrValue)
		creds, service, err := fuzzVerifier().Verify(r, body)
		if err == nil {
			if creds.SecretAccessKey == "" {
				t.Fatalf("Verify succeeded with %+v, %q", creds, service)
			}
			return
		}
		var e *Error
		if !errors.As(err, &e) || e.Status != http.StatusForbidden || e.Type == "" || e.Message == "" {
			t.Fatalf("error %#v", err)
		}
		if creds != (Credentials{}) || service != "" {
			t.Fatalf("failed Verify returned %+v, %q", creds, service)
		}
	})
}

// FuzzNormalizePath checks that hasDotOrEmptySegment is exactly "normalizing
// changes the path", and that normalizing is idempotent.
func FuzzNormalizePath(f *testing.F) {
	for _, s := range []string{"/", "/./a", "//", "/a/..", "a", "", "/a/b/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		n := normalizePath(p)
		if hasDotOrEmptySegment(p) != (n != p) {
			t.Fatalf("hasDotOrEmptySegment(%q) = %v, normalizePath = %q", p, hasDotOrEmptySegment(p), n)
		}
		if normalizePath(n) != n {
			t.Fatalf("normalizePath not idempotent on %q", p)
		}
	})
}
