package logs

import (
	"errors"
	"testing"

	"kindling/internal/errdefs"
)

func TestPattern(t *testing.T) {
	cases := []struct {
		pattern, msg string
		want         bool
	}{
		{"", "anything", true},
		{`""`, "anything", true},
		{"ERROR", "an ERROR here", true},
		{"ERROR", "an error here", false},
		{"ERROR Exception", "ERROR: Exception thrown", true},
		{"ERROR Exception", "ERROR only", false},
		{`"request failed"`, "the request failed badly", true},
		{`"request failed"`, "the request has failed", false},
		{"?ERROR ?WARN", "WARN: disk", true},
		{"?ERROR ?WARN", "INFO: fine", false},
		{"ERROR -Healthcheck", "ERROR in handler", true},
		{"ERROR -Healthcheck", "ERROR in Healthcheck", false},
		{`-"GET /health"`, "GET /health 200", false},
		{`-"GET /health"`, "GET /users 200", true},
		{`START ?cold ?warm`, "START warm", true},
		{`START ?cold ?warm`, "START hot", false},
		{`"say \"hi\""`, `they say "hi"`, true},
		{"\tTAB\t", "a TAB b", true},
	}
	for _, c := range cases {
		p, err := ParsePattern(c.pattern)
		if err != nil {
			t.Errorf("ParsePattern(%q): %v", c.pattern, err)
			continue
		}
		if got := p.Match(c.msg); got != c.want {
			t.Errorf("%q matches %q = %v, want %v", c.pattern, c.msg, got, c.want)
		}
	}
	var nilPattern *Pattern
	if !nilPattern.Match("x") {
		t.Error("a nil pattern must match everything")
	}
}

func TestPatternInvalid(t *testing.T) {
	for _, p := range []string{`{ $.level = "ERROR" }`, "[ip, user]", "%ERR.*%", `"unterminated`, "?", "- x"} {
		if _, err := ParsePattern(p); !errors.Is(err, errdefs.ErrInvalid) {
			t.Errorf("ParsePattern(%q) = %v, want an ErrInvalid error", p, err)
		}
	}
}

func FuzzParsePattern(f *testing.F) {
	for _, s := range []string{"", "a b", `"x y" ?z -w`, `"\"`, "?-?"} {
		f.Add(s, "message")
	}
	f.Fuzz(func(t *testing.T, pattern, msg string) {
		p, err := ParsePattern(pattern)
		if err != nil {
			return
		}
		p.Match(msg)
	})
}
