package config

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"kindling/internal/errdefs"
	"kindling/internal/uuid"
)

// Bucket is the JetStream KV bucket holding function configurations.
const Bucket = "kindling-functions"

// recordVersion is the version of the stored record format (see record).
const recordVersion = 1

// maxUpdateAttempts bounds the compare-and-swap retries of one Update.
const maxUpdateAttempts = 32

// record is the stored value of a key: a self-describing envelope around
// the Function, so that the format can change without guessing.
//
//	{"v":1,"fn":{...Function...}}
type record struct {
	V  int       `json:"v"`
	Fn *Function `json:"fn"`
}

// Store is the config service's function table on JetStream KV. It is safe
// for concurrent use. Every method but Lookup is one or a few KV operations;
// Lookup reads an in-memory copy kept by a background watch (cache.go).
// Several Stores (in several processes) may share a bucket: writes are
// compare-and-swap on the KV revision.
type Store struct {
	kv     jetstream.KeyValue
	region string
	now    func() time.Time
	cache  *cache
}

// Options tune Open.
type Options struct {
	// Replicas is the bucket's replica count (1 on a single node, 3 in a
	// cluster). 0 means 1.
	Replicas int
	// Region is the region named in error messages' ARNs (the server's
	// region); "" means us-east-1.
	Region string
}

// Open opens (creating if needed) the function bucket on js.
func Open(ctx context.Context, js jetstream.JetStream) (*Store, error) {
	return OpenWith(ctx, js, Options{})
}

// OpenWith is Open with options.
func OpenWith(ctx context.Context, js jetstream.JetStream, o Options) (*Store, error) {
	replicas := o.Replicas
	if replicas <= 0 {
		replicas = 1
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      Bucket,
		Description: "Kindling function configurations",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("config: open bucket %s: %w", Bucket, err)
	}
	region := o.Region
	if region == "" {
		region = "us-east-1"
	}
	return &Store{kv: kv, region: region, now: time.Now, cache: newCache()}, nil
}

// Key layout. KV keys allow [-/_=.a-zA-Z0-9] with '.' separating tokens,
// so "$LATEST" is spelled "LATEST". Everything of one function lives under
// fn.<account>.<name>., so that one watch (the cache's) sees it all and one
// listing finds it for deletion:
//
//	fn.<account>.<name>.LATEST       the $LATEST configuration (record)
//	fn.<account>.<name>.v.<N>        published version N (record)
//	fn.<account>.<name>.a.<alias>    an alias (aliasRecord, aliases.go)
const (
	keyPrefix = "fn."
	keyLatest = ".LATEST"
)

func key(account, name string) string {
	return keyPrefix + account + "." + name + keyLatest
}

// validAccount reports whether account is a 12-digit account id.
func validAccount(account string) bool {
	if len(account) != 12 {
		return false
	}
	for i := 0; i < len(account); i++ {
		if account[i] < '0' || account[i] > '9' {
			return false
		}
	}
	return true
}

// notFound is Lambda's error for a missing function.
func (s *Store) notFound(account, name string) error {
	return fmt.Errorf("%w: Function not found: arn:aws:lambda:%s:%s:function:%s", errdefs.ErrNotFound, s.region, account, name)
}

