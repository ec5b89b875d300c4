package sqs

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"kindling/internal/awsapi"
	"kindling/internal/errdefs"
	"kindling/internal/sigv4"
)

// Storage names.
const (
	// QueueBucket is the KV bucket of queue definitions, one key per queue:
	// <account>.<name> -> {"v":1,"q":{...}}.
	QueueBucket = "kindling-sqs-queues"
	// StreamName is the stream of messages, subject
	// kindling.sqs.<account>.<name>, one stream message per SQS message
	// (body: {"v":1,...}, see storedMessage). Deleting an SQS message
	// deletes its stream message.
	StreamName    = "KINDLING_SQS"
	subjectPrefix = "kindling.sqs."
	recordVersion = 1
	// maxRetention bounds the stream (SQS's longest retention, 14 days).
	maxRetention = 14 * 24 * time.Hour
	// sweepEvery is how often expired messages are removed.
	sweepEvery = 10 * time.Second
)

// storedQueue is a queue definition in the KV.
type storedQueue struct {
	Account  string     `json:"account"`
	Name     string     `json:"name"`
	Attrs    attributes `json:"attrs"`
	Created  int64      `json:"created"` // unix ns; also the queue's incarnation
	Modified int64      `json:"modified"`
}

// storedMessage is a message in the stream.
type storedMessage struct {
	V     int                              `json:"v"`
	Queue int64                            `json:"q"` // the queue's incarnation
	ID    string                           `json:"id"`
	Body  string                           `json:"body"`
	Attrs map[string]MessageAttributeValue `json:"attrs,omitempty"`
	Sent  int64                            `json:"sent"` // unix ms
	Delay int                              `json:"delay,omitempty"`
}

// Config configures a Service.
type Config struct {
	JetStream jetstream.JetStream
	// Verifier checks SigV4 (service "sqs") and maps keys to accounts.
	Verifier *sigv4.Verifier
	Region   string
	Logger   *slog.Logger
	// Replicas of the bucket and stream (0 means 1).
	Replicas int
}

// Service is Kindling's SQS: queues and their messages, durable on
// JetStream, indexed in memory. The in-memory index (visibility, receive
// counts) belongs to one process: a cluster runs one Service per queue set.
// Visibility state is not persisted: after a restart every message is
// visible again (at least once, as SQS promises), and receive counts start
// over (they are approximate in SQS too).
//
// Lock order: Service.mu, then queue.mu. queue.mu is never held across a
// JetStream call; Service.mu is, for the KV write of a queue creation or
// deletion (rare), so that two creations of one name cannot race.
type Service struct {
	cfg    Config
	log    *slog.Logger
	kv     jetstream.KeyValue
	js     jetstream.JetStream
	stream jetstream.Stream
	verify func(r *httpRequest, body []byte) (sigv4.Credentials, string, error)

	mu     sync.Mutex
	queues map[string]*queue // by account.name; guarded by mu

	stop chan struct{}
	done chan struct{}
}

// Open opens (creating if needed) the queue bucket and message stream and
// loads every queue and message.
func Open(ctx context.Context, cfg Config) (*Service, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	replicas := max(cfg.Replicas, 1)
	s := &Service{cfg: cfg, log: cfg.Logger, js: cfg.JetStream, queues: map[string]*queue{},
		stop: make(chan struct{}), done: make(chan struct{})}
	var err error
	s.kv, err = s.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: QueueBucket, Description: "Kindling SQS queues", History: 1,
		Storage: jetstream.FileStorage, Replicas: replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("sqs: bucket %s: %w", QueueBucket, err)
	}
	s.stream, err = s.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: StreamName, Description: "Kindling SQS messages", Subjects: []string{subjectPrefix + ">"},
		Retention: jetstream.LimitsPolicy, Storage: jetstream.FileStorage, Replicas: replicas, MaxAge: maxRetention,
	})
	if err != nil {
		return nil, fmt.Errorf("sqs: stream %s: %w", StreamName, err)
	}
	s.verify = func(r *httpRequest, body []byte) (sigv4.Credentials, string, error) {
		if cfg.Verifier == nil {
			return sigv4.Credentials{}, "", &sigv4.Error{Status: 403, Type: "UnrecognizedClientException",
				Message: "The security token included in the request is invalid."}
		}
		return cfg.Verifier.Verify(r, body)
	}
	if err := s.load(ctx); err != nil {
		return nil, err
	}
	go s.sweepLoop()
	return s, nil
}

