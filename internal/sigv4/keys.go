package sigv4

import (
	"crypto/hmac"
	"crypto/sha256"
	"strings"
	"sync"
)

// maxCachedKeys bounds the signing-key cache. A key is valid for one day,
// region and service, so a deployment needs a few per access key in use.
const maxCachedKeys = 1024

// keyID names one derived signing key.
type keyID struct {
	secret, date, region, service string
}

// keyCache caches derived signing keys, so that a request costs three
// SHA-256 passes instead of eleven. The zero value is ready to use.
type keyCache struct {
	mu sync.Mutex // leaf lock; guards m
	// m holds at most maxCachedKeys entries. When full, an entry chosen by
	// map iteration order (effectively at random) makes room.
	m map[keyID][sha256.Size]byte
}

// signingKey returns the SigV4 signing key for secret and the scope,
// deriving and caching it on a miss.
func (c *keyCache) signingKey(secret, date, region, service string) [sha256.Size]byte {
	id := keyID{secret, date, region, service}
	c.mu.Lock()
	k, ok := c.m[id]
	c.mu.Unlock()
	if ok {
		return k
	}
	k = deriveKey(secret, date, region, service)
	// The scope strings point into the request's headers; copy them so the
	// cache does not keep whole requests alive.
	id = keyID{strings.Clone(secret), strings.Clone(date), strings.Clone(region), strings.Clone(service)}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[keyID][sha256.Size]byte)
	}
	if len(c.m) >= maxCachedKeys {
		for old := range c.m {
			delete(c.m, old)
			break
		}
	}
	c.m[id] = k
	return k
}

// len reports the number of cached keys.
func (c *keyCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

// deriveKey computes
//
//	HMAC(HMAC(HMAC(HMAC("AWS4"+secret, date), region), service), "aws4_request")
func deriveKey(secret, date, region, service string) [sha256.Size]byte {
	k := hmacSHA256([]byte("AWS4"+secret), date)
	k = hmacSHA256(k[:], region)
	k = hmacSHA256(k[:], service)
	return hmacSHA256(k[:], terminator)
}

func hmacSHA256(key []byte, msg string) [sha256.Size]byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg)) // a hash.Hash's Write never returns an error
	var out [sha256.Size]byte
	m.Sum(out[:0])
	return out
}
