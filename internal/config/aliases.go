package config

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"kindling/internal/errdefs"
)

// Alias is a named pointer to a version of a function ($LATEST or a
// published one), optionally splitting invocations with a second version
// (RoutingConfig.AdditionalVersionWeights). It is stored as its own record
// under fn.<account>.<function>.a.<name>, updated with a compare-and-swap.
type Alias struct {
	Account  string `json:"account"`
	Region   string `json:"region"`
	Function string `json:"function"`
	// Name is the alias name (ValidAliasName).
	Name string `json:"name"`
	// FunctionVersion is the version invoked ("$LATEST" or a number) for
	// the share of invocations not routed elsewhere.
	FunctionVersion string `json:"functionVersion"`
	Description     string `json:"description,omitempty"`
	// Weights is RoutingConfig.AdditionalVersionWeights: published version
	// -> share of invocations (0..1) routed to it instead of
	// FunctionVersion. At most one entry (CheckRouting).
	Weights map[string]float64 `json:"weights,omitempty"`
	// RevisionID changes on every update.
	RevisionID string `json:"revisionId"`
}

// aliasRecord is the stored value of an alias key, versioned like record:
//
//	{"v":1,"alias":{...Alias...}}
type aliasRecord struct {
	V     int    `json:"v"`
	Alias *Alias `json:"alias"`
}

// MaxAliasLen is the longest alias name.
const MaxAliasLen = 128

// aliasPatternText is the alias Name pattern as Lambda states it.
const aliasPatternText = `(?!^[0-9]+$)([a-zA-Z0-9-_]+)`

// ValidAliasName reports whether s can name an alias: 1-128 of
// [a-zA-Z0-9-_], not all digits (that would be a version).
func ValidAliasName(s string) bool {
	return len(s) <= MaxAliasLen && aliasChars(s)
}

// aliasChars reports whether s matches the alias pattern (any length).
func aliasChars(s string) bool {
	if len(s) == 0 || IsVersionQualifier(s) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// AliasNameViolations returns the model's violations for an alias Name
// parameter (see Violation), none when it is valid.
func AliasNameViolations(s, field string) []string {
	var v []string
	if len(s) > MaxAliasLen {
		v = append(v, Violation(s, field, "Member must have length less than or equal to 128"))
	}
	if len(s) == 0 {
		v = append(v, Violation(s, field, "Member must have length greater than or equal to 1"))
	}
	if len(s) > 0 && !aliasChars(s) {
		v = append(v, Violation(s, field, "Member must satisfy regular expression pattern: "+aliasPatternText))
	}
	return v
}

// FunctionVersionViolations returns the model's violations for a
// FunctionVersion parameter (pattern (\$LATEST|[0-9]+), 1-1024).
func FunctionVersionViolations(s, field string) []string {
	var v []string
	if len(s) > 1024 {
		v = append(v, Violation(s, field, "Member must have length less than or equal to 1024"))
	}
	if len(s) == 0 {
		v = append(v, Violation(s, field, "Member must have length greater than or equal to 1"))
	}
	if len(s) > 0 && s != LatestVersion && !IsVersionQualifier(s) {
		v = append(v, Violation(s, field, `Member must satisfy regular expression pattern: (\$LATEST|[0-9]+)`))
	}
	return v
}

// javaDouble formats w as Java's Double.toString does for the values that
// occur here (Lambda's messages print the map the Java way: {2=0.5}).
func javaDouble(w float64) string {
	s := strconv.FormatFloat(w, 'f', -1, 64)
	if !strings.ContainsAny(s, ".eEn") { // not NaN/Inf
		s += ".0"
	}
	return s
}

// RoutingViolations returns the model's violations for
// RoutingConfig.AdditionalVersionWeights: keys [0-9]+ of 1-1024
// characters, values in [0, 1].
func RoutingViolations(weights map[string]float64) []string {
	var v []string
	for _, k := range slices.Sorted(maps.Keys(weights)) {
		w := weights[k]
		shown := fmt.Sprintf("{%s=%s}", k, javaDouble(w))
		if !IsVersionQualifier(k) || len(k) > 1024 {
			v = append(v, Violation(shown, "routingConfig.additionalVersionWeights",
				"Map keys must satisfy constraint: [Member must have length less than or equal to 1024, Member must have length greater than or equal to 1, Member must satisfy regular expression pattern: [0-9]+]"))
		}
		if !(w >= 0 && w <= 1) {
			v = append(v, Violation(shown, "routingConfig.additionalVersionWeights",
				"Map value must satisfy constraint: [Member must have value less than or equal to 1.0, Member must have value greater than or equal to 0.0, Member must not be null]"))
		}
	}
	return v
}

// CheckRouting checks an alias's targets beyond the model's constraints
// (RoutingViolations), as Lambda does: at most one additional version,
// not the primary one, and no routing when the primary is $LATEST. The
// errors are errdefs.ErrInvalid with Lambda's messages. It is pure.
func CheckRouting(primary string, weights map[string]float64) error {
	if len(weights) == 0 {
		return nil
	}
	if len(weights) > 1 {
		return fmt.Errorf("%w: Number of items in AdditionalVersionWeights cannot be greater than 1", errdefs.ErrInvalid)
	}
	for k := range weights {
		if k == primary {
			return fmt.Errorf("%w: Invalid function version %s. Function version %s is already included in routing configuration.",
				errdefs.ErrInvalid, k, k)
		}
	}
	if primary == LatestVersion {
		return fmt.Errorf("%w: $LATEST is not supported for an alias pointing to more than 1 version", errdefs.ErrInvalid)
	}
	return nil
}

// PickVersion chooses the version an invocation of the alias runs: an
// additional version with probability equal to its weight, else
// FunctionVersion. u must be drawn uniformly from [0, 1); the choice is a
// pure function of it, so that a caller's random source decides. With the
// weights in ascending key order, version k takes [sum of the weights
// before it, that sum + weight of k).
func (a *Alias) PickVersion(u float64) string {
	if len(a.Weights) == 0 {
		return a.FunctionVersion
	}
	if len(a.Weights) == 1 { // the only case Lambda allows: no sorting
		for k, w := range a.Weights {
			if u < w {
				return k
			}
		}
		return a.FunctionVersion
	}
	acc := 0.0
	for _, k := range slices.Sorted(maps.Keys(a.Weights)) {
		acc += a.Weights[k]
		if u < acc {
			return k
		}
	}
	return a.FunctionVersion
}

// References reports whether the alias routes any invocations to version.
func (a *Alias) References(version string) bool {
	if a.FunctionVersion == version {
		return true
	}
	_, ok := a.Weights[version]
	return ok
}

// ARN returns the alias ARN (the function ARN qualified with the name).
func (a *Alias) ARN() string {
	return fmt.Sprintf("arn:aws:lambda:%s:%s:function:%s:%s", a.Region, a.Account, a.Function, a.Name)
}

// Clone returns a deep copy of a.
func (a *Alias) Clone() *Alias {
	c := *a
	c.Weights = maps.Clone(a.Weights)
	return &c
}

func aliasKey(account, function, name string) string {
	return fnPrefix(account, function) + "a." + name
}

func encodeAlias(a *Alias) ([]byte, error) {
	data, err := json.Marshal(aliasRecord{V: recordVersion, Alias: a})
	if err != nil {
		return nil, fmt.Errorf("config: encode alias: %w", err)
	}
	return data, nil
}

func decodeAlias(data []byte) (*Alias, error) {
	var r aliasRecord
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("decode alias record: %w", err)
	}
	if r.V != recordVersion || r.Alias == nil {
		return nil, fmt.Errorf("decode alias record: unknown format version %d", r.V)
	}
	return r.Alias, nil
}

