package config

import (
	"context"
	"fmt"
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

// Watch streams changes made after the call, in revision order, until ctx
// is done or the NATS connection closes; then the channel is closed. The data plane uses it to retire
// execution environments whose code or configuration changed. A slow
// reader holds up only its own watch. Records that cannot be decoded
// (written by a newer Kindling) are skipped.
func (s *Store) Watch(ctx context.Context) (<-chan Change, error) {
	// UpdatesOnly would start the consumer at whatever is newest when the
	// server creates it, which can be after writes that follow this call;
	// resuming from the revision after the current last one cannot miss them.
	st, err := s.kv.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("config: watch: %w", err)
	}
	opts := []jetstream.WatchOpt{jetstream.IncludeHistory()}
	if bs, ok := st.(*jetstream.KeyValueBucketStatus); ok {
		opts = append(opts, jetstream.ResumeFromRevision(bs.StreamInfo().State.LastSeq+1))
	} else {
		opts = []jetstream.WatchOpt{jetstream.UpdatesOnly()}
	}
	w, err := s.kv.Watch(ctx, keyPrefix+">", opts...)
	if err != nil {
		return nil, fmt.Errorf("config: watch: %w", err)
	}
	out := make(chan Change, 64)
	go func() {
		defer close(out)
		defer w.Stop() //nolint:errcheck // nothing to do about a failed unsubscribe
		for {
			var e jetstream.KeyValueEntry
			var ok bool
			select {
			case <-ctx.Done():
				return
			case e, ok = <-w.Updates():
			}
			if !ok {
				return // the subscription ended (connection closed)
			}
			if e == nil {
				continue // end of initial values (none with UpdatesOnly)
			}
			c, ok := changeOf(e)
			if !ok {
				continue
			}
			select {
			case out <- c:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
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
