package config

import (
	"context"
	"sync"

	"github.com/nats-io/nats.go/jetstream"
)

// cache is an in-memory copy of the whole function table ($LATEST, published
// versions and aliases) for the invoke path, so that a warm invoke does not
// pay a KV round trip (tens of microseconds) to read its configuration.
//
// It is filled by one watch on the bucket (initial values, then every
// change) and by the Store's own successful writes, so that a process
// reads its own writes at once and other processes' writes as soon as the
// watch delivers them (milliseconds; Lambda too is eventually consistent
// here). Every entry carries the KV revision it reflects and is only ever
// replaced by a higher one, so the two sources cannot regress it. Until the
// watch has delivered the initial values, and after it ends, lookups fall
// back to Store.Get.
//
// Lock order: mu is a leaf lock; nothing is called while it is held.
type cache struct {
	mu      sync.RWMutex
	entries map[string]cacheEntry // guarded by mu; by KV key
	loaded  bool                  // guarded by mu; initial values received and watch live
	running bool                  // guarded by mu; a watch goroutine exists
	cancel  context.CancelFunc    // guarded by mu; stops the watch
}

// cacheEntry is the value of one key: a function configuration ($LATEST or
// a version), an alias, or a tombstone (both nil) left by a deletion.
type cacheEntry struct {
	fn    *Function
	alias *Alias
	rev   uint64
}

func newCache() *cache {
	return &cache{entries: make(map[string]cacheEntry)}
}

// lookup returns the cached entry of a KV key (the zero entry when there is
// none); ok is false when the cache cannot answer (not loaded) and the
// caller must read the KV.
func (c *cache) lookup(key string) (e cacheEntry, ok bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if !c.loaded {
		return cacheEntry{}, false
	}
	return c.entries[key], true
}

// put records e as the value of key at revision e.rev, unless the entry
// is already newer.
func (c *cache) put(key string, e cacheEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cur, ok := c.entries[key]; ok && cur.rev >= e.rev {
		return
	}
	c.entries[key] = e
}

// start starts the watch if none is running. It returns at once; the cache
// answers once the initial values are in.
func (c *cache) start(kv jetstream.KeyValue) {
	c.mu.Lock()
	if c.running {
		c.mu.Unlock()
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	w, err := kv.Watch(ctx, keyPrefix+">")
	if err != nil {
		c.mu.Unlock()
		cancel()
		return // lookups fall back to the KV and retry the watch
	}
	c.running, c.cancel = true, cancel
	c.mu.Unlock()
	go c.run(w, cancel)
}

// run applies the watch's entries until it ends.
func (c *cache) run(w jetstream.KeyWatcher, cancel context.CancelFunc) {
	defer func() {
		c.mu.Lock()
		c.loaded, c.running = false, false
		c.mu.Unlock()
		cancel()
		w.Stop() //nolint:errcheck // the watch is over either way
	}()
	for e := range w.Updates() {
		if e == nil {
			c.mu.Lock()
			c.loaded = true
			c.mu.Unlock()
			continue
		}
		if ce, ok := entryOf(e); ok {
			c.put(e.Key(), ce)
		}
	}
}

// stop ends the watch.
func (c *cache) stop() {
	c.mu.Lock()
	cancel := c.cancel
	c.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}

// Lookup returns the $LATEST configuration of the named function for the
// invoke path, from the in-memory copy of the table when it is loaded (see
// cache), else from the KV like Get. The first call starts the copy.
//
// The result is shared with other callers and must not be modified; it
// reflects this process's own writes at once and other processes' within
// milliseconds.
func (s *Store) Lookup(ctx context.Context, account, name string) (*Function, error) {
	if e, ok := s.cache.lookup(key(account, name)); ok {
		if e.fn == nil {
			return nil, s.notFound(account, name)
		}
		return e.fn, nil
	}
	s.cache.start(s.kv)
	return s.Get(ctx, account, name)
}

// Close stops the Store's background watch, if Lookup started one. The
// Store stays usable; Lookup then reads the KV (and restarts the watch).
func (s *Store) Close() {
	s.cache.stop()
}