// Create stores f as a new function ($LATEST). It sets RevisionID and, when
// zero, LastModified. A function of that name already existing in the
// account is errdefs.ErrConflict ("Function already exist: NAME").
func (s *Store) Create(ctx context.Context, f *Function) error {
	if !validAccount(f.Account) || !ValidName(f.Name) {
		return fmt.Errorf("%w: config: bad function identity %q/%q", errdefs.ErrInvalid, f.Account, f.Name)
	}
	if f.Version == "" {
		f.Version = LatestVersion
	}
	if f.Version != LatestVersion {
		return fmt.Errorf("%w: config: Create stores $LATEST only, not %q", errdefs.ErrInvalid, f.Version)
	}
	f.RevisionID = newRevisionID()
	f.ContentRevision = newRevisionID()
	f.LastVersion = 0
	if f.LastModified.IsZero() {
		f.LastModified = s.now().UTC()
	}
	data, err := encode(f)
	if err != nil {
		return err
	}
	rev, err := s.kv.Create(ctx, key(f.Account, f.Name), data)
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyExists) {
			return fmt.Errorf("%w: Function already exist: %s", errdefs.ErrConflict, f.Name)
		}
		return fmt.Errorf("config: create %s: %w", f.Name, err)
	}
	s.cache.put(key(f.Account, f.Name), cacheEntry{fn: f.Clone(), rev: rev})
	return nil
}

// Get returns the $LATEST configuration of the named function, or
// errdefs.ErrNotFound. The result is the caller's to keep and modify.
func (s *Store) Get(ctx context.Context, account, name string) (*Function, error) {
	f, _, err := s.get(ctx, account, name)
	return f, err
}

func (s *Store) get(ctx context.Context, account, name string) (*Function, uint64, error) {
	if !validAccount(account) || !ValidName(name) {
		return nil, 0, s.notFound(account, name)
	}
	e, err := s.kv.Get(ctx, key(account, name))
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
			return nil, 0, s.notFound(account, name)
		}
		return nil, 0, fmt.Errorf("config: get %s: %w", name, err)
	}
	f, err := decode(e.Value())
	if err != nil {
		return nil, 0, fmt.Errorf("config: get %s: %w", name, err)
	}
	return f, e.Revision(), nil
}

// Update applies mutate to the current configuration and stores the result
// with a compare-and-swap on the KV revision, retrying from a fresh read
// when another writer got there first (mutate may therefore run more than
// once; it must only change the Function it is given). An error from mutate
// aborts the update and is returned as is. The stored function gets a new
// RevisionID and LastModified; Account, Name and Version cannot change.
func (s *Store) Update(ctx context.Context, account, name string, mutate func(*Function) error) (*Function, error) {
	return s.update(ctx, account, name, true, mutate)
}

// Transition runs ev through the state machine (see states.go) on the
// stored function, like Update but keeping LastModified, which Lambda
// changes only for code and configuration updates.
func (s *Store) Transition(ctx context.Context, account, name string, ev Event) (*Function, error) {
	return s.update(ctx, account, name, false, func(f *Function) error { return f.Apply(ev) })
}

func (s *Store) update(ctx context.Context, account, name string, touch bool, mutate func(*Function) error) (*Function, error) {
	for range maxUpdateAttempts {
		cur, rev, err := s.get(ctx, account, name)
		if err != nil {
			return nil, err
		}
		f := cur.Clone()
		if err := mutate(f); err != nil {
			return nil, err
		}
		f.Account, f.Name, f.Version, f.Region = cur.Account, cur.Name, cur.Version, cur.Region
		f.RevisionID = newRevisionID()
		f.LastVersion = cur.LastVersion
		if touch {
			f.LastModified = s.now().UTC()
			f.ContentRevision = newRevisionID()
		}
		data, err := encode(f)
		if err != nil {
			return nil, err
		}
		newRev, err := s.kv.Update(ctx, key(account, name), data, rev)
		if err == nil {
			s.cache.put(key(account, name), cacheEntry{fn: f.Clone(), rev: newRev})
			return f, nil
		}
		if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) && !errors.Is(err, jetstream.ErrKeyExists) {
			return nil, fmt.Errorf("config: update %s: %w", name, err)
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	return nil, fmt.Errorf("%w: config: update %s: too many concurrent writers", errdefs.ErrUnavailable, name)
}

// Delete removes the function (from any state) with all its published
// versions and aliases. A missing function is errdefs.ErrNotFound. The
// Lookup cache drops them.
//
// $LATEST goes first, so that from then on the function is not found and
// no new version or alias can be added; the versions and aliases are swept
// after it (see sweep).
func (s *Store) Delete(ctx context.Context, account, name string) error {
	for range maxUpdateAttempts {
		_, rev, err := s.get(ctx, account, name)
		if err != nil {
			return err
		}
		err = s.kv.Purge(ctx, key(account, name), jetstream.LastRevision(rev))
		if err == nil {
			// The purge's own revision is unknown but above rev; any later
			// write is above it.
			s.cache.put(key(account, name), cacheEntry{rev: rev + 1})
			return s.sweep(ctx, account, name)
		}
		if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) && !errors.Is(err, jetstream.ErrKeyExists) {
			return fmt.Errorf("config: delete %s: %w", name, err)
		}
	}
	return fmt.Errorf("%w: config: delete %s: too many concurrent writers", errdefs.ErrUnavailable, name)
}

