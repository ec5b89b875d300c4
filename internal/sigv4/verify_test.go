package sigv4

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestVerifySDKRoundTrip signs requests with aws-sdk-go-v2's signer, sends
// them through net/http's wire format, and verifies them.
func TestVerifySDKRoundTrip(t *testing.T) {
	const fnARN = "arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Amy-fn%3A%24LATEST"
	cases := []struct {
		name, service, method, target string
		header                        map[string]string
		body                          []byte
	}{
		{name: "lambda GET with query", service: "lambda", method: "GET",
			target: "/2015-03-31/functions?MaxItems=10&Marker=a%2Fb%20c%2Bd&FunctionVersion=ALL"},
		{name: "lambda GET no query", service: "lambda", method: "GET", target: "/2015-03-31/functions/"},
		{name: "lambda POST JSON", service: "lambda", method: "POST",
			target: "/2015-03-31/functions/my-function/invocations",
			header: map[string]string{"Content-Type": "application/json", "X-Amz-Invocation-Type": "Event"},
			body:   []byte(`{"key":"value","n":[1,2,3]}`)},
		{name: "lambda ARN with colons and $LATEST, escaped as the SDK does", service: "lambda", method: "GET",
			target: "/2015-03-31/functions/" + fnARN + "/configuration"},
		{name: "lambda invoke ARN with qualifier", service: "lambda", method: "POST",
			target: "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Amy-fn/invocations?Qualifier=%24LATEST",
			body:   []byte(`{}`)},
		{name: "lambda ARN with literal colons", service: "lambda", method: "GET",
			target: "/2015-03-31/functions/arn:aws:lambda:us-east-1:123456789012:function:my-fn:$LATEST"},
		{name: "lambda non-ASCII and reserved bytes in path", service: "lambda", method: "GET",
			target: "/2015-03-31/functions/f%C3%A9%20x%2Fy/aliases/a~b_c-d.e"},
		{name: "lambda POST empty body", service: "lambda", method: "POST",
			target: "/2015-03-31/functions/my-function/invocations", body: []byte{}},
		{name: "lambda DELETE no body", service: "lambda", method: "DELETE",
			target: "/2015-03-31/functions/my-function"},
		{name: "logs JSON protocol", service: "logs", method: "POST", target: "/",
			header: map[string]string{"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "Logs_20140328.PutLogEvents"},
			body:   []byte(`{"logGroupName":"/aws/lambda/my-fn","logStreamName":"s","logEvents":[{"timestamp":1,"message":"hi"}]}`)},
		{name: "logs empty body", service: "logs", method: "POST", target: "/",
			header: map[string]string{"X-Amz-Target": "Logs_20140328.DescribeLogGroups"}},
		{name: "sqs query protocol", service: "sqs", method: "POST", target: "/",
			header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"},
			body:   []byte("Action=SendMessage&QueueUrl=http%3A%2F%2Fkindling%2F123%2Fq&MessageBody=hello+world")},
		{name: "sqs JSON protocol", service: "sqs", method: "POST", target: "/",
			header: map[string]string{"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": "AmazonSQS.SendMessage"},
			body:   []byte(`{"QueueUrl":"http://kindling/123/q","MessageBody":"x"}`)},
		{name: "header with runs of spaces and a repeated header", service: "lambda", method: "POST",
			target: "/2015-03-31/functions/f/invocations",
			header: map[string]string{"X-Amz-Client-Context": "  a   b \t c  ", "X-Amz-Meta-Note": "x,  y"},
			body:   []byte(`"payload"`)},
		{name: "x-amz-content-sha256 signed", service: "lambda", method: "POST", target: "/2015-03-31/functions/f/invocations",
			header: map[string]string{"X-Amz-Content-Sha256": hexSHA256([]byte(`{"a":1}`))},
			body:   []byte(`{"a":1}`)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := newClientRequest(t, c.method, c.target, c.body, c.header)
			sdkSign(t, req, c.body, testKeyID, testSecret, c.service, testRegion, t0)
			sreq, body := toServer(t, req)
			creds, service, err := verifierAt(t0.Add(2*time.Minute)).Verify(sreq, body)
			if err != nil {
				t.Fatalf("Verify: %v\nrequest URI %q, Authorization %q", err, sreq.RequestURI, sreq.Header.Get("Authorization"))
			}
			if service != c.service || creds.AccountID != testAccount || creds.AccessKeyID != testKeyID {
				t.Fatalf("Verify = %+v, %q; want account %s, service %s", creds, service, testAccount, c.service)
			}
		})
	}
}

