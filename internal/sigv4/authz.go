package sigv4

import (
	"net/url"
	"strings"
)

// authorization is the parsed form of an Authorization header:
//
//	AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/lambda/aws4_request, SignedHeaders=host;x-amz-date, Signature=<64 hex>
//
// Fields are substrings of the header; nothing in it is trusted yet.
type authorization struct {
	algorithm        string
	credential       string
	signedHeaders    string
	signature        string
	hasSignedHeaders bool // SignedHeaders= was present, possibly empty
}

// parseAuthorization splits an Authorization header into its algorithm and
// its key=value parameters. Like AWS, it separates parameters by commas and
// spaces, ignores unknown keys, and lets a repeated key's last value win. The
// only error is a parameter without '='; missing parameters are left empty
// for the caller, which knows what else (the date) is missing too.
func parseAuthorization(h string) (authorization, *Error) {
	var a authorization
	alg, rest, _ := strings.Cut(h, " ")
	a.algorithm = alg
	for rest != "" {
		var tok string
		if i := strings.IndexAny(rest, ", "); i >= 0 {
			tok, rest = rest[:i], rest[i+1:]
		} else {
			tok, rest = rest, ""
		}
		if tok == "" {
			continue
		}
		k, v, ok := strings.Cut(tok, "=")
		if !ok {
			return authorization{}, fail(typeIncomplete, "'"+echo(tok)+
				"' not a valid key=value pair (missing equal-sign) in Authorization header: '"+echo(h)+"'.")
		}
		switch k {
		case "Credential":
			a.credential = v
		case "SignedHeaders":
			a.signedHeaders, a.hasSignedHeaders = v, true
		case "Signature":
			a.signature = v
		}
	}
	return a, nil
}

// credentialScope is keyid/date/region/service/terminator, split.
type credentialScope struct {
	keyID, date, region, service, terminator string
}

// parseCredential splits a credential into its five slash-separated parts.
func parseCredential(c string) (credentialScope, bool) {
	if strings.Count(c, "/") != 4 {
		return credentialScope{}, false
	}
	var s credentialScope
	s.keyID, c, _ = strings.Cut(c, "/")
	s.date, c, _ = strings.Cut(c, "/")
	s.region, c, _ = strings.Cut(c, "/")
	s.service, s.terminator, _ = strings.Cut(c, "/")
	return s, true
}

// queryValue returns the raw (still encoded) value of the first parameter
// named name in rawQuery. Names are compared as sent, without decoding, which
// is also how the canonical query leaves out X-Amz-Signature: the two agree.
func queryValue(rawQuery, name string) (string, bool) {
	for rest := rawQuery; rest != ""; {
		var seg string
		seg, rest, _ = strings.Cut(rest, "&")
		if k, v, _ := strings.Cut(seg, "="); k == name {
			return v, true
		}
	}
	return "", false
}

// unescapeQuery decodes a query component, or returns it as sent when it is
// not valid percent-encoding (the signature check then fails on it).
func unescapeQuery(s string) string {
	if !strings.ContainsAny(s, "%+") {
		return s
	}
	u, err := url.QueryUnescape(s)
	if err != nil {
		return s
	}
	return u
}
