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
)

// EventConfigBucket is the JetStream KV bucket holding event invoke
// configurations (the asynchronous invocation settings of a function,
// version or alias).
const EventConfigBucket = "kindling-event-invoke-configs"

// Lambda's limits and defaults for asynchronous invocation.
const (
	DefaultMaximumRetryAttempts     = 2
	MaxMaximumRetryAttempts         = 2
	DefaultMaximumEventAgeInSeconds = 21600
	MinMaximumEventAgeInSeconds     = 60
	MaxMaximumEventAgeInSeconds     = 21600
)

// EventInvokeConfig is the asynchronous invocation configuration of one
// function, version or alias. Nil limits mean Lambda's defaults; empty
// destinations mean none.
type EventInvokeConfig struct {
	Account string `json:"account"`
	Name    string `json:"name"`
	// Qualifier is "$LATEST", a version number or an alias name.
	Qualifier string `json:"qualifier"`

	MaximumRetryAttempts     *int      `json:"maximumRetryAttempts,omitempty"`
	MaximumEventAgeInSeconds *int      `json:"maximumEventAgeInSeconds,omitempty"`
	OnSuccess                string    `json:"onSuccess,omitempty"`
	OnFailure                string    `json:"onFailure,omitempty"`
	LastModified             time.Time `json:"lastModified"`
}

// RetryAttempts returns MaximumRetryAttempts or its default. A nil
// configuration has the defaults.
func (c *EventInvokeConfig) RetryAttempts() int {
	if c == nil || c.MaximumRetryAttempts == nil {
		return DefaultMaximumRetryAttempts
	}
	return *c.MaximumRetryAttempts
}

// MaxEventAge returns MaximumEventAgeInSeconds (or its default) as a
// duration in Lambda time.
func (c *EventInvokeConfig) MaxEventAge() time.Duration {
	if c == nil || c.MaximumEventAgeInSeconds == nil {
		return DefaultMaximumEventAgeInSeconds * time.Second
	}
	return time.Duration(*c.MaximumEventAgeInSeconds) * time.Second
}

// Destination returns the OnSuccess or OnFailure destination.
func (c *EventInvokeConfig) Destination(success bool) string {
	if c == nil {
		return ""
	}
	if success {
		return c.OnSuccess
	}
	return c.OnFailure
}

// QualifiedARN is the ARN the configuration is reported under.
func (c *EventInvokeConfig) QualifiedARN(region string) string {
	return fmt.Sprintf("arn:aws:lambda:%s:%s:function:%s:%s", region, c.Account, c.Name, c.Qualifier)
}

// eventConfigRecord is the stored value: {"v":1,"c":{...}}.
type eventConfigRecord struct {
	V int                `json:"v"`
	C *EventInvokeConfig `json:"c"`
}

// EventConfigs stores event invoke configurations in JetStream KV, one key
// per function qualifier:
//
//	eic.<account>.<name>.<qualifier>   ($LATEST is spelled LATEST)
//
// It is safe for concurrent use; writes are compare-and-swap on the KV
// revision.
type EventConfigs struct {
	kv     jetstream.KeyValue
	region string
}

// OpenEventConfigs opens (creating if needed) the bucket on js.
func OpenEventConfigs(ctx context.Context, js jetstream.JetStream, o Options) (*EventConfigs, error) {
	replicas := o.Replicas
	if replicas <= 0 {
		replicas = 1
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      EventConfigBucket,
		Description: "Kindling event invoke configurations",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("config: open bucket %s: %w", EventConfigBucket, err)
	}
	region := o.Region
	if region == "" {
		region = "us-east-1"
	}
	return &EventConfigs{kv: kv, region: region}, nil
}

func eventConfigKey(account, name, qualifier string) string {
	return "eic." + account + "." + name + "." + qualifierToken(qualifier)
}

// qualifierToken spells a qualifier as a KV key token.
func qualifierToken(q string) string {
	if q == "" || q == LatestVersion {
		return "LATEST"
	}
	return q
}

func tokenQualifier(t string) string {
	if t == "LATEST" {
		return LatestVersion
	}
	return t
}

// validQualifierToken reports whether q can be a key token (versions are
// digits, aliases [a-zA-Z0-9-_]).
func validQualifierToken(q string) bool {
	if q == LatestVersion {
		return true
	}
	return q != "" && len(q) <= 128 && isPlainName(q, false)
}

func (s *EventConfigs) notFound(account, name, qualifier string) error {
	return fmt.Errorf("%w: The function arn:aws:lambda:%s:%s:function:%s:%s doesn't have an EventInvokeConfig",
		errdefs.ErrNotFound, s.region, account, name, qualifier)
}

func (s *EventConfigs) check(account, name, qualifier string) error {
	if !validAccount(account) || !ValidName(name) || !validQualifierToken(qualifier) {
		return fmt.Errorf("%w: config: bad event invoke config identity %q/%q/%q", errdefs.ErrInvalid, account, name, qualifier)
	}
	return nil
}

// Get returns the configuration of the function qualifier ("" means
// $LATEST), or errdefs.ErrNotFound with Lambda's message.
func (s *EventConfigs) Get(ctx context.Context, account, name, qualifier string) (*EventInvokeConfig, error) {
	c, _, err := s.get(ctx, account, name, orDefault(qualifier, LatestVersion))
	return c, err
}