// TestVerifyEquivalentQueryForms checks that a query the client signed in
// one form still verifies when sent reordered or differently encoded, since
// the canonical query is rebuilt from the decoded parameters.
func TestVerifyEquivalentQueryForms(t *testing.T) {
	req := newClientRequest(t, "GET", "/2015-03-31/functions?b=2&a=x%20y&a=w&c=%2F", nil, nil)
	sdkSign(t, req, nil, testKeyID, testSecret, "lambda", testRegion, t0)
	for _, q := range []string{"b=2&a=x%20y&a=w&c=%2F", "a=w&c=/&b=2&a=x+y", "c=%2f&&a=x%20y&b=2&a=w&"} {
		sreq, body := toServer(t, req)
		sreq.RequestURI = "/2015-03-31/functions?" + q
		if _, _, err := verifierAt(t0).Verify(sreq, body); err != nil {
			t.Errorf("query %q: %v", q, err)
		}
	}
}

// TestVerifyNormalizedPath accepts a signature over the RFC 3986 normalised
// path, as botocore computes it, for a path sent with dot segments.
func TestVerifyNormalizedPath(t *testing.T) {
	cr := "GET\n/2015-03-31/functions\n\nhost:" + testHost + "\nx-amz-date:20240101T000000Z\n\nhost;x-amz-date\n" + hexSHA256(nil)
	sig := referenceSignature(testSecret, "20240101T000000Z", testRegion, "lambda", cr)
	wire := "GET /2015-03-31/./x/../functions HTTP/1.1\r\nHost: " + testHost + "\r\nX-Amz-Date: 20240101T000000Z\r\n" +
		"Authorization: AWS4-HMAC-SHA256 Credential=" + testKeyID + "/20240101/us-east-1/lambda/aws4_request, " +
		"SignedHeaders=host;x-amz-date, Signature=" + sig + "\r\n\r\n"
	sreq, body := parseWire(t, wire)
	if _, _, err := verifierAt(t0).Verify(sreq, body); err != nil {
		t.Fatal(err)
	}
}

// TestVerifyDateHeader accepts a Date header in place of X-Amz-Date; the
// string to sign then carries it in ISO 8601 basic format.
func TestVerifyDateHeader(t *testing.T) {
	const date = "Mon, 01 Jan 2024 00:00:00 GMT"
	cr := "GET\n/\n\ndate:" + date + "\nhost:" + testHost + "\n\ndate;host\n" + hexSHA256(nil)
	sig := referenceSignature(testSecret, "20240101T000000Z", testRegion, "logs", cr)
	wire := "GET / HTTP/1.1\r\nHost: " + testHost + "\r\nDate: " + date + "\r\n" +
		"Authorization: AWS4-HMAC-SHA256 Credential=" + testKeyID + "/20240101/us-east-1/logs/aws4_request, " +
		"SignedHeaders=date;host, Signature=" + sig + "\r\n\r\n"
	sreq, body := parseWire(t, wire)
	if _, service, err := verifierAt(t0).Verify(sreq, body); err != nil || service != "logs" {
		t.Fatalf("Verify = %q, %v", service, err)
	}
}

