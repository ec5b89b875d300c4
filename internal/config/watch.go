package config

import (
	"strings"

	"github.com/nats-io/nats.go/jetstream"
)

// keyKind is what a KV key of the function table holds (see the key
// layout in store.go).
type keyKind uint8

const (
	kindLatest  keyKind = iota + 1 // fn.<account>.<name>.LATEST
	kindVersion                    // fn.<account>.<name>.v.<N>
	kindAlias                      // fn.<account>.<name>.a.<alias>
)

// parseKey splits a key of the function table; ok is false for keys of
// another layout (written by a newer Kindling), which readers skip.
func parseKey(k string) (kind keyKind, account, name, qual string, ok bool) {
	parts := strings.Split(k, ".")
	switch {
	case len(parts) == 4 && parts[0] == "fn" && parts[3] == "LATEST":
		return kindLatest, parts[1], parts[2], LatestVersion, true
	case len(parts) == 5 && parts[0] == "fn" && parts[3] == "v":
		return kindVersion, parts[1], parts[2], parts[4], true
	case len(parts) == 5 && parts[0] == "fn" && parts[3] == "a":
		return kindAlias, parts[1], parts[2], parts[4], true
	}
	return 0, "", "", "", false
}

// entryOf converts a KV entry seen by the cache's watch into a cache
// entry: a tombstone for a deletion, else the decoded record. ok is false
// for keys and records it does not understand.
func entryOf(e jetstream.KeyValueEntry) (cacheEntry, bool) {
	kind, _, _, _, ok := parseKey(e.Key())
	if !ok {
		return cacheEntry{}, false
	}
	ce := cacheEntry{rev: e.Revision()}
	switch e.Operation() {
	case jetstream.KeyValueDelete, jetstream.KeyValuePurge:
		return ce, true
	}
	var err error
	if kind == kindAlias {
		ce.alias, err = decodeAlias(e.Value())
	} else {
		ce.fn, err = decode(e.Value())
	}
	if err != nil {
		return cacheEntry{}, false
	}
	return ce, true
}
