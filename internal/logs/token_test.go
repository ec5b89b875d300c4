package logs

import (
	"errors"
	"testing"

	"kindling/internal/errdefs"
)

func TestStreamToken(t *testing.T) {
	for _, tok := range []streamToken{{true, 0}, {false, 1 << 40}, {true, ^uint64(0)}} {
		got, err := parseStreamToken(tok.String())
		if err != nil || got != tok {
			t.Errorf("round trip of %v: %v, %v", tok, got, err)
		}
	}
	if s := (streamToken{true, 42}).String(); s != "f/00000000000000000042" {
		t.Errorf("forward token = %q", s)
	}
	for _, bad := range []string{"", "f", "x/1", "f/", "f/-1", "b/1a", "f/99999999999999999999999"} {
		if _, err := parseStreamToken(bad); !errors.Is(err, errdefs.ErrInvalid) {
			t.Errorf("parseStreamToken(%q) = %v, want ErrInvalid", bad, err)
		}
	}
}

func TestCursor(t *testing.T) {
	c := filterCursor{ts: 1700000000000, seq: 7 << 20}
	got, err := parseFilterCursor(c.String())
	if err != nil || got != c {
		t.Errorf("round trip: %v, %v", got, err)
	}
	p, err := decodeCursor(encodeCursor("/aws/lambda/x"), 1)
	if err != nil || p[0] != "/aws/lambda/x" {
		t.Errorf("name cursor: %q, %v", p, err)
	}
	for _, bad := range []string{"!!", encodeCursor("a", "b"), "djI"} {
		if _, err := decodeCursor(bad, 1); !errors.Is(err, errdefs.ErrInvalid) {
			t.Errorf("decodeCursor(%q) = %v, want ErrInvalid", bad, err)
		}
	}
	if !c.after(c.ts, c.seq+1) || c.after(c.ts, c.seq) || !c.after(c.ts+1, 0) || c.after(c.ts-1, ^uint64(0)) {
		t.Error("after is wrong")
	}
}
