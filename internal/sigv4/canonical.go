package sigv4

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// canonicalInput is what the canonical request is built from, besides the
// request's headers.
type canonicalInput struct {
	method        string
	path          string // raw path as sent, still percent-encoded
	rawQuery      string // raw query as sent
	presigned     bool   // leave X-Amz-Signature out of the query
	signedHeaders string // validated by validSignedHeaders
	payload       []byte // hex SHA-256 of the body, or UNSIGNED-PAYLOAD
}

// scratch holds the buffers one verification needs, pooled so that the hot
// path does not allocate.
type scratch struct {
	canon []byte      // the canonical request, then the HMAC input
	query []byte      // encoded query names and values, in arrival order
	pairs []queryPair // offsets into query, sorted
}

// queryPair locates one encoded parameter in scratch.query: the name is
// query[k:v], the value query[v:end].
type queryPair struct{ k, v, end int }

// maxPooledBuf keeps buffers grown by an oversized request out of the pool.
const maxPooledBuf = 64 << 10

var scratchPool = sync.Pool{New: func() any {
	return &scratch{canon: make([]byte, 0, 1024), query: make([]byte, 0, 256)}
}}

func getScratch() *scratch { return scratchPool.Get().(*scratch) }

func putScratch(sc *scratch) {
	if cap(sc.canon) > maxPooledBuf || cap(sc.query) > maxPooledBuf || cap(sc.pairs) > maxPooledBuf/16 {
		return
	}
	scratchPool.Put(sc)
}

// signature computes the SigV4 signature of the request described by r and
// in with the derived signing key: HMAC(key, string to sign), where the
// string to sign is
//
//	AWS4-HMAC-SHA256 \n <date> \n <scope> \n hex(SHA-256(canonical request))
//
// The HMAC is done by hand over sc.canon so that it does not allocate; the
// key is 32 bytes, shorter than SHA-256's 64-byte block, so it is used as is.
func (sc *scratch) signature(key *[sha256.Size]byte, date, scope string, r *http.Request, body []byte, in *canonicalInput) [sha256.Size]byte {
	sc.canon = sc.appendCanonicalRequest(sc.canon[:0], r, body, in)
	crHash := sha256.Sum256(sc.canon)

	const blockSize = 64
	b := sc.canon[:0]
	for i := 0; i < blockSize; i++ {
		var k byte
		if i < len(key) {
			k = key[i]
		}
		b = append(b, k^0x36)
	}
	b = append(b, algorithm...)
	b = append(b, '\n')
	b = append(b, date...)
	b = append(b, '\n')
	b = append(b, scope...)
	b = append(b, '\n')
	b = hex.AppendEncode(b, crHash[:])
	sc.canon = b
	inner := sha256.Sum256(b)

	var outer [blockSize + sha256.Size]byte
	for i := 0; i < blockSize; i++ {
		var k byte
		if i < len(key) {
			k = key[i]
		}
		outer[i] = k ^ 0x5c
	}
	copy(outer[blockSize:], inner[:])
	return sha256.Sum256(outer[:])
}

// appendCanonicalRequest appends the canonical request:
//
//	method \n canonical URI \n canonical query \n canonical headers \n signed headers \n payload hash
func (sc *scratch) appendCanonicalRequest(b []byte, r *http.Request, body []byte, in *canonicalInput) []byte {
	method := in.method
	if method == "" {
		method = http.MethodGet
	}
	b = append(b, method...)
	b = append(b, '\n')
	b = appendEscapedPath(b, in.path)
	b = append(b, '\n')
	b = sc.appendCanonicalQuery(b, in.rawQuery, in.presigned)
	b = append(b, '\n')
	b = appendCanonicalHeaders(b, r, in.signedHeaders, len(body))
	b = append(b, '\n')
	b = append(b, in.signedHeaders...)
	b = append(b, '\n')
	return append(b, in.payload...)
}

// requestTarget returns the path and query as the client sent them: from
// r.RequestURI (set by the server to the raw request target) when it is in
// origin form, else from r.URL.
func requestTarget(r *http.Request) (path, rawQuery string) {
	if uri := r.RequestURI; uri != "" && uri[0] == '/' {
		path, rawQuery, _ = strings.Cut(uri, "?")
		return path, rawQuery
	}
	if r.URL == nil {
		return "/", ""
	}
	path = r.URL.EscapedPath()
	if path == "" {
		path = "/"
	}
	return path, r.URL.RawQuery
}

const upperHex = "0123456789ABCDEF"

