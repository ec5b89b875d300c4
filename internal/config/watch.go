package config

import (
	"strings"

	"github.com/nats-io/nats.go/jetstream"
)

// Change is one write to the function table, as seen by a watcher.
type Change struct {
	// Account, Name and Version identify the function version changed
	// (Version is "$LATEST" until versions exist).
	Account, Name, Version string
	// Function is the new configuration; nil when Deleted.
	Function *Function
	// Deleted is set when the function was deleted.
	Deleted bool
	// Revision is the KV revision of the write; it grows with every write
	// to the bucket.
	Revision uint64
}

// changeOf converts a KV entry into a Change.
func changeOf(e jetstream.KeyValueEntry) (Change, bool) {
	// fn.<account>.<name>.LATEST
	parts := strings.Split(e.Key(), ".")
	if len(parts) != 4 || parts[0] != "fn" || parts[3] != "LATEST" {
		return Change{}, false
	}
	c := Change{Account: parts[1], Name: parts[2], Version: LatestVersion, Revision: e.Revision()}
	switch e.Operation() {
	case jetstream.KeyValueDelete, jetstream.KeyValuePurge:
		c.Deleted = true
		return c, true
	}
	f, err := decode(e.Value())
	if err != nil {
		return Change{}, false
	}
	c.Function = f
	return c, true
}
