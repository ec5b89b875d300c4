package sigv4

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
	"time"
)

const (
	algorithm       = "AWS4-HMAC-SHA256"
	terminator      = "aws4_request"
	unsignedPayload = "UNSIGNED-PAYLOAD"
	amzDateLayout   = "20060102T150405Z"
	defaultMaxSkew  = 5 * time.Minute
	// maxPresignExpires is the longest X-Amz-Expires AWS accepts: a week.
	maxPresignExpires = 7 * 24 * 60 * 60
)

// Credentials are what Lookup knows about an access key.
type Credentials struct {
	AccessKeyID, SecretAccessKey, AccountID string
}

// Lookup returns the credentials for an access key id. It is called with
// attacker-chosen ids, possibly from many goroutines at once, and must report
// false for an unknown id. Credentials with an empty SecretAccessKey are
// treated as unknown.
type Lookup func(accessKeyID string) (Credentials, bool)

// Verifier checks SigV4 signatures. The zero value of every field but Lookup
// is usable. A Verifier is safe for concurrent use and must not be copied
// after first use.
type Verifier struct {
	Lookup  Lookup
	Region  string           // expected region in the credential scope; "" = accept any
	Now     func() time.Time // nil = time.Now
	MaxSkew time.Duration    // 0 (or negative) = 5 minutes

	keys keyCache
}

// Error is a verification failure as AWS reports it.
type Error struct {
	Status  int
	Type    string
	Message string
}

func (e *Error) Error() string { return e.Type + ": " + e.Message }

// The AWS error types Verify returns.
const (
	typeMissingToken = "MissingAuthenticationTokenException"
	typeIncomplete   = "IncompleteSignatureException"
	typeInvalid      = "InvalidSignatureException"
	typeUnrecognized = "UnrecognizedClientException"
)

const (
	msgMissingToken = "Missing Authentication Token"
	msgUnrecognized = "The security token included in the request is invalid."
	msgMismatch     = "The request signature we calculated does not match the signature you provided. " +
		"Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
	msgHostUnsigned = "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."
	msgBothAuth     = "Found both 'X-Amz-Algorithm' as a query-string param and 'Authorization' as HTTP header."
	msgWrongRegion  = "Credential should be scoped to a valid region. "
)

func fail(typ, msg string) *Error {
	return &Error{Status: http.StatusForbidden, Type: typ, Message: msg}
}

// maxEcho caps how much of a hostile header is echoed back in a message.
const maxEcho = 512

func echo(s string) string {
	if len(s) > maxEcho {
		return s[:maxEcho] + "..."
	}
	return s
}

// signedRequest is what either form of authentication (header or presigned
// query) claims about the request, before any of it is checked.
type signedRequest struct {
	algorithm     string
	credential    string // keyid/date/region/service/terminator
	signedHeaders string
	signature     string
	date          string // as it goes into the string to sign
	rawDate       string // as the client sent it, for messages
	presigned     bool
	expires       int64 // X-Amz-Expires in seconds; -1 when absent
}

// Verify checks the Authorization header (AWS4-HMAC-SHA256), or failing that
// the presigned query parameters, of r against body, the full request body
// that the caller has already read. It returns the caller's credentials and
// the service name from the credential scope. Every error is an *Error.
//
// Verify reads r and never modifies it.
func (v *Verifier) Verify(r *http.Request, body []byte) (Credentials, string, error) {
	creds, service, err := v.verify(r, body)
	if err != nil {
		return Credentials{}, "", err
	}
	return creds, service, nil
}