func TestVerifyUnsignedPayload(t *testing.T) {
	body := []byte(`{"a":1}`)
	req := newClientRequest(t, "POST", "/2015-03-31/functions/f/invocations", body,
		map[string]string{"X-Amz-Content-Sha256": unsignedPayload})
	sdkSignPayload(t, req, unsignedPayload, testKeyID, testSecret, "lambda", testRegion, t0)
	sreq, _ := toServer(t, req)
	// The body is not covered: any body verifies. Documented in doc.go.
	if _, _, err := verifierAt(t0).Verify(sreq, []byte("something else")); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyRegionAny(t *testing.T) {
	req := newClientRequest(t, "GET", "/", nil, nil)
	sdkSign(t, req, nil, testKeyID, testSecret, "sqs", "eu-central-1", t0)
	sreq, body := toServer(t, req)
	v := verifierAt(t0)
	v.Region = ""
	if _, _, err := v.Verify(sreq, body); err != nil {
		t.Fatal(err)
	}
	v = verifierAt(t0)
	_, _, err := v.Verify(sreq, body)
	wantError(t, err, typeInvalid, "Credential should be scoped to a valid region. ", false)
}

func TestVerifySkew(t *testing.T) {
	sreq, body := signedLambdaInvoke(t)
	for _, d := range []time.Duration{-5 * time.Minute, -time.Second, 0, time.Second, 5 * time.Minute} {
		if _, _, err := verifierAt(t0.Add(d)).Verify(sreq, body); err != nil {
			t.Errorf("now = t0%+v: %v", d, err)
		}
	}
	_, _, err := verifierAt(t0.Add(10*time.Minute)).Verify(sreq, body)
	wantError(t, err, typeInvalid,
		"Signature expired: 20240101T000000Z is now earlier than 20240101T000500Z (20240101T001000Z - 5 min.)", false)
	_, _, err = verifierAt(t0.Add(-10*time.Minute)).Verify(sreq, body)
	wantError(t, err, typeInvalid,
		"Signature not yet current: 20240101T000000Z is still later than 20231231T235500Z (20231231T235000Z + 5 min.)", false)

	v := verifierAt(t0.Add(3 * time.Minute))
	v.MaxSkew = 90 * time.Second
	_, _, err = v.Verify(sreq, body)
	wantError(t, err, typeInvalid,
		"Signature expired: 20240101T000000Z is now earlier than 20240101T000130Z (20240101T000300Z - 90 sec.)", false)
}

func TestVerifyNilNowUsesClock(t *testing.T) {
	req := newClientRequest(t, "GET", "/", nil, nil)
	sdkSign(t, req, nil, testKeyID, testSecret, "lambda", testRegion, time.Now())
	sreq, body := toServer(t, req)
	v := &Verifier{Lookup: testCreds}
	if _, _, err := v.Verify(sreq, body); err != nil {
		t.Fatal(err)
	}
}

// TestVerifyRejects covers each failure, starting from a valid invoke and
// changing one thing.
func TestVerifyRejects(t *testing.T) {
	replaceAuth := func(old, new string) func(*http.Request, *[]byte) {
		return func(r *http.Request, _ *[]byte) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), old, new, 1))
		}
	}
	setHeader := func(k, v string) func(*http.Request, *[]byte) {
		return func(r *http.Request, _ *[]byte) { r.Header.Set(k, v) }
	}
	cases := []struct {
		name   string
		mutate func(r *http.Request, body *[]byte)
		typ    string
		msg    string
		prefix bool
	}{
		{"no Authorization", func(r *http.Request, _ *[]byte) { r.Header.Del("Authorization") },
			typeMissingToken, msgMissingToken, false},
		{"empty Authorization", setHeader("Authorization", ""), typeMissingToken, msgMissingToken, false},
		{"algorithm only", setHeader("Authorization", "AWS4-HMAC-SHA256"), typeIncomplete,
			"Authorization header requires 'Credential' parameter. Authorization header requires 'Signature' parameter. " +
				"Authorization header requires 'SignedHeaders' parameter. Authorization=AWS4-HMAC-SHA256", false},
		{"no date either", func(r *http.Request, _ *[]byte) {
			r.Header.Set("Authorization", "Bearer")
			r.Header.Del("X-Amz-Date")
		}, typeIncomplete,
			"Authorization header requires 'Credential' parameter. Authorization header requires 'Signature' parameter. " +
				"Authorization header requires 'SignedHeaders' parameter. " +
				"Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. Authorization=Bearer", false},
		{"no signature", replaceAuth(", Signature=", ", Sig="), typeIncomplete,
			"Authorization header requires 'Signature' parameter. Authorization=AWS4-HMAC-SHA256 Credential=", true},
		{"missing equal sign", setHeader("Authorization", "Bearer abc.def"), typeIncomplete,
			"'abc.def' not a valid key=value pair (missing equal-sign) in Authorization header: 'Bearer abc.def'.", false},
		{"malformed X-Amz-Date", setHeader("X-Amz-Date", "2024-01-01T00:00:00Z"), typeIncomplete,
			"Date must be in ISO-8601 'basic format'. Got '2024-01-01T00:00:00Z'. See http://en.wikipedia.org/wiki/ISO_8601", false},
		{"impossible X-Amz-Date", setHeader("X-Amz-Date", "20241301T000000Z"), typeIncomplete,
			"Date must be in ISO-8601 'basic format'. Got '20241301T000000Z'.", true},
		{"host not signed", replaceAuth("SignedHeaders=content-length;content-type;host;", "SignedHeaders=content-length;content-type;"),
			typeInvalid, msgHostUnsigned, false},
		{"unsupported algorithm", replaceAuth("AWS4-HMAC-SHA256", "AWS4-HMAC-SHA512"), typeIncomplete,
			"Unsupported AWS 'algorithm': 'AWS4-HMAC-SHA512' (only AWS4-HMAC-SHA256 for now). ", false},
		{"credential with four parts", replaceAuth("/us-east-1/lambda/", "/us-east-1/"), typeIncomplete,
			"Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '" +
				testKeyID + "/20240101/us-east-1/aws4_request'", false},
		{"wrong region", replaceAuth("/us-east-1/", "/eu-west-1/"), typeInvalid, msgWrongRegion, false},
		{"wrong terminator", replaceAuth("/aws4_request", "/aws5_request"), typeInvalid,
			"Credential should be scoped with a valid terminator: 'aws4_request', not 'aws5_request'. ", false},
		{"scope date differs", replaceAuth("/20240101/", "/20240102/"), typeInvalid,
			"Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: " +
				"'20240102' != '20240101', from '20240101T000000Z'.", false},
		{"unknown key", replaceAuth(testKeyID, "AKIAUNKNOWN000000000"), typeUnrecognized, msgUnrecognized, false},
		{"empty key id", replaceAuth(testKeyID, ""), typeUnrecognized, msgUnrecognized, false},
		{"tampered body", func(_ *http.Request, b *[]byte) { *b = []byte(strings.Replace(string(*b), "o-123", "o-124", 1)) },
			typeInvalid, msgMismatch, false},
		{"truncated body", func(_ *http.Request, b *[]byte) { *b = (*b)[:len(*b)-1] }, typeInvalid, msgMismatch, false},
		{"tampered signed header", setHeader("X-Amz-Invocation-Type", "Event"), typeInvalid, msgMismatch, false},
		{"repeated signed header", func(r *http.Request, _ *[]byte) { r.Header.Add("X-Amz-Log-Type", "Tail") },
			typeInvalid, msgMismatch, false},
		{"tampered host", func(r *http.Request, _ *[]byte) { r.Host = "evil.example" }, typeInvalid, msgMismatch, false},
		{"tampered method", func(r *http.Request, _ *[]byte) { r.Method = "PUT" }, typeInvalid, msgMismatch, false},
		{"tampered path", func(r *http.Request, _ *[]byte) {
			r.RequestURI = "/2015-03-31/functions/other-function/invocations"
		}, typeInvalid, msgMismatch, false},
		{"added query", func(r *http.Request, _ *[]byte) { r.RequestURI += "?Qualifier=2" }, typeInvalid, msgMismatch, false},
		{"content sha256 header not matching body", setHeader("X-Amz-Content-Sha256", hexSHA256([]byte("x"))),
			typeInvalid, msgMismatch, false},
		{"unsigned payload claimed afterwards", setHeader("X-Amz-Content-Sha256", unsignedPayload),
			typeInvalid, msgMismatch, false},
		{"signature upper case", func(r *http.Request, _ *[]byte) {
			a := r.Header.Get("Authorization")
			i := strings.Index(a, "Signature=") + len("Signature=")
			r.Header.Set("Authorization", a[:i]+strings.ToUpper(a[i:]))
		}, typeInvalid, msgMismatch, false},
		{"signature short", func(r *http.Request, _ *[]byte) {
			r.Header.Set("Authorization", r.Header.Get("Authorization")[:len(r.Header.Get("Authorization"))-2])
		}, typeInvalid, msgMismatch, false},
		{"signature not hex", func(r *http.Request, _ *[]byte) {
			a := r.Header.Get("Authorization")
			r.Header.Set("Authorization", a[:len(a)-1]+"g")
		}, typeInvalid, msgMismatch, false},
		{"signed headers unsorted", replaceAuth("content-length;content-type;host", "content-type;content-length;host"),
			typeInvalid, msgMismatch, false},
		{"signed headers duplicated", replaceAuth("host;", "host;host;"), typeInvalid, msgMismatch, false},
		{"signed headers upper case", replaceAuth("host;", "Host;"), typeInvalid, msgMismatch, false},
		{"presigned query as well", func(r *http.Request, _ *[]byte) { r.RequestURI += "?X-Amz-Algorithm=AWS4-HMAC-SHA256" },
			typeInvalid, msgBothAuth, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sreq, body := signedLambdaInvoke(t)
			if _, _, err := verifierAt(t0).Verify(sreq, body); err != nil {
				t.Fatalf("unmodified request: %v", err)
			}
			c.mutate(sreq, &body)
			creds, service, err := verifierAt(t0).Verify(sreq, body)
			wantError(t, err, c.typ, c.msg, c.prefix)
			if creds != (Credentials{}) || service != "" {
				t.Fatalf("failed Verify returned %+v, %q", creds, service)
			}
		})
	}
}

