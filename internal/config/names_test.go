package config

import (
	"errors"
	"regexp"
	"strings"
	"testing"

	"kindling/internal/errdefs"
)

func TestParseFunctionName(t *testing.T) {
	cases := []struct {
		in   string
		rule NameRule
		want FunctionRef
	}{
		{"my-fn_1", RuleRead, FunctionRef{Name: "my-fn_1"}},
		{"my-fn:$LATEST", RuleRead, FunctionRef{Name: "my-fn", Qualifier: "$LATEST"}},
		{"my-fn:prod", RuleRead, FunctionRef{Name: "my-fn", Qualifier: "prod"}},
		{"123456789012:function:f", RuleRead, FunctionRef{Name: "f", Account: "123456789012"}},
		{"123456789012:function:f:7", RuleRead, FunctionRef{Name: "f", Account: "123456789012", Qualifier: "7"}},
		{"arn:aws:lambda:us-east-1:123456789012:function:f", RuleRead,
			FunctionRef{Name: "f", Account: "123456789012", Region: "us-east-1"}},
		{"arn:aws:lambda:us-gov-west-1:123456789012:function:f:$LATEST", RuleManage,
			FunctionRef{Name: "f", Account: "123456789012", Region: "us-gov-west-1", Qualifier: "$LATEST"}},
		{"a.b", RuleRead, FunctionRef{Name: "a.b"}},
		{strings.Repeat("a", 64), RuleCreate, FunctionRef{Name: strings.Repeat("a", 64)}},
		{strings.Repeat("a", 100), RuleRead, FunctionRef{Name: strings.Repeat("a", 100)}},
	}
	for _, c := range cases {
		got, err := ParseFunctionName(c.in, c.rule)
		if err != nil {
			t.Errorf("%q: %v", c.in, err)
			continue
		}
		if got != c.want {
			t.Errorf("%q: got %+v, want %+v", c.in, got, c.want)
		}
	}
}

func TestParseFunctionNameInvalid(t *testing.T) {
	cases := []struct {
		in   string
		rule NameRule
		msg  string
	}{
		{"", RuleRead, "2 validation errors detected: Value '' at 'functionName' failed to satisfy constraint: Member must have length greater than or equal to 1; "},
		{"bad name", RuleRead, "1 validation error detected: Value 'bad name' at 'functionName' failed to satisfy constraint: Member must satisfy regular expression pattern: (arn:"},
		{"a.b", RuleManage, "1 validation error detected: Value 'a.b' at 'functionName' failed to satisfy constraint: Member must satisfy regular expression pattern: "},
		{strings.Repeat("a", 65), RuleCreate, "1 validation error detected: Value '" + strings.Repeat("a", 65) + "' at 'functionName' failed to satisfy constraint: Member must have length less than or equal to 64"},
		{strings.Repeat("a", 171), RuleRead, "Member must have length less than or equal to 170"},
		{"f:a:b", RuleRead, "regular expression pattern"},
		{"arn:aws:lambda:us-east-1:12345:function:f", RuleRead, "regular expression pattern"},
	}
	for _, c := range cases {
		_, err := ParseFunctionName(c.in, c.rule)
		var ve *ValidationError
		if !errors.As(err, &ve) {
			t.Errorf("%q: err = %v, want a ValidationError", c.in, err)
			continue
		}
		if !errors.Is(err, errdefs.ErrInvalid) {
			t.Errorf("%q: not ErrInvalid", c.in)
		}
		if !strings.Contains(ve.Message, c.msg) {
			t.Errorf("%q: message %q does not contain %q", c.in, ve.Message, c.msg)
		}
	}
}

func TestResolve(t *testing.T) {
	const acct, region = "123456789012", "us-east-1"
	ok := []string{"f", "f:$LATEST", acct + ":function:f", "arn:aws:lambda:us-east-1:" + acct + ":function:f:$LATEST"}
	for _, s := range ok {
		ref, err := ParseFunctionName(s, RuleRead)
		if err != nil {
			t.Fatal(err)
		}
		if err := ref.Resolve(acct, region, "GetFunction"); err != nil {
			t.Errorf("%q: %v", s, err)
		}
	}

	ref, _ := ParseFunctionName("arn:aws:lambda:us-east-1:999999999999:function:f", RuleRead)
	err := ref.Resolve(acct, region, "GetFunction")
	var ad *AccessDeniedError
	if !errors.As(err, &ad) || !strings.Contains(ad.Message, "lambda:GetFunction") {
		t.Errorf("other account: %v", err)
	}

	ref, _ = ParseFunctionName("arn:aws:lambda:eu-west-1:"+acct+":function:f", RuleRead)
	err = ref.Resolve(acct, region, "GetFunction")
	if !errors.Is(err, errdefs.ErrNotFound) || !strings.Contains(err.Error(), "Functions from 'eu-west-1' are not reachable in this region ('us-east-1')") {
		t.Errorf("other region: %v", err)
	}

	ref, _ = ParseFunctionName("f:3", RuleRead)
	err = ref.Resolve(acct, region, "Invoke")
	if !errors.Is(err, errdefs.ErrNotFound) || !strings.HasSuffix(err.Error(), "Function not found: arn:aws:lambda:us-east-1:123456789012:function:f:3") {
		t.Errorf("version qualifier: %v", err)
	}
}

