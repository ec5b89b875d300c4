package config

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"kindling/internal/errdefs"
)

// Published versions.
//
// A version is an immutable copy of $LATEST's code and configuration, in
// its own record (the same record format as $LATEST) under
// fn.<account>.<name>.v.<N>, with Version "N", its own RevisionID, and the
// ContentRevision of the $LATEST it was copied from. Its code and
// configuration never change; its state fields may (a later SnapStart
// version is created Pending and made Active or Failed by its preparation,
// with a compare-and-swap on its own key, like $LATEST's transitions).
//
// Numbers are allocated by a compare-and-swap on $LATEST, whose
// LastVersion is the last number handed out, so they grow by one per
// publish and are never reused, even after a deletion:
//
//	read $LATEST (KV revision r)          preconditions checked on it
//	version LastVersion has the same ContentRevision -> return it (no change)
//	CAS $LATEST@r: LastVersion+1, new RevisionID    (lost race: start again)
//	create v.<LastVersion+1>                        (key exists: start again)
//
// A crash between the two writes loses a number, never a version. Two
// concurrent publishes of an unchanged $LATEST can both create a version
// when the second reads $LATEST between the first's two writes.

// maxVersion bounds version numbers (Lambda's are 64-bit; this keeps them
// exact in JSON and well inside int).
const maxVersion = 1<<53 - 1

