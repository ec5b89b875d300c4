package awsapi

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"kindling/internal/config"
)

func TestFunctionConfiguration(t *testing.T) {
	f := &config.Function{
		Account: "123456789012", Region: "eu-west-1", Name: "f", Version: config.LatestVersion,
		Runtime: "provided.al2023", Handler: "bootstrap", Role: "arn:aws:iam::123456789012:role/r",
		MemoryMB: 128, TimeoutSec: 3, EphemeralMB: 512, CodeSha256: "abc=", CodeSize: 42,
		RevisionID: "rev", LastModified: time.Date(2024, 2, 3, 4, 5, 6, 789_000_000, time.FixedZone("x", 3600)),
		State: config.StateActive, LastUpdateStatus: config.UpdateSuccessful,
	}
	c := NewFunctionConfiguration(f)
	if c.LastModified != "2024-02-03T03:05:06.789+0000" {
		t.Errorf("LastModified %q", c.LastModified)
	}
	if c.FunctionArn != "arn:aws:lambda:eu-west-1:123456789012:function:f" || c.PackageType != "Zip" ||
		len(c.Architectures) != 1 || c.Environment != nil || c.LoggingConfig.LogGroup != "/aws/lambda/f" {
		t.Errorf("%+v", c)
	}
	data, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	for _, want := range []string{`"Description":""`, `"TracingConfig":{"Mode":"PassThrough"}`, `"EphemeralStorage":{"Size":512}`,
		`"SnapStart":{"ApplyOn":"None","OptimizationStatus":"Off"}`, `"State":"Active"`, `"LastUpdateStatus":"Successful"`} {
		if !strings.Contains(s, want) {
			t.Errorf("missing %s in %s", want, s)
		}
	}
	if strings.Contains(s, "StateReason") || strings.Contains(s, `"Environment"`) {
		t.Errorf("empty members sent: %s", s)
	}
	f.Env = map[string]string{"A": "1"}
	if NewFunctionConfiguration(f).Environment.Variables["A"] != "1" {
		t.Error("environment")
	}
	out, _ := json.Marshal(ListFunctionsOutput{Functions: []FunctionConfiguration{}})
	if string(out) != `{"Functions":[]}` {
		t.Errorf("empty list %s", out)
	}
}
