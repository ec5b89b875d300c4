package sigv4

import (
	"encoding/hex"
	"net/http"
	"testing"
	"time"
)

// The AWS SigV4 test suite's credentials and clock.
const (
	suiteKeyID  = "AKIDEXAMPLE"
	suiteSecret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
	suiteDate   = "20150830T123600Z"
	suiteScope  = "20150830/us-east-1/service/aws4_request"
)

var suiteTime = time.Date(2015, 8, 30, 12, 36, 0, 0, time.UTC)

// TestSuiteVectors verifies requests from the AWS SigV4 test suite with
// their published signatures.
func TestSuiteVectors(t *testing.T) {
	cases := []struct{ name, requestLine, signature string }{
		{"get-vanilla", "GET / HTTP/1.1", "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
		{"post-vanilla", "POST / HTTP/1.1", "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"},
		{"get-vanilla-query-order-key-case", "GET /?Param2=value2&Param1=value1 HTTP/1.1",
			"b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wire := c.requestLine + "\r\nHost:example.amazonaws.com\r\nX-Amz-Date:" + suiteDate + "\r\n" +
				"Authorization: AWS4-HMAC-SHA256 Credential=" + suiteKeyID + "/" + suiteScope +
				", SignedHeaders=host;x-amz-date, Signature=" + c.signature + "\r\n\r\n"
			sreq, body := parseWire(t, wire)
			v := &Verifier{Lookup: testCreds, Region: "us-east-1", Now: func() time.Time { return suiteTime }}
			creds, service, err := v.Verify(sreq, body)
			if err != nil {
				t.Fatal(err)
			}
			if creds.AccessKeyID != suiteKeyID || service != "service" {
				t.Fatalf("Verify = %+v, %q", creds, service)
			}
		})
	}
}

// TestGetVanillaCanonical checks the intermediate values of get-vanilla.
func TestGetVanillaCanonical(t *testing.T) {
	r, body := parseWire(t, "GET / HTTP/1.1\r\nHost:example.amazonaws.com\r\nX-Amz-Date:"+suiteDate+"\r\n\r\n")
	in := canonicalInput{method: r.Method, path: "/", signedHeaders: "host;x-amz-date", payload: []byte(hexSHA256(nil))}
	sc := getScratch()
	defer putScratch(sc)
	got := string(sc.appendCanonicalRequest(nil, r, body, &in))
	want := "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n" +
		"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	if got != want {
		t.Fatalf("canonical request\n%q\nwant\n%q", got, want)
	}
	if h := hexSHA256([]byte(got)); h != "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63" {
		t.Fatalf("canonical request hash %s", h)
	}
	if ref := referenceSignature(suiteSecret, suiteDate, "us-east-1", "service", got); ref != "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31" {
		t.Fatalf("referenceSignature = %s", ref)
	}
	key := deriveKey(suiteSecret, "20150830", "us-east-1", "service")
	sig := sc.signature(&key, suiteDate, suiteScope, r, body, &in)
	if hex.EncodeToString(sig[:]) != "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31" {
		t.Fatalf("signature = %x", sig)
	}
}

// TestDeriveKey uses the example from the AWS docs on deriving a signing key.
func TestDeriveKey(t *testing.T) {
	k := deriveKey(suiteSecret, "20120215", "us-east-1", "iam")
	if got := hex.EncodeToString(k[:]); got != "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d" {
		t.Fatalf("deriveKey = %s", got)
	}
}

func TestEscapedPath(t *testing.T) {
	cases := []struct{ raw, want string }{
		{"/", "/"},
		{"/2015-03-31/functions/my-function/invocations", "/2015-03-31/functions/my-function/invocations"},
		// The Lambda client sends ARNs with ':' escaped once; canonical form escapes again.
		{"/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Afoo/invocations",
			"/2015-03-31/functions/arn%253Aaws%253Alambda%253Aus-east-1%253A123456789012%253Afunction%253Afoo/invocations"},
		{"/functions/foo%3A%24LATEST", "/functions/foo%253A%2524LATEST"},
		{"/functions/foo:$LATEST", "/functions/foo%3A%24LATEST"},
		// Test suite: get-space, get-utf8, get-unreserved.
		{"/example space/", "/example%20space/"},
		{"/ሴ", "/%E1%88%B4"},
		{"/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
			"/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"},
		{"/a%2Fb/c+d=e&f", "/a%252Fb/c%2Bd%3De%26f"},
	}
	for _, c := range cases {
		if got := string(appendEscapedPath(nil, c.raw)); got != c.want {
			t.Errorf("appendEscapedPath(%q) = %q, want %q", c.raw, got, c.want)
		}
	}
}