// ParseVersion parses a version qualifier: a decimal number from 1 without
// leading zeros. ok is false for anything else ("$LATEST", aliases, "01").
func ParseVersion(q string) (n int, ok bool) {
	if q == "" || len(q) > 16 || q[0] == '0' {
		return 0, false
	}
	for i := 0; i < len(q); i++ {
		if q[i] < '0' || q[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.Atoi(q)
	if err != nil || n > maxVersion {
		return 0, false
	}
	return n, true
}

// IsVersionQualifier reports whether q has the form of a version number
// ([0-9]+, Lambda's pattern), as opposed to "$LATEST" or an alias name.
func IsVersionQualifier(q string) bool {
	if q == "" {
		return false
	}
	for i := 0; i < len(q); i++ {
		if q[i] < '0' || q[i] > '9' {
			return false
		}
	}
	return true
}

func fnPrefix(account, name string) string {
	return keyPrefix + account + "." + name + "."
}

func versionKey(account, name string, n int) string {
	return fnPrefix(account, name) + "v." + strconv.Itoa(n)
}

// qualifiedNotFound is Lambda's error for a missing version or alias (or
// function, when a qualifier was given).
func (s *Store) qualifiedNotFound(account, name, qualifier string) error {
	return fmt.Errorf("%w: Function not found: arn:aws:lambda:%s:%s:function:%s:%s",
		errdefs.ErrNotFound, s.region, account, name, qualifier)
}

// PublishOptions tune Publish.
type PublishOptions struct {
	// Check, when set, runs on the current $LATEST before anything is
	// written (PublishVersion's CodeSha256 and RevisionId preconditions);
	// its error is returned as is.
	Check func(latest *Function) error
	// Description, when set, is the version's description instead of
	// $LATEST's.
	Description *string
	// SnapStart tells that this server's sandboxes can be snapshotted. A
	// version published from a $LATEST with SnapStartApplyOn
	// PublishedVersions then gets SnapStartOn and is created Pending, for
	// the snapshot maker to make Active or Failed (UpdateVersion);
	// without it the version has SnapStartOn false and is Active at once.
	SnapStart bool
}

// SnapStartPublishedVersions is the SnapStart.ApplyOn value that turns
// SnapStart on for published versions (Function.SnapStartApplyOn).
const SnapStartPublishedVersions = "PublishedVersions"

// Publish publishes $LATEST of the named function as a new version and
// returns it, with created set. When neither code nor configuration
// changed since the last version was published, it returns that version
// instead (created false), as Lambda does. A missing function is
// errdefs.ErrNotFound. Publishing gives $LATEST a new RevisionID (Lambda
// does too) but leaves its LastModified.
func (s *Store) Publish(ctx context.Context, account, name string, o PublishOptions) (v *Function, created bool, err error) {
	for range maxUpdateAttempts {
		latest, rev, err := s.get(ctx, account, name)
		if err != nil {
			return nil, false, err
		}
		if o.Check != nil {
			if err := o.Check(latest); err != nil {
				return nil, false, err
			}
		}
		if latest.LastVersion > 0 && latest.ContentRevision != "" {
			prev, _, err := s.getVersion(ctx, account, name, latest.LastVersion)
			switch {
			case err == nil && prev.ContentRevision == latest.ContentRevision:
				return prev, false, nil
			case err != nil && !errors.Is(err, errdefs.ErrNotFound):
				return nil, false, err
			}
		}
		if latest.LastVersion >= maxVersion {
			return nil, false, fmt.Errorf("%w: config: %s has run out of version numbers", errdefs.ErrConflict, name)
		}
		n := latest.LastVersion + 1

		next := latest.Clone()
		next.LastVersion = n
		next.RevisionID = newRevisionID()
		if next.ContentRevision == "" { // a record written before versions existed
			next.ContentRevision = newRevisionID()
		}
		data, err := encode(next)
		if err != nil {
			return nil, false, err
		}
		newRev, err := s.kv.Update(ctx, key(account, name), data, rev)
		if err != nil {
			if isCASMiss(err) {
				continue
			}
			return nil, false, fmt.Errorf("config: publish %s: %w", name, err)
		}
		s.cache.put(key(account, name), cacheEntry{fn: next.Clone(), rev: newRev})

		v = newVersion(next, n, s.now(), o.SnapStart && next.SnapStartApplyOn == SnapStartPublishedVersions)
		if o.Description != nil {
			v.Description = *o.Description
		}
		data, err = encode(v)
		if err != nil {
			return nil, false, err
		}
		vrev, err := s.kv.Create(ctx, versionKey(account, name, n), data)
		if err != nil {
			if errors.Is(err, jetstream.ErrKeyExists) {
				// Left by a deletion racing with a publish of an earlier
				// incarnation of the function: take the next number.
				continue
			}
			return nil, false, fmt.Errorf("config: publish %s: %w", name, err)
		}
		s.cache.put(versionKey(account, name, n), cacheEntry{fn: v.Clone(), rev: vrev})
		return v, true, nil
	}
	return nil, false, fmt.Errorf("%w: config: publish %s: too many concurrent writers", errdefs.ErrUnavailable, name)
}

// newVersion makes version n of latest: the same code and configuration,
// its own identity and state, no tags (they belong to the function). It
// is Active at once (there is nothing to prepare), except a SnapStart
// version (snapStart), which stays Pending until its snapshot is made.
func newVersion(latest *Function, n int, now time.Time, snapStart bool) *Function {
	v := latest.Clone()
	v.Version = strconv.Itoa(n)
	v.RevisionID = newRevisionID()
	v.LastVersion = 0
	v.Tags = nil
	v.ReservedConcurrency = nil
	v.Provisioned = nil
	v.LastModified = now.UTC()
	v.SnapStartOn = snapStart
	v.Snapshot = ""
	v.SetStatus(Status{})
	// Errors are impossible from the zero status: Create then Ready.
	if err := v.Apply(Event{Kind: EvCreate}); err == nil && !snapStart {
		v.Apply(Event{Kind: EvReady}) //nolint:errcheck // Pending -> Active always holds
	}
	return v
}

// UpdateVersion applies mutate to the stored record of a published
// version and stores the result with a compare-and-swap on its KV
// revision, retrying from a fresh read when another writer got there
// first (mutate may run more than once and must only change the Function
// it is given). An error from mutate aborts the update and is returned as
// is. It is how a version's state changes (the SnapStart snapshot maker
// sets Snapshot and applies EvReady or EvFail): the record gets a new
// RevisionID but keeps its LastModified, ContentRevision and identity. A
// version that does not exist (any more) is errdefs.ErrNotFound with
// Lambda's message; for "$LATEST" it is Transition's path (no touch).
//
// A caller acting on a version it read earlier can tell a later
// incarnation of the same number (the function deleted and created again)
// by its ContentRevision, which never changes on a version.
func (s *Store) UpdateVersion(ctx context.Context, account, name, version string, mutate func(v *Function) error) (*Function, error) {
	if version == LatestVersion {
		return s.update(ctx, account, name, false, mutate)
	}
	n, ok := ParseVersion(version)
	if !ok {
		return nil, s.qualifiedNotFound(account, name, version)
	}
	k := versionKey(account, name, n)
	for range maxUpdateAttempts {
		cur, rev, err := s.getVersion(ctx, account, name, n)
		if err != nil {
			return nil, err
		}
		v := cur.Clone()
		if err := mutate(v); err != nil {
			return nil, err
		}
		v.Account, v.Name, v.Version, v.Region = cur.Account, cur.Name, cur.Version, cur.Region
		v.ContentRevision, v.LastVersion, v.LastModified = cur.ContentRevision, cur.LastVersion, cur.LastModified
		v.RevisionID = newRevisionID()
		data, err := encode(v)
		if err != nil {
			return nil, err
		}
		newRev, err := s.kv.Update(ctx, k, data, rev)
		if err == nil {
			s.cache.put(k, cacheEntry{fn: v.Clone(), rev: newRev})
			return v, nil
		}
		if !isCASMiss(err) {
			return nil, fmt.Errorf("config: update %s:%s: %w", name, version, err)
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	return nil, fmt.Errorf("%w: config: update %s:%s: too many concurrent writers", errdefs.ErrUnavailable, name, version)
}

// PendingSnapStart returns every published version, in every account,
// that has SnapStartOn and is still Pending: the versions whose snapshot
// is to be made (at server start, those whose making a restart
// interrupted). It scans the version keys of the whole table (one
// listing, one read per version), in key order.
func (s *Store) PendingSnapStart(ctx context.Context) ([]*Function, error) {
	lister, err := s.kv.ListKeysFiltered(ctx, keyPrefix+"*.*.v.*")
	if err != nil {
		if errors.Is(err, jetstream.ErrNoKeysFound) {
			return nil, nil
		}
		return nil, fmt.Errorf("config: list versions: %w", err)
	}
	var keys []string
	for k := range lister.Keys() {
		if kind, _, _, _, ok := parseKey(k); ok && kind == kindVersion {
			keys = append(keys, k)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	slices.Sort(keys)
	keys = slices.Compact(keys)
	var out []*Function
	for _, k := range keys {
		e, err := s.kv.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
			continue // deleted since listed
		}
		if err != nil {
			return nil, fmt.Errorf("config: get %s: %w", k, err)
		}
		f, err := decode(e.Value())
		if err != nil {
			return nil, fmt.Errorf("config: get %s: %w", k, err)
		}
		if f.SnapStartOn && f.State == StatePending {
			out = append(out, f)
		}
	}
	return out, nil
}

func isCASMiss(err error) bool {
	return errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists)
}

// GetVersion returns the named version ("$LATEST" or a number) from the
// KV. A missing function or version is errdefs.ErrNotFound with Lambda's
// message (naming the qualified ARN).
func (s *Store) GetVersion(ctx context.Context, account, name, version string) (*Function, error) {
	if version == LatestVersion {
		f, _, err := s.get(ctx, account, name)
		if errors.Is(err, errdefs.ErrNotFound) {
			return nil, s.qualifiedNotFound(account, name, version)
		}
		return f, err
	}
	n, ok := ParseVersion(version)
	if !ok {
		return nil, s.qualifiedNotFound(account, name, version)
	}
	f, _, err := s.getVersion(ctx, account, name, n)
	return f, err
}

func (s *Store) getVersion(ctx context.Context, account, name string, n int) (*Function, uint64, error) {
	q := strconv.Itoa(n)
	if !validAccount(account) || !ValidName(name) {
		return nil, 0, s.qualifiedNotFound(account, name, q)
	}
	e, err := s.kv.Get(ctx, versionKey(account, name, n))
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
			return nil, 0, s.qualifiedNotFound(account, name, q)
		}
		return nil, 0, fmt.Errorf("config: get %s:%s: %w", name, q, err)
	}
	f, err := decode(e.Value())
	if err != nil {
		return nil, 0, fmt.Errorf("config: get %s:%s: %w", name, q, err)
	}
	return f, e.Revision(), nil
}

// versionNumbers lists the numbers of the function's published versions,
// ascending.
func (s *Store) versionNumbers(ctx context.Context, account, name string) ([]int, error) {
	lister, err := s.kv.ListKeysFiltered(ctx, fnPrefix(account, name)+"v.*")
	if err != nil {
		return nil, fmt.Errorf("config: list versions of %s: %w", name, err)
	}
	var ns []int
	for k := range lister.Keys() {
		kind, _, _, q, ok := parseKey(k)
		if !ok || kind != kindVersion {
			continue
		}
		if n, ok := ParseVersion(q); ok {
			ns = append(ns, n)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	slices.Sort(ns)
	return slices.Compact(ns), nil
}

// ListVersions returns up to max versions of the function, $LATEST first
// and then the published ones in ascending order, starting after marker
// (the Version of the previous page's last item, "" for the first page).
// nextMarker is "" on the last page. A missing function is
// errdefs.ErrNotFound.
func (s *Store) ListVersions(ctx context.Context, account, name, marker string, max int) (out []*Function, nextMarker string, err error) {
	if max <= 0 {
		max = 50
	}
	latest, _, err := s.get(ctx, account, name)
	if err != nil {
		return nil, "", err
	}
	ns, err := s.versionNumbers(ctx, account, name)
	if err != nil {
		return nil, "", err
	}
	start := 0 // index into ns; -1 stands for $LATEST
	switch m, isNum := ParseVersion(marker); {
	case marker == "":
		start = -1
	case marker == LatestVersion:
		start = 0
	case isNum:
		start, _ = slices.BinarySearch(ns, m+1)
	default:
		start = -1 // not a marker this server gave out: from the top
	}
	i := start
	if i == -1 {
		out = append(out, latest)
		i = 0
	}
	for ; i < len(ns) && len(out) < max; i++ {
		v, _, err := s.getVersion(ctx, account, name, ns[i])
		if errors.Is(err, errdefs.ErrNotFound) {
			continue // deleted since listed
		}
		if err != nil {
			return nil, "", err
		}
		out = append(out, v)
	}
	if i < len(ns) && len(out) > 0 {
		nextMarker = out[len(out)-1].Version
	}
	return out, nextMarker, nil
}

// DeleteVersion deletes a published version. Deleting a version that does
// not exist (any more) succeeds, as in Lambda; a missing function is
// errdefs.ErrNotFound; a version an alias routes to is errdefs.ErrConflict
// naming the aliases. The qualifier must be a version number (the
// frontend refuses $LATEST and aliases with Lambda's messages).
func (s *Store) DeleteVersion(ctx context.Context, account, name, version string) error {
	if _, _, err := s.get(ctx, account, name); err != nil {
		return err
	}
	n, ok := ParseVersion(version)
	if !ok {
		return nil // no such version can exist
	}
	aliases, _, err := s.ListAliases(ctx, account, name, "", "", maxListAll)
	if err != nil {
		return err
	}
	var refs []string
	for _, a := range aliases {
		if a.References(version) {
			refs = append(refs, a.Name)
		}
	}
	if len(refs) > 0 {
		return fmt.Errorf("%w: Unable to delete version because the following aliases reference it: [%s]",
			errdefs.ErrConflict, strings.Join(refs, ", "))
	}
	k := versionKey(account, name, n)
	for range maxUpdateAttempts {
		_, rev, err := s.getVersion(ctx, account, name, n)
		if errors.Is(err, errdefs.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		err = s.kv.Purge(ctx, k, jetstream.LastRevision(rev))
		if err == nil {
			s.cache.put(k, cacheEntry{rev: rev + 1})
			return nil
		}
		if !isCASMiss(err) {
			return fmt.Errorf("config: delete %s:%s: %w", name, version, err)
		}
	}
	return fmt.Errorf("%w: config: delete %s:%s: too many concurrent writers", errdefs.ErrUnavailable, name, version)
}

// sweep purges every version and alias of a function whose $LATEST was
// just deleted.
func (s *Store) sweep(ctx context.Context, account, name string) error {
	lister, err := s.kv.ListKeysFiltered(ctx, fnPrefix(account, name)+">")
	if err != nil {
		return fmt.Errorf("config: delete %s: %w", name, err)
	}
	var keys []string
	for k := range lister.Keys() {
		if kind, _, _, _, ok := parseKey(k); ok && kind != kindLatest {
			keys = append(keys, k)
		}
	}
	var errs []error
	for _, k := range keys {
		e, err := s.kv.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
			continue
		}
		if err == nil {
			err = s.kv.Purge(ctx, k)
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		s.cache.put(k, cacheEntry{rev: e.Revision() + 1})
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("config: delete %s: versions and aliases: %w", name, err)
	}
	return nil
}

// lookupKey reads a key for the invoke path: from the cache when it is
// loaded (the zero entry when the key does not exist), else from the KV
// (starting the cache).
func (s *Store) lookupKey(ctx context.Context, k string) (cacheEntry, error) {
	if e, ok := s.cache.lookup(k); ok {
		return e, nil
	}
	s.cache.start(s.kv)
	kv, err := s.kv.Get(ctx, k)
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
			return cacheEntry{}, nil
		}
		return cacheEntry{}, fmt.Errorf("config: get %s: %w", k, err)
	}
	e, ok := entryOf(kv)
	if !ok {
		return cacheEntry{}, fmt.Errorf("config: get %s: undecodable record", k)
	}
	return e, nil
}

// LookupQualified returns the configuration an invocation of name with
// qualifier runs, for the invoke path (from the cache, like Lookup): $LATEST
// for "" or "$LATEST", the version for a number, and for an alias the
// version its routing configuration picks with u, a number drawn
// uniformly from [0, 1) (see Alias.PickVersion). The result is shared and
// must not be modified. A missing function, version or alias is
// errdefs.ErrNotFound with Lambda's message.
func (s *Store) LookupQualified(ctx context.Context, account, name, qualifier string, u float64) (*Function, error) {
	if qualifier == "" || qualifier == LatestVersion {
		return s.Lookup(ctx, account, name)
	}
	if !validAccount(account) || !ValidName(name) {
		return nil, s.qualifiedNotFound(account, name, qualifier)
	}
	version := qualifier
	if !IsVersionQualifier(qualifier) {
		if !ValidAliasName(qualifier) {
			return nil, s.qualifiedNotFound(account, name, qualifier)
		}
		e, err := s.lookupKey(ctx, aliasKey(account, name, qualifier))
		if err != nil {
			return nil, err
		}
		if e.alias == nil {
			return nil, s.qualifiedNotFound(account, name, qualifier)
		}
		version = e.alias.PickVersion(u)
		if version == LatestVersion {
			return s.Lookup(ctx, account, name)
		}
	}
	n, ok := ParseVersion(version)
	if !ok {
		return nil, s.qualifiedNotFound(account, name, qualifier)
	}
	e, err := s.lookupKey(ctx, versionKey(account, name, n))
	if err != nil {
		return nil, err
	}
	if e.fn == nil {
		return nil, s.qualifiedNotFound(account, name, qualifier)
	}
	return e.fn, nil
}

// GetQualified reads (from the KV) what name with qualifier names for the
// control plane: $LATEST ("" or "$LATEST"), a version, or an alias and the
// version it points to (FunctionVersion; alias is nil otherwise). A
// missing function, version or alias is errdefs.ErrNotFound with Lambda's
// message.
func (s *Store) GetQualified(ctx context.Context, account, name, qualifier string) (fn *Function, alias *Alias, err error) {
	switch {
	case qualifier == "":
		fn, err = s.Get(ctx, account, name)
		return fn, nil, err
	case qualifier == LatestVersion || IsVersionQualifier(qualifier):
		fn, err = s.GetVersion(ctx, account, name, qualifier)
		return fn, nil, err
	}
	alias, err = s.GetAlias(ctx, account, name, qualifier)
	if err != nil {
		if errors.Is(err, errdefs.ErrNotFound) {
			err = s.qualifiedNotFound(account, name, qualifier)
		}
		return nil, nil, err
	}
	fn, err = s.GetVersion(ctx, account, name, alias.FunctionVersion)
	if err != nil {
		return nil, nil, err
	}
	return fn, alias, nil
}
