package sigv4

import (
	"net/http"
	"strings"
	"testing"
)

// BenchmarkVerify verifies a signed ~100-byte Invoke, the hot path.
func BenchmarkVerify(b *testing.B) {
	body := []byte(`{"orderId":"o-123","items":[{"sku":"A-1","qty":2},{"sku":"B-7","qty":1}],"note":"benchmark payload"}`)
	req := newClientRequest(b, http.MethodPost, "/2015-03-31/functions/my-function/invocations", body, map[string]string{
		"Content-Type":          "application/json",
		"X-Amz-Invocation-Type": "RequestResponse",
	})
	sdkSign(b, req, body, testKeyID, testSecret, "lambda", testRegion, t0)
	sreq, sbody := toServer(b, req)
	v := verifierAt(t0)
	if _, _, err := v.Verify(sreq, sbody); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(sbody)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := v.Verify(sreq, sbody); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyQuery verifies a signed GET with a five-parameter query.
func BenchmarkVerifyQuery(b *testing.B) {
	req := newClientRequest(b, http.MethodGet, "/2015-03-31/functions?MaxItems=50&Marker=abc%2Fdef&FunctionVersion=ALL&MasterRegion=ALL&z=1", nil, nil)
	sdkSign(b, req, nil, testKeyID, testSecret, "lambda", testRegion, t0)
	sreq, sbody := toServer(b, req)
	v := verifierAt(t0)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := v.Verify(sreq, sbody); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyParallel measures contention on the key cache and pool.
func BenchmarkVerifyParallel(b *testing.B) {
	sreq, body := signedLambdaInvoke(b)
	v := verifierAt(t0)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, _, err := v.Verify(sreq, body); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkVerifyReject measures the cost of refusing a bad signature.
func BenchmarkVerifyReject(b *testing.B) {
	sreq, body := signedLambdaInvoke(b)
	a := sreq.Header.Get("Authorization")
	sreq.Header.Set("Authorization", a[:len(a)-64]+strings.Repeat("0", 64))
	v := verifierAt(t0)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := v.Verify(sreq, body); err == nil {
			b.Fatal("verified")
		}
	}
}
