package logs

import (
	"slices"
	"strings"
	"testing"
)

func TestSplitLines(t *testing.T) {
	cases := []struct {
		carry, data string
		lines       []string
		rest        string
	}{
		{"", "a\nb\n", []string{"a\n", "b\n"}, ""},
		{"", "a\nb", []string{"a\n"}, "b"},
		{"par", "tial\nnext", []string{"partial\n"}, "next"},
		{"x", "", nil, "x"},
		{"", "\n\n", []string{"\n", "\n"}, ""},
		{"", "REPORT RequestId: r\tDuration: 1.00 ms\t\n", []string{"REPORT RequestId: r\tDuration: 1.00 ms\t\n"}, ""},
	}
	for _, c := range cases {
		lines, rest := splitLines([]byte(c.carry), []byte(c.data))
		if !slices.Equal(lines, c.lines) || string(rest) != c.rest {
			t.Errorf("splitLines(%q, %q) = %q, %q; want %q, %q", c.carry, c.data, lines, rest, c.lines, c.rest)
		}
	}
}

func TestSplitLinesLong(t *testing.T) {
	long := strings.Repeat("x", 2*MaxMessageBytes+10)
	lines, rest := splitLines(nil, []byte(long+"\n"))
	if len(lines) != 3 || len(lines[0]) != MaxMessageBytes || lines[2] != strings.Repeat("x", 10)+"\n" || rest != nil {
		t.Errorf("long line: %d lines, rest %d bytes", len(lines), len(rest))
	}
	// Without a newline the carry never grows past the limit.
	lines, rest = splitLines(nil, []byte(long))
	if len(lines) != 2 || len(rest) != 10 {
		t.Errorf("long partial line: %d lines, rest %d bytes", len(lines), len(rest))
	}
}