func TestNormalizePath(t *testing.T) {
	// Test suite: normalize-path/*.
	cases := []struct{ raw, want string }{
		{"/", "/"},
		{"/./", "/"},
		{"/./example", "/example"},
		{"/example/..", "/"},
		{"/example1/example2/../..", "/"},
		{"//example//", "/example/"},
		{"/example/.", "/example/"},
		{"/a/b/../c", "/a/c"},
		{"/../..", "/"},
		{"/a//b", "/a/b"},
		{"/a/b/", "/a/b/"},
		{"/a.b/..c/.d", "/a.b/..c/.d"},
		{"*", "/*"},
	}
	for _, c := range cases {
		if got := normalizePath(c.raw); got != c.want {
			t.Errorf("normalizePath(%q) = %q, want %q", c.raw, got, c.want)
		}
		if got := hasDotOrEmptySegment(c.raw); got != (c.raw != c.want) {
			t.Errorf("hasDotOrEmptySegment(%q) = %v", c.raw, got)
		}
	}
}

func TestCanonicalQuery(t *testing.T) {
	cases := []struct {
		raw       string
		presigned bool
		want      string
	}{
		{"", false, ""},
		{"Param2=value2&Param1=value1", false, "Param1=value1&Param2=value2"},
		// get-vanilla-query-order-value: same name, sorted by value.
		{"Param1=value2&Param1=Value1", false, "Param1=Value1&Param1=value2"},
		// get-vanilla-query-unreserved and -utf8.
		{"-._~0123456789=-._~0123456789", false, "-._~0123456789=-._~0123456789"},
		{"%E1%88%B4=bar", false, "%E1%88%B4=bar"},
		// '+' is a space; escapes come out upper case; '/' is encoded.
		{"a=x+y&b=%2f&c=%7e", false, "a=x%20y&b=%2F&c=~"},
		// Sorting happens after encoding: "a%2Fb" sorts before "a-b".
		{"k=a-b&k=a/b", false, "k=a%2Fb&k=a-b"},
		// A name without '=' has an empty value; empty segments vanish.
		{"&&acl&&", false, "acl="},
		{"a=1=2", false, "a=1%3D2"},
		// A malformed escape is kept as text.
		{"q=%zz&r=%4", false, "q=%25zz&r=%254"},
		{"Marker=a%2Fb%20c%2Bd&MaxItems=10", false, "Marker=a%2Fb%20c%2Bd&MaxItems=10"},
		{"X-Amz-Signature=abc&b=1&X-Amz-Date=x", true, "X-Amz-Date=x&b=1"},
		{"X-Amz-Signature=abc&b=1", false, "X-Amz-Signature=abc&b=1"},
	}
	for _, c := range cases {
		sc := getScratch()
		got := string(sc.appendCanonicalQuery(nil, c.raw, c.presigned))
		putScratch(sc)
		if got != c.want {
			t.Errorf("canonical query of %q = %q, want %q", c.raw, got, c.want)
		}
	}
}

func TestCanonicalHeaders(t *testing.T) {
	h := http.Header{}
	h.Add("My-Header1", "value1")
	h.Add("My-Header1", "  value2   value2  ")
	h.Add("My-Header2", `"a   b   c"`)
	h.Add("X-Amz-Date", suiteDate)
	h.Add("X-Tab", "a\t\tb")
	r := &http.Request{Host: "example.amazonaws.com", Header: h}
	got := string(appendCanonicalHeaders(nil, r, "content-length;host;my-header1;my-header2;missing;x-amz-date;x-tab", 42))
	want := "content-length:42\nhost:example.amazonaws.com\nmy-header1:value1,value2 value2\n" +
		"my-header2:\"a b c\"\nmissing:\nx-amz-date:20150830T123600Z\nx-tab:a\t\tb\n"
	if got != want {
		t.Fatalf("canonical headers\n%q\nwant\n%q", got, want)
	}
	h.Set("Content-Length", "7")
	if got := string(appendCanonicalHeaders(nil, r, "content-length", 42)); got != "content-length:7\n" {
		t.Fatalf("content-length from header = %q", got)
	}
}

