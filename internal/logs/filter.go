package logs

import (
	"fmt"
	"strings"

	"kindling/internal/errdefs"
)

// Pattern is a parsed filter pattern for unstructured log events, the
// subset of CloudWatch Logs' syntax Kindling implements:
//
//	ERROR Exception      every term must occur (AND)
//	"request failed"     a quoted phrase is one term, spaces included
//	?ERROR ?WARN         at least one of the ?-terms must occur (OR)
//	ERROR -Healthcheck   no -term may occur
//
// Terms are case-sensitive substrings of the message. The empty pattern
// matches every event. JSON ({ $.x = 1 }), space-delimited ([a, b]) and
// regular-expression (%re%) patterns are refused as invalid rather than
// matched wrongly.
type Pattern struct {
	all, any, none []string
}

// maxPatternLen is CloudWatch Logs' limit on filterPattern.
const maxPatternLen = 1024

// ParsePattern parses s. The error wraps errdefs.ErrInvalid.
func ParsePattern(s string) (*Pattern, error) {
	if len(s) > maxPatternLen {
		return nil, fmt.Errorf("%w: filterPattern is longer than %d characters", errdefs.ErrInvalid, maxPatternLen)
	}
	p := &Pattern{}
	rest := strings.TrimSpace(s)
	if rest != "" && strings.ContainsRune("{[%", rune(rest[0])) {
		return nil, fmt.Errorf("%w: Invalid filter pattern: JSON, space-delimited and regular-expression patterns are not supported", errdefs.ErrInvalid)
	}
	for {
		rest = strings.TrimLeft(rest, " \t\r\n")
		if rest == "" {
			return p, nil
		}
		var kind byte
		if rest[0] == '?' || rest[0] == '-' {
			kind, rest = rest[0], rest[1:]
		}
		var term string
		if strings.HasPrefix(rest, `"`) {
			var ok bool
			term, rest, ok = quoted(rest[1:])
			if !ok {
				return nil, fmt.Errorf("%w: Invalid filter pattern: unterminated quoted term", errdefs.ErrInvalid)
			}
		} else {
			i := strings.IndexAny(rest, " \t\r\n")
			if i < 0 {
				i = len(rest)
			}
			term, rest = rest[:i], rest[i:]
		}
		if term == "" {
			if kind != 0 {
				return nil, fmt.Errorf("%w: Invalid filter pattern: %q has no term", errdefs.ErrInvalid, string(kind))
			}
			continue // "" matches everything: no constraint
		}
		switch kind {
		case '?':
			p.any = append(p.any, term)
		case '-':
			p.none = append(p.none, term)
		default:
			p.all = append(p.all, term)
		}
	}
}

// quoted reads a quoted term after its opening quote; \" and \\ escape.
func quoted(s string) (term, rest string, ok bool) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' && i+1 < len(s) && (s[i+1] == '"' || s[i+1] == '\\'):
			b.WriteByte(s[i+1])
			i++
		case c == '"':
			return b.String(), s[i+1:], true
		default:
			b.WriteByte(c)
		}
	}
	return "", "", false
}

// Match reports whether msg matches the pattern. A nil Pattern matches
// everything.
func (p *Pattern) Match(msg string) bool {
	if p == nil {
		return true
	}
	for _, t := range p.all {
		if !strings.Contains(msg, t) {
			return false
		}
	}
	for _, t := range p.none {
		if strings.Contains(msg, t) {
			return false
		}
	}
	if len(p.any) == 0 {
		return true
	}
	for _, t := range p.any {
		if strings.Contains(msg, t) {
			return true
		}
	}
	return false
}
