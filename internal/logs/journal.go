package logs

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// The journal makes the store durable: every batch of events is one message
// of the JetStream stream KINDLING_LOGS, and each group's settings one entry
// of the KV bucket kindling-logs-groups. At start the store replays both
// into memory. JetStream's own MaxBytes (with DiscardOld) bounds the disk,
// and retention purges a stream's subject up to its first kept message.
//
// Subjects: logs.<b64 account>.<b64 group>.<b64 stream>, each name in
// unpadded base64url, so that no name can inject a '.', '*' or '>'.
//
// Record (message body), JSON, version 1:
//
//	{"v":1,"a":ACCOUNT,"g":GROUP,"s":STREAM,"b":BATCH,"i":INGEST_MS,
//	 "e":[[TIMESTAMP_MS,"message"],...]}
//
// Group entry (KV value under <b64 account>.<b64 group>), JSON, version 1:
//
//	{"v":1,"a":ACCOUNT,"g":GROUP,"c":CREATED_MS,"r":RETENTION_DAYS}
//
// A record or entry of another version is skipped at load, with a warning.
const (
	journalStream  = "KINDLING_LOGS"
	journalBucket  = "kindling-logs-groups"
	subjectRoot    = "logs"
	recordVersion  = 1
	journalTimeout = 10 * time.Second
)

// record is one batch of events: the unit of the journal and of eviction.
type record struct {
	V       int        `json:"v"`
	Account string     `json:"a"`
	Group   string     `json:"g"`
	Stream  string     `json:"s"`
	Batch   uint64     `json:"b"`
	Ingest  int64      `json:"i"`
	Events  []rawEvent `json:"e"`
}

// rawEvent is [timestamp, message] on the wire.
type rawEvent struct {
	TS  int64
	Msg string
}

func (e rawEvent) MarshalJSON() ([]byte, error) { return json.Marshal([]any{e.TS, e.Msg}) }

func (e *rawEvent) UnmarshalJSON(b []byte) error {
	var pair [2]json.RawMessage
	if err := json.Unmarshal(b, &pair); err != nil {
		return err
	}
	if err := json.Unmarshal(pair[0], &e.TS); err != nil {
		return err
	}
	return json.Unmarshal(pair[1], &e.Msg)
}

// groupMeta is a group's durable settings.
type groupMeta struct {
	V         int    `json:"v"`
	Account   string `json:"a"`
	Group     string `json:"g"`
	Created   int64  `json:"c"`
	Retention int    `json:"r,omitempty"`
}

// journal is what the store needs from its durable copy. Methods are
// called without Store.mu held.
type journal interface {
	publish(rec *record) (seq uint64, err error)
	// purgeStream removes a log stream's records before keepFrom (all of
	// them when keepFrom is 0).
	purgeStream(account, group, stream string, keepFrom uint64) error
	purgeGroup(account, group string) error
	putGroup(m groupMeta) error
	deleteGroup(account, group string) error
	// load calls group for every stored group, then rec for every record
	// in the order they were written.
	load(group func(groupMeta), rec func(r *record, seq uint64)) error
}

func enc(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func subjectOf(account, group, stream string) string {
	return subjectRoot + "." + enc(account) + "." + enc(group) + "." + enc(stream)
}

func groupKeyOf(account, group string) string { return enc(account) + "." + enc(group) }

type jsJournal struct {
	js     jetstream.JetStream
	stream jetstream.Stream
	kv     jetstream.KeyValue
}

func openJournal(ctx context.Context, js jetstream.JetStream, maxBytes int64) (*jsJournal, error) {
	st, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        journalStream,
		Description: "Kindling function logs (internal/logs)",
		Subjects:    []string{subjectRoot + ".>"},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		MaxBytes:    maxBytes,
	})
	if err != nil {
		return nil, fmt.Errorf("logs stream: %w", err)
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      journalBucket,
		Description: "Kindling log groups (internal/logs)",
		Storage:     jetstream.FileStorage,
		History:     1,
	})
	if err != nil {
		return nil, fmt.Errorf("logs groups bucket: %w", err)
	}
	return &jsJournal{js: js, stream: st, kv: kv}, nil
}

func (j *jsJournal) publish(rec *record) (uint64, error) {
	data, err := json.Marshal(rec)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), journalTimeout)
	defer cancel()
	ack, err := j.js.Publish(ctx, subjectOf(rec.Account, rec.Group, rec.Stream), data)
	if err != nil {
		return 0, err
	}
	return ack.Sequence, nil
}

func (j *jsJournal) purgeStream(account, group, stream string, keepFrom uint64) error {
	ctx, cancel := context.WithTimeout(context.Background(), journalTimeout)
	defer cancel()
	opts := []jetstream.StreamPurgeOpt{jetstream.WithPurgeSubject(subjectOf(account, group, stream))}
	if keepFrom > 0 {
		opts = append(opts, jetstream.WithPurgeSequence(keepFrom))
	}
	return j.stream.Purge(ctx, opts...)
}

func (j *jsJournal) purgeGroup(account, group string) error {
	ctx, cancel := context.WithTimeout(context.Background(), journalTimeout)
	defer cancel()
	return j.stream.Purge(ctx, jetstream.WithPurgeSubject(subjectRoot+"."+groupKeyOf(account, group)+".>"))
}

func (j *jsJournal) putGroup(m groupMeta) error {
	m.V = recordVersion
	data, err := json.Marshal(m)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), journalTimeout)
	defer cancel()
	_, err = j.kv.Put(ctx, groupKeyOf(m.Account, m.Group), data)
	return err
}

func (j *jsJournal) deleteGroup(account, group string) error {
	ctx, cancel := context.WithTimeout(context.Background(), journalTimeout)
	defer cancel()
	err := j.kv.Purge(ctx, groupKeyOf(account, group))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil
	}
	return err
}

func (j *jsJournal) load(group func(groupMeta), rec func(*record, uint64)) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	lister, err := j.kv.ListKeys(ctx)
	if err != nil {
		return err
	}
	var keys []string
	for k := range lister.Keys() {
		keys = append(keys, k)
	}
	for _, k := range keys {
		e, err := j.kv.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
			continue
		}
		if err != nil {
			return err
		}
		var m groupMeta
		if json.Unmarshal(e.Value(), &m) != nil || m.V != recordVersion {
			continue
		}
		group(m)
	}

	info, err := j.stream.Info(ctx)
	if err != nil {
		return err
	}
	if info.State.Msgs == 0 {
		return nil
	}
	last := info.State.LastSeq
	cons, err := j.js.OrderedConsumer(ctx, journalStream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return err
	}
	for {
		batch, err := cons.Fetch(1000, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			return err
		}
		n := 0
		done := false
		for m := range batch.Messages() {
			n++
			md, err := m.Metadata()
			if err != nil {
				continue
			}
			var r record
			if json.Unmarshal(m.Data(), &r) == nil && r.V == recordVersion {
				rec(&r, md.Sequence.Stream)
			}
			if md.Sequence.Stream >= last || md.NumPending == 0 {
				done = true
				break // the rest of the batch would only wait out FetchMaxWait
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) && !errors.Is(err, context.DeadlineExceeded) {
			return err
		}
		if done || n == 0 {
			return nil
		}
	}
}