// Close stops the background sweep.
func (s *Service) Close() {
	select {
	case <-s.stop:
	default:
		close(s.stop)
		<-s.done
	}
}

func queueKey(account, name string) string { return account + "." + name }

// load reads the queue definitions and the stored messages.
func (s *Service) load(ctx context.Context) error {
	lister, err := s.kv.ListKeys(ctx)
	if err != nil {
		return fmt.Errorf("sqs: list queues: %w", err)
	}
	var keys []string
	for k := range lister.Keys() {
		keys = append(keys, k)
	}
	for _, k := range keys {
		e, err := s.kv.Get(ctx, k)
		if err != nil {
			if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
				continue
			}
			return fmt.Errorf("sqs: read queue %s: %w", k, err)
		}
		sq, err := decodeQueue(e.Value())
		if err != nil {
			s.log.Warn("sqs: skipping an unreadable queue definition", "key", k, "err", err)
			continue
		}
		q := newQueue(sq.Account, sq.Name, sq.Attrs, time.Unix(0, sq.Created))
		q.modified = time.Unix(0, sq.Modified)
		s.queues[queueKey(sq.Account, sq.Name)] = q
	}
	info, err := s.stream.Info(ctx)
	if err != nil {
		return fmt.Errorf("sqs: stream info: %w", err)
	}
	if info.State.Msgs == 0 {
		return nil
	}
	oc, err := s.stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return fmt.Errorf("sqs: reading messages: %w", err)
	}
	now := time.Now()
	loaded, orphans := 0, 0
	for {
		batch, err := oc.Fetch(1000, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return fmt.Errorf("sqs: reading messages: %w", err)
		}
		n, last := 0, false
		for m := range batch.Messages() {
			n++
			meta, err := m.Metadata()
			if err != nil {
				return fmt.Errorf("sqs: reading messages: %w", err)
			}
			last = meta.NumPending == 0
			if s.loadMessage(m.Subject(), meta.Sequence.Stream, m.Data(), now) {
				loaded++
			} else {
				orphans++
				if err := s.stream.DeleteMsg(ctx, meta.Sequence.Stream); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
					s.log.Warn("sqs: removing an orphaned message", "err", err)
				}
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return fmt.Errorf("sqs: reading messages: %w", err)
		}
		if last || n == 0 {
			break
		}
	}
	s.log.Info("sqs: loaded", "queues", len(s.queues), "messages", loaded, "orphans", orphans)
	return nil
}

// loadMessage indexes one stored message; false means it belongs to no
// queue (deleted, or an earlier incarnation) and should be removed.
func (s *Service) loadMessage(subject string, seq uint64, data []byte, now time.Time) bool {
	rest, ok := strings.CutPrefix(subject, subjectPrefix)
	if !ok {
		return false
	}
	account, name, ok := strings.Cut(rest, ".")
	if !ok {
		return false
	}
	q := s.queues[queueKey(account, name)]
	if q == nil {
		return false
	}
	var sm storedMessage
	if err := json.Unmarshal(data, &sm); err != nil || sm.V != recordVersion || sm.Queue != q.created.UnixNano() {
		return false
	}
	sent := time.UnixMilli(sm.Sent)
	m := &message{seq: seq, id: sm.ID, body: sm.Body, attrs: sm.Attrs, md5Body: md5Hex(sm.Body),
		md5Attrs: md5OfAttributes(sm.Attrs), sent: sent, visibleAt: sent.Add(time.Duration(sm.Delay) * time.Second)}
	q.mu.Lock()
	q.add(m, now)
	q.mu.Unlock()
	return true
}

func decodeQueue(data []byte) (*storedQueue, error) {
	var r struct {
		V int          `json:"v"`
		Q *storedQueue `json:"q"`
	}
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, err
	}
	if r.V != recordVersion || r.Q == nil {
		return nil, fmt.Errorf("unknown format version %d", r.V)
	}
	return r.Q, nil
}

func encodeQueue(q *queue) ([]byte, error) {
	return json.Marshal(map[string]any{"v": recordVersion, "q": storedQueue{
		Account: q.account, Name: q.name, Attrs: q.attrs, Created: q.created.UnixNano(), Modified: q.modified.UnixNano(),
	}})
}