// List returns up to max functions of the account, sorted by name, starting
// after marker (a name returned as nextMarker by the previous call, "" for
// the first page). nextMarker is "" on the last page.
//
// It lists the account's keys and reads the page's records: O(functions in
// the account) per call, fine for thousands.
func (s *Store) List(ctx context.Context, account, marker string, max int) ([]*Function, string, error) {
	if max <= 0 {
		max = 50
	}
	if !validAccount(account) {
		return nil, "", nil
	}
	prefix := keyPrefix + account + "."
	lister, err := s.kv.ListKeysFiltered(ctx, prefix+"*"+keyLatest)
	if err != nil {
		return nil, "", fmt.Errorf("config: list: %w", err)
	}
	var names []string
	for k := range lister.Keys() {
		names = append(names, strings.TrimSuffix(strings.TrimPrefix(k, prefix), keyLatest))
	}
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	slices.Sort(names)
	names = slices.Compact(names)
	start, _ := slices.BinarySearch(names, marker)
	if marker != "" && start < len(names) && names[start] == marker {
		start++
	}
	var out []*Function
	i := start
	for ; i < len(names) && len(out) < max; i++ {
		f, _, err := s.get(ctx, account, names[i])
		if errors.Is(err, errdefs.ErrNotFound) {
			continue // deleted since listed
		}
		if err != nil {
			return nil, "", err
		}
		out = append(out, f)
	}
	next := ""
	if i < len(names) && len(out) > 0 {
		next = out[len(out)-1].Name
	}
	return out, next, nil
}

// Clone returns a deep copy of f.
func (f *Function) Clone() *Function {
	c := *f
	if f.Env != nil {
		c.Env = make(map[string]string, len(f.Env))
		for k, v := range f.Env {
			c.Env[k] = v
		}
	}
	if f.Tags != nil {
		c.Tags = make(map[string]string, len(f.Tags))
		for k, v := range f.Tags {
			c.Tags[k] = v
		}
	}
	c.Architectures = slices.Clone(f.Architectures)
	if f.ReservedConcurrency != nil {
		n := *f.ReservedConcurrency
		c.ReservedConcurrency = &n
	}
	if f.Provisioned != nil {
		c.Provisioned = make(map[string]ProvisionedConfig, len(f.Provisioned))
		for k, v := range f.Provisioned {
			c.Provisioned[k] = v
		}
	}
	return &c
}

func encode(f *Function) ([]byte, error) {
	data, err := json.Marshal(record{V: recordVersion, Fn: f})
	if err != nil {
		return nil, fmt.Errorf("config: encode: %w", err)
	}
	return data, nil
}

func decode(data []byte) (*Function, error) {
	var r record
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("decode record: %w", err)
	}
	if r.V != recordVersion || r.Fn == nil {
		return nil, fmt.Errorf("decode record: unknown format version %d", r.V)
	}
	return r.Fn, nil
}

// newRevisionID returns a random UUID (version 4), Lambda's RevisionId form.
func newRevisionID() string { return uuid.New() }