// aliasARN formats an alias ARN in this store's region.
func (s *Store) aliasARN(account, function, name string) string {
	return fmt.Sprintf("arn:aws:lambda:%s:%s:function:%s:%s", s.region, account, function, name)
}

// checkTargets checks the alias's targets in Lambda's order: that
// FunctionVersion exists ($LATEST needs only the function), CheckRouting,
// then that the routed versions exist.
func (s *Store) checkTargets(ctx context.Context, a *Alias) error {
	if a.FunctionVersion != LatestVersion {
		if _, err := s.GetVersion(ctx, a.Account, a.Function, a.FunctionVersion); err != nil {
			return err
		}
	}
	if err := CheckRouting(a.FunctionVersion, a.Weights); err != nil {
		return err
	}
	for _, v := range slices.Sorted(maps.Keys(a.Weights)) {
		if _, err := s.GetVersion(ctx, a.Account, a.Function, v); err != nil {
			return err
		}
	}
	return nil
}

// CreateAlias stores a new alias. The function must exist
// (errdefs.ErrNotFound, naming the function), so must the versions it
// points to (errdefs.ErrNotFound naming the version), and the routing must
// pass CheckRouting; an alias of that name already existing is
// errdefs.ErrConflict. It sets RevisionID and Region.
func (s *Store) CreateAlias(ctx context.Context, a *Alias) error {
	if !ValidAliasName(a.Name) {
		return fmt.Errorf("%w: config: bad alias name %q", errdefs.ErrInvalid, a.Name)
	}
	if _, _, err := s.get(ctx, a.Account, a.Function); err != nil {
		return err
	}
	if err := s.checkTargets(ctx, a); err != nil {
		return err
	}
	a.Region = s.region
	a.RevisionID = newRevisionID()
	data, err := encodeAlias(a)
	if err != nil {
		return err
	}
	k := aliasKey(a.Account, a.Function, a.Name)
	rev, err := s.kv.Create(ctx, k, data)
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyExists) {
			return fmt.Errorf("%w: Alias already exists: %s", errdefs.ErrConflict, a.ARN())
		}
		return fmt.Errorf("config: create alias %s: %w", a.Name, err)
	}
	s.cache.put(k, cacheEntry{alias: a.Clone(), rev: rev})
	return nil
}