func TestWithQualifier(t *testing.T) {
	ref, _ := ParseFunctionName("f", RuleRead)
	r2, err := ref.WithQualifier("$LATEST")
	if err != nil || r2.Qualifier != "$LATEST" {
		t.Errorf("got %+v, %v", r2, err)
	}
	if _, err := ref.WithQualifier("bad q"); err == nil {
		t.Error("bad qualifier accepted")
	} else if _, ok := err.(*ValidationError); !ok {
		t.Errorf("bad qualifier: %T", err)
	}
	ref, _ = ParseFunctionName("f:1", RuleRead)
	if _, err := ref.WithQualifier("2"); !errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("mismatch: %v", err)
	}
	if r, err := ref.WithQualifier("1"); err != nil || r.Qualifier != "1" {
		t.Errorf("same: %+v %v", r, err)
	}
}

// awsNameRE is Lambda's pattern as documented, anchored, used to check the
// parser independently.
var awsNameRE = regexp.MustCompile(`^(arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:)?(\d{12}:)?(function:)?([a-zA-Z0-9-_.]+)(:(\$LATEST|[a-zA-Z0-9-_]+))?$`)

func FuzzParseFunctionName(f *testing.F) {
	for _, s := range []string{
		"f", "my-function", "f:$LATEST", "f:1", "123456789012:function:f",
		"arn:aws:lambda:us-east-1:123456789012:function:f:alias",
		"arn:aws-cn:lambda:cn-north-1:123456789012:function:f", "us-east-1:f", "a.b", ":", "",
		"arn:aws:lambda:us-east-1:123456789012:function:", "function:function:f",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, rule := range []NameRule{RuleCreate, RuleManage, RuleRead} {
			ref, err := ParseFunctionName(s, rule)
			if err != nil {
				var ve *ValidationError
				if !errors.As(err, &ve) || !strings.Contains(ve.Message, "validation error") {
					t.Fatalf("%q: unexpected error %v", s, err)
				}
				if rule.Dots && len(s) <= rule.MaxLen && awsNameRE.MatchString(s) {
					t.Fatalf("%q: rejected but matches Lambda's pattern", s)
				}
				continue
			}
			if len(s) > rule.MaxLen {
				t.Fatalf("%q: longer than %d accepted", s, rule.MaxLen)
			}
			if rule.Dots && !awsNameRE.MatchString(s) {
				t.Fatalf("%q: accepted but fails Lambda's pattern", s)
			}
			if ref.Name == "" || strings.Contains(ref.Name, ":") || !strings.Contains(s, ref.Name) {
				t.Fatalf("%q: bad name %q", s, ref.Name)
			}
			if !rule.Dots && strings.Contains(ref.Name, ".") {
				t.Fatalf("%q: dot accepted under %+v", s, rule)
			}
			// A canonical ARN built from the parts parses back to them.
			if ref.Account != "" && ref.Region != "" {
				arn := "arn:aws:lambda:" + ref.Region + ":" + ref.Account + ":function:" + ref.Name
				if ref.Qualifier != "" {
					arn += ":" + ref.Qualifier
				}
				back, err := ParseFunctionName(arn, NameRule{MaxLen: 1 << 20, Dots: rule.Dots})
				if err != nil || back != ref {
					t.Fatalf("%q: round trip via %q gave %+v, %v; want %+v", s, arn, back, err, ref)
				}
			}
			if err := ref.Resolve("123456789012", "us-east-1", "Invoke"); err != nil {
				var ad *AccessDeniedError
				if !errors.Is(err, errdefs.ErrNotFound) && !errors.As(err, &ad) {
					t.Fatalf("%q: Resolve: unexpected error %v", s, err)
				}
			}
		}
	})
}
