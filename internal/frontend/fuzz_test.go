package frontend

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"testing"
)

// FuzzCreateFunctionBody sends arbitrary bodies to CreateFunction (with
// authentication bypassed): the handler must never panic and never blame
// itself (5xx) for what the client sent.
func FuzzCreateFunctionBody(f *testing.F) {
	e := newEnv(f)
	zip := base64.StdEncoding.EncodeToString(makeZip(f, "echo fuzz"))
	valid, err := json.Marshal(map[string]any{
		"FunctionName": "fuzz", "Runtime": "provided.al2023", "Handler": "bootstrap", "Role": testRole,
		"Code": map[string]any{"ZipFile": zip}, "MemorySize": 256, "Timeout": 30,
		"Environment":      map[string]any{"Variables": map[string]string{"A": "b"}},
		"EphemeralStorage": map[string]any{"Size": 1024}, "Architectures": []string{hostArchitecture},
		"Tags": map[string]string{"k": "v"},
	})
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{
		string(valid), "", "{}", "null", "[]", `"x"`, "{", `{"FunctionName":1}`,
		`{"FunctionName":"a","Role":"arn:aws:iam::123456789012:role/r","Code":{"ZipFile":"!!"}}`,
		`{"FunctionName":"a","Role":"arn:aws:iam::123456789012:role/r","Code":{"ZipFile":"UEsFBgAAAAAAAAAAAAAAAAAAAAAAAA=="},"Runtime":"provided.al2","Handler":"h"}`,
		`{"FunctionName":"a","Role":"r","Code":{},"MemorySize":-1,"Timeout":1e99,"EphemeralStorage":{}}`,
		`{"FunctionName":"arn:aws:lambda:us-east-1:123456789012:function:a:1","Role":null,"Code":null}`,
		`{"Environment":{"Variables":{"AWS_REGION":"x","":""}},"VpcConfig":{"SubnetIds":["s"]},"Layers":["l"]}`,
		`{"FunctionName":"a","Runtime":"provided.al2023","Handler":"h","Role":"arn:aws:iam::123456789012:role/r","Code":{"ZipFile":"` + zip + `"},"Architectures":[]}`,
	} {
		f.Add([]byte(seed))
	}
	if rec := e.do(http.MethodPost, "/2015-03-31/functions", valid, nil); rec.Code != http.StatusCreated {
		f.Fatalf("valid seed: %d %s", rec.Code, rec.Body)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		rec := e.do(http.MethodPost, "/2015-03-31/functions", body, nil)
		if rec.Code >= 500 || rec.Code < 200 {
			t.Fatalf("status %d for %q: %s", rec.Code, body, rec.Body)
		}
		if rec.Code >= 400 && rec.Header().Get("X-Amzn-ErrorType") == "" {
			t.Fatalf("error without X-Amzn-ErrorType for %q", body)
		}
	})
}