func TestHeaderValue(t *testing.T) {
	cases := []struct{ in, want string }{
		{"", ""},
		{"   ", ""},
		{"a", "a"},
		{"  a  ", "a"},
		{"a    b     c", "a b c"},
		{"\t a b \t", "a b"},
		{"a \t  b", "a \t b"},
	}
	for _, c := range cases {
		if got := string(appendHeaderValue(nil, c.in)); got != c.want {
			t.Errorf("appendHeaderValue(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestValidSignedHeaders(t *testing.T) {
	for s, want := range map[string]bool{
		"host":                               true,
		"content-type;host;x-amz-date":       true,
		"amz-sdk-invocation-id;host;x-amz-*": true,
		"":                                   false,
		"host;":                              false,
		";host":                              false,
		"host;host":                          false,
		"x-amz-date;host":                    false,
		"Host":                               false,
		"host;x amz":                         false,
		"host;x:y":                           false,
	} {
		if got := validSignedHeaders(s); got != want {
			t.Errorf("validSignedHeaders(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestHeaderValuesCanonicalKey(t *testing.T) {
	h := http.Header{"X-Amz-Date": {"d"}, "Content-Type": {"t"}, "Www-Authenticate": {"w"}}
	for name, want := range map[string]string{"x-amz-date": "d", "content-type": "t", "www-authenticate": "w", "nope": ""} {
		vals := headerValues(h, name)
		if got := ""; len(vals) > 0 {
			got = vals[0]
			if got != want {
				t.Errorf("headerValues(%q) = %q, want %q", name, got, want)
			}
		} else if want != "" {
			t.Errorf("headerValues(%q) found nothing, want %q", name, want)
		}
	}
	long := "x-very-long-header-name-that-is-longer-than-sixty-four-bytes-in-total-length"
	h.Set(long, "v")
	if vals := headerValues(h, long); len(vals) != 1 || vals[0] != "v" {
		t.Errorf("headerValues(long) = %q", vals)
	}
}

func TestParseAuthorization(t *testing.T) {
	a, err := parseAuthorization("AWS4-HMAC-SHA256 Credential=AKID/20240101/r/s/aws4_request, SignedHeaders=host;x-amz-date,  Signature=abc")
	if err != nil {
		t.Fatal(err)
	}
	want := authorization{algorithm: "AWS4-HMAC-SHA256", credential: "AKID/20240101/r/s/aws4_request",
		signedHeaders: "host;x-amz-date", signature: "abc", hasSignedHeaders: true}
	if a != want {
		t.Fatalf("parseAuthorization = %+v, want %+v", a, want)
	}
	// No spaces after commas, unknown keys ignored, empty SignedHeaders present.
	a, err = parseAuthorization("AWS4-HMAC-SHA256 Credential=c,SignedHeaders=,Foo=bar,Signature=s")
	if err != nil || a.credential != "c" || a.signature != "s" || a.signedHeaders != "" || !a.hasSignedHeaders {
		t.Fatalf("parseAuthorization = %+v, %v", a, err)
	}
	// A space after '=' splits the value off, as AWS reports.
	_, err = parseAuthorization("AWS4-HMAC-SHA256 Credential= AKID/20240101/r/s/aws4_request")
	wantError(t, err, typeIncomplete, "'AKID/20240101/r/s/aws4_request' not a valid key=value pair (missing equal-sign) "+
		"in Authorization header: 'AWS4-HMAC-SHA256 Credential= AKID/20240101/r/s/aws4_request'.", false)
}

func TestParseCredential(t *testing.T) {
	s, ok := parseCredential("AKID/20240101/us-east-1/lambda/aws4_request")
	if !ok || s != (credentialScope{"AKID", "20240101", "us-east-1", "lambda", "aws4_request"}) {
		t.Fatalf("parseCredential = %+v, %v", s, ok)
	}
	for _, bad := range []string{"", "a/b/c/d", "a/b/c/d/e/f", "AKID/20240101/us-east-1/lambda/aws4_request/"} {
		if _, ok := parseCredential(bad); ok {
			t.Errorf("parseCredential(%q) ok", bad)
		}
	}
}

func TestKeyCacheBounded(t *testing.T) {
	var c keyCache
	for i := 0; i < maxCachedKeys+50; i++ {
		date := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, i).Format("20060102")
		k := c.signingKey(suiteSecret, date, "us-east-1", "lambda")
		if k != deriveKey(suiteSecret, date, "us-east-1", "lambda") {
			t.Fatalf("cached key for %s differs from derived key", date)
		}
		if again := c.signingKey(suiteSecret, date, "us-east-1", "lambda"); again != k {
			t.Fatalf("second lookup for %s differs", date)
		}
	}
	if n := c.len(); n != maxCachedKeys {
		t.Fatalf("cache holds %d keys, want %d", n, maxCachedKeys)
	}
	if c.signingKey("other", "20240101", "us-east-1", "lambda") == c.signingKey(suiteSecret, "20240101", "us-east-1", "lambda") {
		t.Fatal("keys for different secrets are equal")
	}
}