// validQueueName: 1-80 of [a-zA-Z0-9_-].
func validQueueName(name string) bool {
	if name == "" || len(name) > 80 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func (s *Service) queue(account, name string) (*queue, error) {
	s.mu.Lock()
	q := s.queues[queueKey(account, name)]
	s.mu.Unlock()
	if q == nil {
		return nil, errQueueDoesNotExist()
	}
	return q, nil
}

// ARN returns a queue's ARN.
func (s *Service) ARN(account, name string) string {
	return "arn:aws:sqs:" + s.cfg.Region + ":" + account + ":" + name
}

// createQueue creates a queue, or returns the existing one when its
// attributes match (SQS's idempotency rule).
func (s *Service) createQueue(ctx context.Context, account, name string, in map[string]string) error {
	if strings.HasSuffix(name, ".fifo") {
		return errUnsupported("Kindling supports standard queues only; FIFO queues are not supported.")
	}
	if !validQueueName(name) {
		return errInvalidParameterValue("Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length")
	}
	attrs := defaultAttributes()
	if err := attrs.apply(in); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if q := s.queues[queueKey(account, name)]; q != nil {
		q.mu.Lock()
		diff := q.attrs.differs(in)
		q.mu.Unlock()
		if diff != "" {
			return errQueueNameExists(diff)
		}
		return nil
	}
	now := time.Now()
	q := newQueue(account, name, attrs, now)
	data, err := encodeQueue(q)
	if err != nil {
		return err
	}
	// Held under s.mu so that two creations of one name cannot race; a
	// create is rare.
	if _, err := s.kv.Put(ctx, queueKey(account, name), data); err != nil {
		return fmt.Errorf("%w: sqs: store queue: %v", errdefs.ErrUnavailable, err)
	}
	s.queues[queueKey(account, name)] = q
	return nil
}

func (s *Service) deleteQueue(ctx context.Context, account, name string) error {
	s.mu.Lock()
	q := s.queues[queueKey(account, name)]
	if q == nil {
		s.mu.Unlock()
		return errQueueDoesNotExist()
	}
	if err := s.kv.Purge(ctx, queueKey(account, name)); err != nil {
		s.mu.Unlock()
		return fmt.Errorf("%w: sqs: delete queue: %v", errdefs.ErrUnavailable, err)
	}
	delete(s.queues, queueKey(account, name))
	s.mu.Unlock()
	q.mu.Lock()
	q.deleted = true
	q.purge()
	q.signal()
	q.mu.Unlock()
	// Messages left behind (a failed purge) are removed at the next load.
	if err := s.stream.Purge(ctx, jetstream.WithPurgeSubject(subjectPrefix+account+"."+name)); err != nil {
		s.log.Warn("sqs: purging a deleted queue's messages", "queue", name, "err", err)
	}
	return nil
}

func (s *Service) purgeQueue(ctx context.Context, q *queue) error {
	q.mu.Lock()
	q.purge()
	q.mu.Unlock()
	if err := s.stream.Purge(ctx, jetstream.WithPurgeSubject(subjectPrefix+q.account+"."+q.name)); err != nil {
		return fmt.Errorf("%w: sqs: purge: %v", errdefs.ErrUnavailable, err)
	}
	return nil
}

func (s *Service) setAttributes(ctx context.Context, q *queue, in map[string]string) error {
	q.mu.Lock()
	attrs := q.attrs
	if err := attrs.apply(in); err != nil {
		q.mu.Unlock()
		return err
	}
	q.attrs = attrs
	q.modified = time.Now()
	data, err := encodeQueue(q)
	q.mu.Unlock()
	if err != nil {
		return err
	}
	if _, err := s.kv.Put(ctx, queueKey(q.account, q.name), data); err != nil {
		return fmt.Errorf("%w: sqs: store queue: %v", errdefs.ErrUnavailable, err)
	}
	return nil
}

// validBody checks SQS's allowed characters: #x9 | #xA | #xD | #x20 to
// #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF.
func validBody(b string) bool {
	if !utf8.ValidString(b) {
		return false
	}
	for _, r := range b {
		switch {
		case r == 0x9 || r == 0xA || r == 0xD:
		case r >= 0x20 && r <= 0xD7FF:
		case r >= 0xE000 && r <= 0xFFFD:
		case r >= 0x10000 && r <= 0x10FFFF:
		default:
			return false
		}
	}
	return true
}

// sent is SendMessage's result.
type sent struct {
	id, md5Body, md5Attrs string
}

// send stores and indexes one message.
func (s *Service) send(ctx context.Context, q *queue, body string, attrs map[string]MessageAttributeValue, delay *int) (sent, error) {
	if body == "" {
		return sent{}, errMissingParameter("MessageBody")
	}
	q.mu.Lock()
	limit, qdelay, incarnation := q.attrs.MaximumMessageSize, q.attrs.DelaySeconds, q.created.UnixNano()
	q.mu.Unlock()
	size := len(body)
	for k, v := range attrs {
		size += len(k) + len(v.DataType) + len(v.BinaryValue)
		if v.StringValue != nil {
			size += len(*v.StringValue)
		}
	}
	if size > limit {
		return sent{}, errInvalidParameterValue(fmt.Sprintf("One or more parameters are invalid. Reason: Message must be shorter than %d bytes.", limit))
	}
	if !validBody(body) {
		return sent{}, errInvalidMessageContents("Invalid characters found. Valid unicode characters are #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF")
	}
	if err := checkAttributes(attrs); err != nil {
		return sent{}, err
	}
	d := qdelay
	if delay != nil {
		if *delay < 0 || *delay > 900 {
			return sent{}, errInvalidParameterValue("Value " + strconv.Itoa(*delay) + " for parameter DelaySeconds is invalid. Reason: must be between 0 and 900, if provided.")
		}
		d = *delay
	}
	now := time.Now()
	sm := storedMessage{V: recordVersion, Queue: incarnation, ID: awsapi.NewRequestID(), Body: body, Attrs: attrs,
		Sent: now.UnixMilli(), Delay: d}
	data, err := json.Marshal(sm)
	if err != nil {
		return sent{}, err
	}
	ack, err := s.js.Publish(ctx, subjectPrefix+q.account+"."+q.name, data)
	if err != nil {
		return sent{}, fmt.Errorf("%w: sqs: store message: %v", errdefs.ErrUnavailable, err)
	}
	m := &message{seq: ack.Sequence, id: sm.ID, body: body, attrs: attrs, md5Body: md5Hex(body),
		md5Attrs: md5OfAttributes(attrs), sent: time.UnixMilli(sm.Sent), visibleAt: time.UnixMilli(sm.Sent).Add(time.Duration(d) * time.Second)}
	q.mu.Lock()
	deleted := q.deleted
	if !deleted {
		q.add(m, time.Now())
	}
	q.mu.Unlock()
	if deleted {
		return sent{}, errQueueDoesNotExist()
	}
	return sent{id: m.id, md5Body: m.md5Body, md5Attrs: m.md5Attrs}, nil
}

func checkAttributes(attrs map[string]MessageAttributeValue) error {
	if len(attrs) > 10 {
		return errInvalidParameterValue("Number of message attributes [" + strconv.Itoa(len(attrs)) + "] exceeds the allowed maximum [10].")
	}
	for k, v := range attrs {
		if k == "" || len(k) > 256 || strings.HasPrefix(strings.ToLower(k), "aws.") || strings.HasPrefix(strings.ToLower(k), "amazon.") {
			return errInvalidParameterValue("Message attribute name '" + clip(k) + "' is invalid.")
		}
		base, _, _ := strings.Cut(v.DataType, ".")
		switch base {
		case "String", "Number":
			if v.StringValue == nil {
				return errInvalidParameterValue("Message attribute '" + clip(k) + "' must contain a non-empty value of message attribute type '" + base + "'.")
			}
		case "Binary":
			if v.BinaryValue == nil {
				return errInvalidParameterValue("Message attribute '" + clip(k) + "' must contain a non-empty value of message attribute type 'Binary'.")
			}
		default:
			return errInvalidParameterValue("The type of message attribute '" + clip(k) + "' is invalid. You must use only the following supported type prefixes: Binary, Number, String.")
		}
	}
	return nil
}

// receive takes up to max messages, long-polling up to wait.
func (s *Service) receive(ctx context.Context, q *queue, max int, vis time.Duration, wait time.Duration) []message {
	deadline := time.Now().Add(wait)
	for {
		now := time.Now()
		q.mu.Lock()
		msgs := q.receive(max, vis, now)
		wake, deleted := q.wake, q.deleted
		next, ok := q.nextVisible()
		q.mu.Unlock()
		if len(msgs) > 0 || deleted || !now.Before(deadline) {
			return msgs
		}
		until := deadline
		if ok && next.Before(until) {
			until = next
		}
		t := time.NewTimer(until.Sub(now))
		select {
		case <-wake:
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-s.stop:
			t.Stop()
			return nil
		}
		t.Stop()
	}
}

// deleteMessage deletes the message a receipt handle names.
func (s *Service) deleteMessage(ctx context.Context, q *queue, seq uint64) error {
	q.mu.Lock()
	found := q.remove(seq)
	q.mu.Unlock()
	if !found {
		return nil // already deleted: SQS accepts this
	}
	if err := s.stream.DeleteMsg(ctx, seq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		return fmt.Errorf("%w: sqs: delete message: %v", errdefs.ErrUnavailable, err)
	}
	return nil
}

// Receipt handles: base64url("1:<account>:<name>:<seq>:<gen>").
func receiptHandle(q *queue, m *message) string {
	return base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, "1:%s:%s:%d:%d", q.account, q.name, m.seq, m.gen))
}

