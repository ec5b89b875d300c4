package awsapi

import (
	"encoding/json"
	"strings"
	"testing"

	"kindling/internal/config"
)

func TestSnapStartResponse(t *testing.T) {
	cases := []struct {
		version, applyOn string
		on               bool
		want             string
	}{
		{config.LatestVersion, "", false, `"SnapStart":{"ApplyOn":"None","OptimizationStatus":"Off"}`},
		{"", config.SnapStartPublishedVersions, false, `"SnapStart":{"ApplyOn":"PublishedVersions","OptimizationStatus":"Off"}`},
		// $LATEST is always Off, whatever the record says.
		{config.LatestVersion, config.SnapStartPublishedVersions, true, `"SnapStart":{"ApplyOn":"PublishedVersions","OptimizationStatus":"Off"}`},
		{"3", config.SnapStartPublishedVersions, true, `"SnapStart":{"ApplyOn":"PublishedVersions","OptimizationStatus":"On"}`},
		{"4", config.SnapStartPublishedVersions, false, `"SnapStart":{"ApplyOn":"PublishedVersions","OptimizationStatus":"Off"}`},
		{"5", "", false, `"SnapStart":{"ApplyOn":"None","OptimizationStatus":"Off"}`},
	}
	for _, c := range cases {
		f := &config.Function{Account: "123456789012", Region: "us-east-1", Name: "f", Version: c.version,
			SnapStartApplyOn: c.applyOn, SnapStartOn: c.on}
		data, err := json.Marshal(NewFunctionConfiguration(f))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(data), c.want) {
			t.Errorf("version %q applyOn %q on %v: %s, want %s", c.version, c.applyOn, c.on, data, c.want)
		}
		// Lists keep it.
		data, _ = json.Marshal(ListedConfiguration(NewQualifiedConfiguration(f, c.version)))
		if !strings.Contains(string(data), c.want) {
			t.Errorf("listed %q: %s", c.version, data)
		}
	}
}