func (s *EventConfigs) get(ctx context.Context, account, name, qualifier string) (*EventInvokeConfig, uint64, error) {
	if err := s.check(account, name, qualifier); err != nil {
		return nil, 0, s.notFound(account, name, qualifier)
	}
	e, err := s.kv.Get(ctx, eventConfigKey(account, name, qualifier))
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
			return nil, 0, s.notFound(account, name, qualifier)
		}
		return nil, 0, fmt.Errorf("config: get event invoke config: %w", err)
	}
	c, err := decodeEventConfig(e.Value())
	if err != nil {
		return nil, 0, err
	}
	return c, e.Revision(), nil
}

// Put stores c, replacing any configuration of the same qualifier. It sets
// LastModified.
func (s *EventConfigs) Put(ctx context.Context, c *EventInvokeConfig) error {
	c.Qualifier = orDefault(c.Qualifier, LatestVersion)
	if err := s.check(c.Account, c.Name, c.Qualifier); err != nil {
		return err
	}
	c.LastModified = time.Now().UTC()
	data, err := encodeEventConfig(c)
	if err != nil {
		return err
	}
	if _, err := s.kv.Put(ctx, eventConfigKey(c.Account, c.Name, c.Qualifier), data); err != nil {
		return fmt.Errorf("config: put event invoke config: %w", err)
	}
	return nil
}

// Update applies mutate to the stored configuration (errdefs.ErrNotFound
// when there is none) with a compare-and-swap, retrying on a concurrent
// write; mutate may run more than once.
func (s *EventConfigs) Update(ctx context.Context, account, name, qualifier string, mutate func(*EventInvokeConfig) error) (*EventInvokeConfig, error) {
	qualifier = orDefault(qualifier, LatestVersion)
	for range maxUpdateAttempts {
		c, rev, err := s.get(ctx, account, name, qualifier)
		if err != nil {
			return nil, err
		}
		if err := mutate(c); err != nil {
			return nil, err
		}
		c.Account, c.Name, c.Qualifier = account, name, qualifier
		c.LastModified = time.Now().UTC()
		data, err := encodeEventConfig(c)
		if err != nil {
			return nil, err
		}
		_, err = s.kv.Update(ctx, eventConfigKey(account, name, qualifier), data, rev)
		if err == nil {
			return c, nil
		}
		if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) && !errors.Is(err, jetstream.ErrKeyExists) {
			return nil, fmt.Errorf("config: update event invoke config: %w", err)
		}
	}
	return nil, fmt.Errorf("%w: config: update event invoke config: too many concurrent writers", errdefs.ErrUnavailable)
}

// Delete removes the configuration of one qualifier; none is
// errdefs.ErrNotFound.
func (s *EventConfigs) Delete(ctx context.Context, account, name, qualifier string) error {
	qualifier = orDefault(qualifier, LatestVersion)
	if _, _, err := s.get(ctx, account, name, qualifier); err != nil {
		return err
	}
	if err := s.kv.Purge(ctx, eventConfigKey(account, name, qualifier)); err != nil {
		return fmt.Errorf("config: delete event invoke config: %w", err)
	}
	return nil
}

// List returns the function's configurations (every qualifier), sorted by
// qualifier with $LATEST first.
func (s *EventConfigs) List(ctx context.Context, account, name string) ([]*EventInvokeConfig, error) {
	if !validAccount(account) || !ValidName(name) {
		return nil, nil
	}
	prefix := "eic." + account + "." + name + "."
	lister, err := s.kv.ListKeysFiltered(ctx, prefix+"*")
	if err != nil {
		return nil, fmt.Errorf("config: list event invoke configs: %w", err)
	}
	var quals []string
	for k := range lister.Keys() {
		quals = append(quals, tokenQualifier(strings.TrimPrefix(k, prefix)))
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	slices.SortFunc(quals, func(a, b string) int {
		switch {
		case a == b:
			return 0
		case a == LatestVersion:
			return -1
		case b == LatestVersion:
			return 1
		}
		return strings.Compare(a, b)
	})
	out := make([]*EventInvokeConfig, 0, len(quals))
	for _, q := range quals {
		c, _, err := s.get(ctx, account, name, q)
		if errors.Is(err, errdefs.ErrNotFound) {
			continue // deleted since listed
		}
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// DeleteAll removes every configuration of the function (when the function
// itself is deleted). Nothing to delete is not an error.
func (s *EventConfigs) DeleteAll(ctx context.Context, account, name string) error {
	cs, err := s.List(ctx, account, name)
	if err != nil {
		return err
	}
	var errs []error
	for _, c := range cs {
		if err := s.kv.Purge(ctx, eventConfigKey(account, name, c.Qualifier)); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func encodeEventConfig(c *EventInvokeConfig) ([]byte, error) {
	data, err := json.Marshal(eventConfigRecord{V: recordVersion, C: c})
	if err != nil {
		return nil, fmt.Errorf("config: encode event invoke config: %w", err)
	}
	return data, nil
}

func decodeEventConfig(data []byte) (*EventInvokeConfig, error) {
	var r eventConfigRecord
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("config: decode event invoke config: %w", err)
	}
	if r.V != recordVersion || r.C == nil {
		return nil, fmt.Errorf("config: decode event invoke config: unknown format version %d", r.V)
	}
	return r.C, nil
}