// verify makes its checks in the order AWS does, so that a request with
// several faults gets the error AWS would give: the auth parameters are
// present, the date parses and is fresh, host is signed, the algorithm, the
// credential's shape and scope, the access key, and last the signature.
func (v *Verifier) verify(r *http.Request, body []byte) (Credentials, string, *Error) {
	path, rawQuery := requestTarget(r)
	_, presigned := queryValue(rawQuery, "X-Amz-Algorithm")
	authz := r.Header.Get("Authorization")

	var sr signedRequest
	var err *Error
	switch {
	case authz != "" && presigned:
		return Credentials{}, "", fail(typeInvalid, msgBothAuth)
	case authz != "":
		sr, err = fromHeader(r, authz)
	case presigned:
		sr, err = fromQuery(rawQuery)
	default:
		return Credentials{}, "", fail(typeMissingToken, msgMissingToken)
	}
	if err != nil {
		return Credentials{}, "", err
	}
	if err := v.checkTime(sr); err != nil {
		return Credentials{}, "", err
	}
	if !signsHost(sr.signedHeaders) {
		return Credentials{}, "", fail(typeInvalid, msgHostUnsigned)
	}
	if sr.algorithm != algorithm {
		return Credentials{}, "", fail(typeIncomplete, "Unsupported AWS 'algorithm': '"+echo(sr.algorithm)+
			"' (only AWS4-HMAC-SHA256 for now). ")
	}
	scope, ok := parseCredential(sr.credential)
	if !ok {
		return Credentials{}, "", fail(typeIncomplete, "Credential must have exactly 5 slash-delimited elements, "+
			"e.g. keyid/date/region/service/term, got '"+echo(sr.credential)+"'")
	}
	if err := v.checkScope(scope, sr); err != nil {
		return Credentials{}, "", err
	}
	if v.Lookup == nil {
		return Credentials{}, "", fail(typeUnrecognized, msgUnrecognized)
	}
	creds, found := v.Lookup(scope.keyID)
	if !found || creds.SecretAccessKey == "" {
		return Credentials{}, "", fail(typeUnrecognized, msgUnrecognized)
	}

	// Everything below fails with the one mismatch message: a client cannot
	// tell which part of its request we disagreed with, as with AWS.
	var payload [64]byte
	pl, ok := payloadHash(r, body, &payload)
	if !ok || !validSignedHeaders(sr.signedHeaders) {
		return Credentials{}, "", fail(typeInvalid, msgMismatch)
	}
	want, ok := decodeSignature(sr.signature)
	if !ok {
		return Credentials{}, "", fail(typeInvalid, msgMismatch)
	}
	key := v.keys.signingKey(creds.SecretAccessKey, scope.date, scope.region, scope.service)

	sc := getScratch()
	defer putScratch(sc)
	cr := canonicalInput{
		method:        r.Method,
		path:          path,
		rawQuery:      rawQuery,
		presigned:     sr.presigned,
		signedHeaders: sr.signedHeaders,
		payload:       pl,
	}
	sig := sc.signature(&key, sr.date, sr.credential[len(scope.keyID)+1:], r, body, &cr)
	if subtle.ConstantTimeCompare(sig[:], want[:]) == 1 {
		return creds, scope.service, nil
	}
	// Clients that normalise the path (botocore, the AWS docs) sign
	// "/a/./b" as "/a/b"; the Go SDK signs it as sent. Accept either.
	if hasDotOrEmptySegment(path) {
		cr.path = normalizePath(path)
		sig = sc.signature(&key, sr.date, sr.credential[len(scope.keyID)+1:], r, body, &cr)
		if subtle.ConstantTimeCompare(sig[:], want[:]) == 1 {
			return creds, scope.service, nil
		}
	}
	return Credentials{}, "", fail(typeInvalid, msgMismatch)
}

// fromHeader reads the claims of an Authorization header.
func fromHeader(r *http.Request, authz string) (signedRequest, *Error) {
	a, err := parseAuthorization(authz)
	if err != nil {
		return signedRequest{}, err
	}
	sr := signedRequest{
		algorithm:     a.algorithm,
		credential:    a.credential,
		signedHeaders: a.signedHeaders,
		signature:     a.signature,
		expires:       -1,
	}
	dateHeader := false
	sr.rawDate = r.Header.Get("X-Amz-Date")
	if sr.rawDate == "" {
		sr.rawDate = r.Header.Get("Date")
		dateHeader = true
	}

	var msg string
	if a.credential == "" {
		msg += "Authorization header requires 'Credential' parameter. "
	}
	if a.signature == "" {
		msg += "Authorization header requires 'Signature' parameter. "
	}
	if !a.hasSignedHeaders {
		msg += "Authorization header requires 'SignedHeaders' parameter. "
	}
	if sr.rawDate == "" {
		msg += "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. "
	}
	if msg != "" {
		return signedRequest{}, fail(typeIncomplete, msg+"Authorization="+echo(authz))
	}

	if _, ok := parseAmzDate(sr.rawDate); ok {
		sr.date = sr.rawDate
	} else if t, err := http.ParseTime(sr.rawDate); dateHeader && err == nil {
		sr.date = t.UTC().Format(amzDateLayout)
	} else {
		return signedRequest{}, badDate(sr.rawDate)
	}
	return sr, nil
}

// presignParams are the query parameters a presigned request must carry, in
// the order AWS names them when they are missing.
var presignParams = [...]string{"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature", "X-Amz-SignedHeaders", "X-Amz-Date"}

// fromQuery reads the claims of a presigned URL. Presigned requests are not
// the hot path, so decoding here may allocate.
func fromQuery(rawQuery string) (signedRequest, *Error) {
	var vals [len(presignParams)]string
	var msg string
	for i, name := range presignParams {
		raw, _ := queryValue(rawQuery, name)
		vals[i] = unescapeQuery(raw)
		if vals[i] == "" {
			msg += "AWS query-string parameters must include '" + name + "'. "
		}
	}
	if msg != "" {
		return signedRequest{}, fail(typeIncomplete, msg+"Re-examine the query-string parameters.")
	}
	sr := signedRequest{
		algorithm:     vals[0],
		credential:    vals[1],
		signature:     vals[2],
		signedHeaders: vals[3],
		rawDate:       vals[4],
		presigned:     true,
		expires:       -1,
	}
	if _, ok := parseAmzDate(sr.rawDate); !ok {
		return signedRequest{}, badDate(sr.rawDate)
	}
	sr.date = sr.rawDate
	if raw, ok := queryValue(rawQuery, "X-Amz-Expires"); ok {
		n, err := strconv.ParseInt(unescapeQuery(raw), 10, 64)
		switch {
		case err != nil && !isRangeErr(err):
			return signedRequest{}, fail(typeIncomplete, "X-Amz-Expires should be a number")
		case n < 0:
			return signedRequest{}, fail(typeIncomplete, "X-Amz-Expires must be non-negative")
		case n > maxPresignExpires:
			return signedRequest{}, fail(typeIncomplete,
				"X-Amz-Expires must be less than a week (in seconds) that is 604800")
		}
		sr.expires = n
	}
	return sr, nil
}