func parseReceiptHandle(q *queue, h string) (seq uint64, gen uint32, err error) {
	raw, derr := base64.RawURLEncoding.DecodeString(h)
	parts := strings.Split(string(raw), ":")
	if derr != nil || len(h) > 1024 || len(parts) != 5 || parts[0] != "1" || parts[1] != q.account || parts[2] != q.name {
		return 0, 0, errReceiptHandleIsInvalid(h)
	}
	seq, err1 := strconv.ParseUint(parts[3], 10, 64)
	g, err2 := strconv.ParseUint(parts[4], 10, 32)
	if err1 != nil || err2 != nil {
		return 0, 0, errReceiptHandleIsInvalid(h)
	}
	return seq, uint32(g), nil
}

func (s *Service) changeVisibility(q *queue, handle string, vis int) error {
	seq, gen, err := parseReceiptHandle(q, handle)
	if err != nil {
		return err
	}
	if vis < 0 || vis > 43200 {
		return errInvalidParameterValue("Value " + strconv.Itoa(vis) + " for parameter VisibilityTimeout is invalid. Reason: Must be between 0 and 43200.")
	}
	q.mu.Lock()
	err = q.changeVisibility(seq, gen, time.Duration(vis)*time.Second, time.Now())
	q.mu.Unlock()
	switch {
	case errors.Is(err, errStaleReceipt), errors.Is(err, errNotInFlight), errors.Is(err, errUnknownRecord):
		return errMessageNotInflight()
	}
	return err
}

