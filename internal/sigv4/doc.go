// Package sigv4 verifies AWS Signature Version 4 (AWS4-HMAC-SHA256) on
// incoming HTTP requests, the way the Lambda, CloudWatch Logs and SQS
// endpoints of AWS do, so that unmodified AWS SDKs and the AWS CLI can talk
// to Kindling.
//
// # Trust boundary
//
// Everything in the request is hostile until Verify returns a nil error:
// the Authorization header, the query string, every header, the path and the
// body are written by whoever opened the connection. Verify parses them with
// bounded, allocation-light code that never panics (see the fuzz targets) and
// answers every failure with an *Error that carries the HTTP status, AWS
// error type and message the real service would send.
//
// When Verify succeeds, the following are authenticated as coming from the
// holder of the secret key of the returned Credentials, signed at a time
// within the accepted window:
//
//   - the method, the path exactly as sent on the wire, and the query string;
//   - every header named in SignedHeaders (which must include host; host is
//     taken from r.Host);
//   - the body, unless the client sent X-Amz-Content-Sha256: UNSIGNED-PAYLOAD,
//     in which case the body is NOT covered by the signature (only TLS protects
//     it);
//   - the credential scope: date, region (checked against Verifier.Region
//     when set) and service name.
//
// Verify does not check, and the caller must:
//
//   - the service name it returns (Verify accepts any; the API edge rejects a
//     scope for a service it does not serve on that route);
//   - headers that are not in SignedHeaders: they are still attacker
//     controlled, even on a verified request;
//   - replays: a captured request verifies again until it falls out of the
//     time window (MaxSkew either side of now, or X-Amz-Expires for presigned
//     URLs). There is no nonce in SigV4;
//   - X-Amz-Security-Token: temporary (session) credentials are not
//     supported; the token, if present, is only an ordinary signed header.
//
// # Canonical request
//
// The canonical request is built from the request as it arrived: the path
// comes from r.RequestURI (the raw request target) when it is in origin form,
// else from r.URL.EscapedPath(). As for every AWS service but S3, the raw,
// already percent-encoded path is encoded once more (so a ':' sent as %3A is
// signed as %253A); if that does not verify and the path has empty, "." or
// ".." segments, the RFC 3986 normalised path is tried too. Query parameters
// are decoded, re-encoded with the RFC 3986 unreserved set and sorted by
// encoded name, then value. Signed header values are trimmed, runs of spaces
// collapsed, and repeated headers joined with ','. SignedHeaders must be
// lowercase, sorted and without duplicates (every AWS SDK sends it so); this
// also bounds the canonical request to the size of the request itself.
//
// # Concurrency and state
//
// A Verifier is safe for concurrent use and must not be copied after first
// use. Its only state is a cache of derived signing keys (keyed by secret,
// date, region and service; at most maxCachedKeys entries, evicted at random),
// guarded by keyCache.mu, a leaf lock: nothing else is locked while it is
// held and Lookup is never called under it.
package sigv4