func isRangeErr(err error) bool {
	ne, ok := err.(*strconv.NumError)
	return ok && ne.Err == strconv.ErrRange
}

func badDate(got string) *Error {
	return fail(typeIncomplete, "Date must be in ISO-8601 'basic format'. Got '"+echo(got)+
		"'. See http://en.wikipedia.org/wiki/ISO_8601")
}

// parseAmzDate parses an ISO 8601 basic-format UTC timestamp,
// 20060102T150405Z, and nothing else.
func parseAmzDate(s string) (time.Time, bool) {
	if len(s) != len(amzDateLayout) || s[8] != 'T' || s[15] != 'Z' {
		return time.Time{}, false
	}
	t, err := time.Parse(amzDateLayout, s)
	return t, err == nil
}

func (v *Verifier) checkTime(sr signedRequest) *Error {
	signed, ok := parseAmzDate(sr.date)
	if !ok { // fromHeader and fromQuery only return valid dates
		return badDate(sr.rawDate)
	}
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	at := now().UTC()
	skew := v.MaxSkew
	if skew <= 0 {
		skew = defaultMaxSkew
	}
	window := skew
	if sr.expires >= 0 {
		window = time.Duration(sr.expires) * time.Second
	}
	if at.Sub(signed) > window {
		return fail(typeInvalid, "Signature expired: "+sr.date+" is now earlier than "+
			at.Add(-window).Format(amzDateLayout)+" ("+at.Format(amzDateLayout)+" - "+minutes(window)+".)")
	}
	if signed.Sub(at) > skew {
		return fail(typeInvalid, "Signature not yet current: "+sr.date+" is still later than "+
			at.Add(skew).Format(amzDateLayout)+" ("+at.Format(amzDateLayout)+" + "+minutes(skew)+".)")
	}
	return nil
}

// minutes renders a window the way AWS does in its messages: "5 min".
func minutes(d time.Duration) string {
	if d%time.Minute == 0 {
		return strconv.FormatInt(int64(d/time.Minute), 10) + " min"
	}
	return strconv.FormatInt(int64(d/time.Second), 10) + " sec"
}

func (v *Verifier) checkScope(s credentialScope, sr signedRequest) *Error {
	var msg string
	if v.Region != "" && s.region != v.Region {
		msg += msgWrongRegion
	}
	if s.terminator != terminator {
		msg += "Credential should be scoped with a valid terminator: 'aws4_request', not '" + echo(s.terminator) + "'. "
	}
	if day := sr.date[:8]; s.date != day {
		msg += "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '" +
			echo(s.date) + "' != '" + day + "', from '" + sr.date + "'."
	}
	if msg != "" {
		return fail(typeInvalid, msg)
	}
	return nil
}

// payloadHash returns the payload hash that goes into the canonical request:
// UNSIGNED-PAYLOAD when the client says so, else the hex SHA-256 of body,
// written into buf. A client-sent X-Amz-Content-Sha256 that is not the hash
// of body is refused (ok false): the signature covers the header, not the
// bytes, so trusting it would let the body be swapped.
func payloadHash(r *http.Request, body []byte, buf *[64]byte) (hash []byte, ok bool) {
	claimed := r.Header.Get("X-Amz-Content-Sha256")
	if claimed == unsignedPayload {
		return unsignedPayloadBytes, true
	}
	sum := sha256.Sum256(body)
	hex.Encode(buf[:], sum[:])
	if claimed != "" && claimed != string(buf[:]) {
		return nil, false
	}
	return buf[:], true
}

var unsignedPayloadBytes = []byte(unsignedPayload)

// decodeSignature decodes the 64 lowercase hex digits of a signature.
func decodeSignature(s string) (sig [sha256.Size]byte, ok bool) {
	if len(s) != 2*sha256.Size {
		return sig, false
	}
	for i := range sig {
		hi, ok1 := fromLowerHex(s[2*i])
		lo, ok2 := fromLowerHex(s[2*i+1])
		if !ok1 || !ok2 {
			return sig, false
		}
		sig[i] = hi<<4 | lo
	}
	return sig, true
}

func fromLowerHex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// signsHost reports whether host is among the signed headers (any case).
func signsHost(signedHeaders string) bool {
	for rest := signedHeaders; rest != ""; {
		var name string
		name, rest, _ = strings.Cut(rest, ";")
		if strings.EqualFold(name, "host") {
			return true
		}
	}
	return false
}