// listQueues returns the account's queue names with the prefix, sorted.
func (s *Service) listQueues(account, prefix string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var names []string
	for _, q := range s.queues {
		if q.account == account && strings.HasPrefix(q.name, prefix) {
			names = append(names, q.name)
		}
	}
	slices.Sort(names)
	return names
}

// SendToQueue sends body to the queue named by queueARN (a destination or
// dead-letter target), with string or number attributes. A queue that does
// not exist is an error wrapping errdefs.ErrNotFound.
func (s *Service) SendToQueue(ctx context.Context, queueARN string, body []byte, attrs map[string]MessageAttributeValue) error {
	parts := strings.Split(queueARN, ":")
	if len(parts) != 6 || parts[0] != "arn" || parts[2] != "sqs" {
		return fmt.Errorf("%w: sqs: %s is not a queue ARN", errdefs.ErrInvalid, clip(queueARN))
	}
	if parts[3] != s.cfg.Region {
		return fmt.Errorf("%w: sqs: queue %s is in another region", errdefs.ErrNotFound, clip(queueARN))
	}
	q, err := s.queue(parts[4], parts[5])
	if err != nil {
		return fmt.Errorf("%w: sqs: queue %s does not exist", errdefs.ErrNotFound, clip(queueARN))
	}
	_, err = s.send(ctx, q, string(body), attrs, nil)
	return err
}

// sweepLoop removes expired messages.
func (s *Service) sweepLoop() {
	defer close(s.done)
	t := time.NewTicker(sweepEvery)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		s.mu.Lock()
		qs := make([]*queue, 0, len(s.queues))
		for _, q := range s.queues {
			qs = append(qs, q)
		}
		s.mu.Unlock()
		for _, q := range qs {
			q.mu.Lock()
			old := q.expired(time.Now())
			for _, seq := range old {
				q.remove(seq)
			}
			q.mu.Unlock()
			for _, seq := range old {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				err := s.stream.DeleteMsg(ctx, seq)
				cancel()
				if err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
					s.log.Warn("sqs: removing an expired message", "err", err)
				}
			}
		}
	}
}