// unreserved reports whether c is in RFC 3986's unreserved set, the only
// bytes SigV4 leaves unencoded.
func unreserved(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

func appendEncodedByte(b []byte, c byte) []byte {
	if unreserved(c) {
		return append(b, c)
	}
	return append(b, '%', upperHex[c>>4], upperHex[c&15])
}

// appendEscapedPath appends the canonical URI of a raw path: every byte but
// '/' and the unreserved set is percent-encoded, including the '%' of the
// client's own escapes. This is the double encoding all services but S3 use.
func appendEscapedPath(b []byte, path string) []byte {
	for i := 0; i < len(path); i++ {
		if c := path[i]; c == '/' {
			b = append(b, c)
		} else {
			b = appendEncodedByte(b, c)
		}
	}
	return b
}

// normalizePath removes empty, "." and ".." segments from a raw path
// (RFC 3986 section 5.2.4, with empty segments dropped as AWS does), keeping
// a trailing slash. Only used after a mismatch, so it may allocate.
func normalizePath(p string) string {
	trailing := strings.HasSuffix(p, "/") || strings.HasSuffix(p, "/.") || strings.HasSuffix(p, "/..")
	var out []string
	for seg := range strings.SplitSeq(p, "/") {
		switch seg {
		case "", ".":
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
		default:
			out = append(out, seg)
		}
	}
	n := "/" + strings.Join(out, "/")
	if trailing && len(out) > 0 {
		n += "/"
	}
	return n
}

// hasDotOrEmptySegment reports whether normalizePath would change p.
func hasDotOrEmptySegment(p string) bool {
	return p == "" || p[0] != '/' || strings.Contains(p, "//") || strings.Contains(p, "/./") ||
		strings.Contains(p, "/../") || strings.HasSuffix(p, "/.") || strings.HasSuffix(p, "/..")
}

// appendQueryComponent decodes one raw query name or value ('+' is a space,
// %XX a byte; a malformed escape is kept as literal text) and appends it
// re-encoded with the unreserved set, upper-case hex.
func appendQueryComponent(b []byte, raw string) []byte {
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch {
		case c == '+':
			c = ' '
		case c == '%' && i+2 < len(raw) && isHex(raw[i+1]) && isHex(raw[i+2]):
			c = unhex(raw[i+1])<<4 | unhex(raw[i+2])
			i += 2
		}
		b = appendEncodedByte(b, c)
	}
	return b
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

// appendCanonicalQuery appends the canonical query string: every parameter
// re-encoded, sorted by encoded name then encoded value, as name=value joined
// by '&'. For a presigned request X-Amz-Signature is left out.
func (sc *scratch) appendCanonicalQuery(b []byte, rawQuery string, presigned bool) []byte {
	if rawQuery == "" {
		return b
	}
	q, pairs := sc.query[:0], sc.pairs[:0]
	for rest := rawQuery; rest != ""; {
		var seg string
		seg, rest, _ = strings.Cut(rest, "&")
		if seg == "" {
			continue
		}
		name, value, _ := strings.Cut(seg, "=")
		if presigned && name == "X-Amz-Signature" {
			continue
		}
		p := queryPair{k: len(q)}
		q = appendQueryComponent(q, name)
		p.v = len(q)
		q = appendQueryComponent(q, value)
		p.end = len(q)
		pairs = append(pairs, p)
	}
	slices.SortFunc(pairs, func(x, y queryPair) int {
		if c := bytes.Compare(q[x.k:x.v], q[y.k:y.v]); c != 0 {
			return c
		}
		return bytes.Compare(q[x.v:x.end], q[y.v:y.end])
	})
	for i, p := range pairs {
		if i > 0 {
			b = append(b, '&')
		}
		b = append(b, q[p.k:p.v]...)
		b = append(b, '=')
		b = append(b, q[p.v:p.end]...)
	}
	sc.query, sc.pairs = q, pairs
	return b
}

// validSignedHeaders reports whether SignedHeaders is a non-empty list of
// lowercase header names, strictly increasing. Every SDK sends it so, and
// it means no header value is written into the canonical request twice.
func validSignedHeaders(s string) bool {
	prev := ""
	for rest := s; ; {
		var name string
		var more bool
		name, rest, more = strings.Cut(rest, ";")
		if name == "" || name <= prev {
			return false
		}
		for i := 0; i < len(name); i++ {
			if c := name[i]; !isTokenByte(c) || 'A' <= c && c <= 'Z' {
				return false
			}
		}
		prev = name
		if !more {
			return true
		}
	}
}

// isTokenByte reports whether c may appear in an HTTP header name (RFC 9110
// tchar).
func isTokenByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// appendCanonicalHeaders appends "name:value\n" for each signed header, in
// the order of signedHeaders. host comes from r.Host (net/http moves it out
// of r.Header); content-length, when absent from r.Header (a chunked body),
// is the length of the body read.
func appendCanonicalHeaders(b []byte, r *http.Request, signedHeaders string, bodyLen int) []byte {
	for rest := signedHeaders; rest != ""; {
		var name string
		name, rest, _ = strings.Cut(rest, ";")
		b = append(b, name...)
		b = append(b, ':')
		if name == "host" {
			b = appendHeaderValue(b, r.Host)
		} else if vals := headerValues(r.Header, name); len(vals) == 0 && name == "content-length" {
			b = strconv.AppendInt(b, int64(bodyLen), 10)
		} else {
			for i, v := range vals {
				if i > 0 {
					b = append(b, ',')
				}
				b = appendHeaderValue(b, v)
			}
		}
		b = append(b, '\n')
	}
	return b
}

// headerValues returns h's values for a lowercase header name, assuming h's
// keys are in canonical form as net/http's server leaves them. The canonical
// key is built on the stack; the map lookup with string(bytes) does not
// allocate.
func headerValues(h http.Header, lower string) []string {
	var buf [64]byte
	if len(lower) > len(buf) {
		return h[textproto.CanonicalMIMEHeaderKey(lower)]
	}
	key := buf[:len(lower)]
	upper := true
	for i := 0; i < len(lower); i++ {
		c := lower[i]
		if upper && 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		key[i] = c
		upper = c == '-'
	}
	return h[string(key)]
}

// appendHeaderValue appends v with leading and trailing spaces and tabs
// trimmed and each run of spaces collapsed to one.
func appendHeaderValue(b []byte, v string) []byte {
	v = strings.Trim(v, " \t")
	space := false
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == ' ' {
			if space {
				continue
			}
			space = true
		} else {
			space = false
		}
		b = append(b, c)
	}
	return b
}