func TestVerifyWrongSecret(t *testing.T) {
	req := newClientRequest(t, "GET", "/2015-03-31/functions", nil, nil)
	sdkSign(t, req, nil, testKeyID, testSecret+"x", "lambda", testRegion, t0)
	sreq, body := toServer(t, req)
	_, _, err := verifierAt(t0).Verify(sreq, body)
	wantError(t, err, typeInvalid, msgMismatch, false)
}

// TestVerifyUnsignedHeaderIgnored documents that headers outside
// SignedHeaders do not affect verification (and so are not authenticated).
func TestVerifyUnsignedHeaderIgnored(t *testing.T) {
	sreq, body := signedLambdaInvoke(t)
	sreq.Header.Set("X-Amz-Client-Context", "added after signing")
	if _, _, err := verifierAt(t0).Verify(sreq, body); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyLookupRefusals(t *testing.T) {
	sreq, body := signedLambdaInvoke(t)
	for name, v := range map[string]*Verifier{
		"nil Lookup":   {Now: func() time.Time { return t0 }},
		"empty secret": {Now: func() time.Time { return t0 }, Lookup: func(id string) (Credentials, bool) { return Credentials{AccessKeyID: id}, true }},
	} {
		_, _, err := v.Verify(sreq, body)
		if err == nil {
			t.Fatalf("%s: Verify succeeded", name)
		}
		wantError(t, err, typeUnrecognized, msgUnrecognized, false)
	}
}

func TestErrorString(t *testing.T) {
	e := &Error{Status: 403, Type: typeUnrecognized, Message: msgUnrecognized}
	if got, want := e.Error(), "UnrecognizedClientException: The security token included in the request is invalid."; got != want {
		t.Fatalf("Error() = %q, want %q", got, want)
	}
}

// TestVerifyConcurrent exercises the key cache and the buffer pool from many
// goroutines (run with -race).
func TestVerifyConcurrent(t *testing.T) {
	v := verifierAt(t0)
	v.Region = ""
	type signed struct {
		r    *http.Request
		body []byte
		ok   bool
	}
	var reqs []signed
	for i, region := range []string{"us-east-1", "eu-west-1", "ap-south-1"} {
		for j, service := range []string{"lambda", "logs", "sqs"} {
			body := []byte(strings.Repeat("x", 10*i+j))
			req := newClientRequest(t, "POST", "/", body, nil)
			secret := testSecret
			if (i+j)%4 == 3 {
				secret += "wrong"
			}
			sdkSign(t, req, body, testKeyID, secret, service, region, t0)
			sreq, sbody := toServer(t, req)
			reqs = append(reqs, signed{sreq, sbody, secret == testSecret})
		}
	}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; n < 200; n++ {
				s := reqs[(n+g)%len(reqs)]
				if _, _, err := v.Verify(s.r, s.body); (err == nil) != s.ok {
					t.Errorf("Verify = %v, want ok %v", err, s.ok)
					return
				}
			}
		}()
	}
	wg.Wait()
}
