package logs

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"

	"kindling/internal/errdefs"
)

// Tokens are opaque to clients but not secret: they only encode a position,
// and every query re-checks the caller's account and group, so a forged
// token can at most skip or repeat events of the caller's own stream.
//
// GetLogEvents tokens are "f/<seq>" (forward: events from seq on) and
// "b/<seq>" (backward: events before seq), seq in 20 decimal digits, like
// the shape of CloudWatch Logs' own "f/3775..." tokens. Cursors of the other
// paginated calls are base64url("v1" NUL part NUL part ...).

// streamToken is a position in one log stream.
type streamToken struct {
	forward bool
	seq     uint64
}

func (t streamToken) String() string {
	d := byte('b')
	if t.forward {
		d = 'f'
	}
	return fmt.Sprintf("%c/%020d", d, t.seq)
}

func parseStreamToken(s string) (streamToken, error) {
	bad := fmt.Errorf("%w: The specified nextToken is invalid.", errdefs.ErrInvalid)
	if len(s) < 3 || s[1] != '/' || (s[0] != 'f' && s[0] != 'b') {
		return streamToken{}, bad
	}
	n, err := strconv.ParseUint(s[2:], 10, 64)
	if err != nil {
		return streamToken{}, bad
	}
	return streamToken{forward: s[0] == 'f', seq: n}, nil
}

const cursorVersion = "v1"

// encodeCursor makes an opaque pagination token of parts (which must not
// contain NUL).
func encodeCursor(parts ...string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(cursorVersion + "\x00" + strings.Join(parts, "\x00")))
}

// decodeCursor reverses encodeCursor, checking the version and that there
// are n parts.
func decodeCursor(tok string, n int) ([]string, error) {
	bad := fmt.Errorf("%w: The specified nextToken is invalid.", errdefs.ErrInvalid)
	if len(tok) > 4096 {
		return nil, bad
	}
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return nil, bad
	}
	parts := strings.Split(string(raw), "\x00")
	if len(parts) != n+1 || parts[0] != cursorVersion {
		return nil, bad
	}
	return parts[1:], nil
}

// filterCursor is FilterLogEvents' position: after the event (ts, seq).
type filterCursor struct {
	ts  int64
	seq uint64
}

func (c filterCursor) String() string {
	return encodeCursor(strconv.FormatInt(c.ts, 10), strconv.FormatUint(c.seq, 10))
}

func parseFilterCursor(s string) (filterCursor, error) {
	p, err := decodeCursor(s, 2)
	if err != nil {
		return filterCursor{}, err
	}
	ts, err1 := strconv.ParseInt(p[0], 10, 64)
	seq, err2 := strconv.ParseUint(p[1], 10, 64)
	if err1 != nil || err2 != nil {
		return filterCursor{}, fmt.Errorf("%w: The specified nextToken is invalid.", errdefs.ErrInvalid)
	}
	return filterCursor{ts, seq}, nil
}

// after reports whether (ts, seq) comes after c.
func (c filterCursor) after(ts int64, seq uint64) bool {
	return ts > c.ts || (ts == c.ts && seq > c.seq)
}