// GetAlias returns the alias. A missing function is errdefs.ErrNotFound
// naming it; a missing alias is errdefs.ErrNotFound with Lambda's "Cannot
// find alias arn" message.
func (s *Store) GetAlias(ctx context.Context, account, function, name string) (*Alias, error) {
	a, _, err := s.getAlias(ctx, account, function, name)
	if errors.Is(err, errAliasMissing) {
		err = fmt.Errorf("%w: Cannot find alias arn: %s", errdefs.ErrNotFound, s.aliasARN(account, function, name))
	}
	return a, err
}

// errAliasMissing is getAlias's internal not-found; each operation words
// it its own way, as Lambda does.
var errAliasMissing = errors.New("alias missing")

func (s *Store) getAlias(ctx context.Context, account, function, name string) (*Alias, uint64, error) {
	if _, _, err := s.get(ctx, account, function); err != nil {
		return nil, 0, err
	}
	if !ValidAliasName(name) {
		return nil, 0, errAliasMissing
	}
	e, err := s.kv.Get(ctx, aliasKey(account, function, name))
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
			return nil, 0, errAliasMissing
		}
		return nil, 0, fmt.Errorf("config: get alias %s: %w", name, err)
	}
	a, err := decodeAlias(e.Value())
	if err != nil {
		return nil, 0, fmt.Errorf("config: get alias %s: %w", name, err)
	}
	return a, e.Revision(), nil
}

// UpdateAlias applies mutate to the alias and stores the result with a
// compare-and-swap, retrying from a fresh read when another writer got
// there first (mutate may run more than once). An error from mutate is
// returned as is. The targets are checked as in CreateAlias. A missing
// alias is errdefs.ErrNotFound ("Alias not found: ARN"). The stored alias
// gets a new RevisionID; its identity cannot change.
func (s *Store) UpdateAlias(ctx context.Context, account, function, name string, mutate func(*Alias) error) (*Alias, error) {
	k := aliasKey(account, function, name)
	for range maxUpdateAttempts {
		cur, rev, err := s.getAlias(ctx, account, function, name)
		if errors.Is(err, errAliasMissing) {
			return nil, fmt.Errorf("%w: Alias not found: %s", errdefs.ErrNotFound, s.aliasARN(account, function, name))
		}
		if err != nil {
			return nil, err
		}
		a := cur.Clone()
		if err := mutate(a); err != nil {
			return nil, err
		}
		a.Account, a.Region, a.Function, a.Name = cur.Account, cur.Region, cur.Function, cur.Name
		if err := s.checkTargets(ctx, a); err != nil {
			return nil, err
		}
		a.RevisionID = newRevisionID()
		data, err := encodeAlias(a)
		if err != nil {
			return nil, err
		}
		newRev, err := s.kv.Update(ctx, k, data, rev)
		if err == nil {
			s.cache.put(k, cacheEntry{alias: a.Clone(), rev: newRev})
			return a, nil
		}
		if !isCASMiss(err) {
			return nil, fmt.Errorf("config: update alias %s: %w", name, err)
		}
	}
	return nil, fmt.Errorf("%w: config: update alias %s: too many concurrent writers", errdefs.ErrUnavailable, name)
}

// DeleteAlias deletes the alias. A missing function is
// errdefs.ErrNotFound; deleting an alias that does not exist succeeds, as
// in Lambda.
func (s *Store) DeleteAlias(ctx context.Context, account, function, name string) error {
	k := aliasKey(account, function, name)
	for range maxUpdateAttempts {
		_, rev, err := s.getAlias(ctx, account, function, name)
		if errors.Is(err, errAliasMissing) {
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
			return fmt.Errorf("config: delete alias %s: %w", name, err)
		}
	}
	return fmt.Errorf("%w: config: delete alias %s: too many concurrent writers", errdefs.ErrUnavailable, name)
}

// maxListAll is a page size that takes every alias of a function.
const maxListAll = 1 << 30

// ListAliases returns up to max aliases of the function sorted by name,
// only those whose FunctionVersion is version when version is not "",
// starting after marker (the previous page's last alias name, "" for the
// first page). nextMarker is "" on the last page. A missing function is
// errdefs.ErrNotFound.
func (s *Store) ListAliases(ctx context.Context, account, function, version, marker string, max int) (out []*Alias, nextMarker string, err error) {
	if max <= 0 {
		max = 50
	}
	if _, _, err := s.get(ctx, account, function); err != nil {
		return nil, "", err
	}
	lister, err := s.kv.ListKeysFiltered(ctx, fnPrefix(account, function)+"a.*")
	if err != nil {
		return nil, "", fmt.Errorf("config: list aliases of %s: %w", function, err)
	}
	var names []string
	for k := range lister.Keys() {
		if kind, _, _, q, ok := parseKey(k); ok && kind == kindAlias {
			names = append(names, q)
		}
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
	i := start
	more := false
	for ; i < len(names); i++ {
		a, _, err := s.getAlias(ctx, account, function, names[i])
		if errors.Is(err, errAliasMissing) {
			continue // deleted since listed
		}
		if err != nil {
			return nil, "", err
		}
		if version != "" && a.FunctionVersion != version {
			continue
		}
		if len(out) == max {
			more = true
			break
		}
		out = append(out, a)
	}
	if more {
		nextMarker = out[len(out)-1].Name
	}
	return out, nextMarker, nil
}
