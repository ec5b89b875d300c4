package logs

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"kindling/internal/clock"
	"kindling/internal/errdefs"
)

// DefaultMaxBytes is the store's default budget for all events of all
// accounts, counted as CloudWatch Logs counts them (message + 26 bytes).
const DefaultMaxBytes = 256 << 20

// defaultQueueBytes bounds output accepted but not yet stored.
const defaultQueueBytes = 16 << 20

// sweepEvery is how often (in Lambda time, scaled by the clock) retention
// is enforced; minSweep bounds the scaled interval from below.
const (
	sweepEvery = time.Hour
	minSweep   = 20 * time.Millisecond
)

// RetentionDays are the values PutRetentionPolicy accepts, as CloudWatch
// Logs does.
var RetentionDays = []int{1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653}

// Config configures a Store.
type Config struct {
	// JetStream holds the journal; nil keeps logs in memory only.
	JetStream jetstream.JetStream
	// MaxBytes is the budget for stored events (0: DefaultMaxBytes). Over
	// it, the oldest batches of any group are evicted first.
	MaxBytes int64
	// Clock scales retention and the sweep interval.
	Clock clock.Clock
	// Now is the wall clock (nil: time.Now); tests set it.
	Now func() time.Time
	// QueueBytes bounds output waiting to be stored (0: 16 MiB); Append
	// drops and counts what does not fit.
	QueueBytes int64
	Logger     *slog.Logger
}

// Event is one stored log event.
type Event struct {
	// Seq orders the events of the store and is unique in it: the batch
	// number << 20 | the event's index in its batch.
	Seq       uint64
	Timestamp int64 // ms since the epoch
	Ingestion int64 // ms since the epoch
	Message   string
	jsSeq     uint64 // the journal message holding it; 0 if none
}

// ID is the event's eventId.
func (e *Event) ID() string { return fmt.Sprintf("%020d", e.Seq) }

func (e *Event) size() int64 { return int64(len(e.Message)) + EventOverhead }

type groupKey struct{ account, name string }

type group struct {
	key       groupKey
	created   int64
	retention int // days; 0 = never expire
	bytes     int64
	streams   map[string]*stream
}

type stream struct {
	g       *group
	name    string
	created int64
	// events[head:] are the stream's events in Seq order; their timestamps
	// never decrease (a chunk stamped earlier than the last event is
	// stamped with the last event's time).
	events     []Event
	head       int
	bytes      int64
	lastIngest int64
	dead       bool // removed from its group
}

func (st *stream) live() []Event { return st.events[st.head:] }

// batchRef is one batch in ingestion order, for eviction.
type batchRef struct {
	st   *stream
	last uint64 // Seq of its last event
}

// item is one Append or Platform call on its way to the writer.
type item struct {
	account, group, stream string
	at                     time.Time
	data                   []byte
	platform               bool
	sync                   chan struct{} // a Sync marker, nothing else set
}

// Store keeps function logs: per account, log groups of log streams of
// events, bounded by a byte budget and each group's retention.
//
// Threads: Append and Platform (any goroutine, the worker's) only queue;
// one writer goroutine splits lines, journals and applies batches; one
// sweeper goroutine enforces retention; queries run on the callers'
// goroutines. mu guards groups, fifo, total and nextBatch; the journal is
// never called with mu held. inMu orders Append against Close.
type Store struct {
	cfg Config
	now func() time.Time
	j   journal
	log *slog.Logger

	inMu    sync.RWMutex // read: sending on in; write: closing it
	in      chan item
	closed  bool // guarded by inMu
	queued  atomic.Int64
	dropped atomic.Uint64
	stop    chan struct{}
	wg      sync.WaitGroup

	mu        sync.RWMutex
	groups    map[groupKey]*group
	fifo      []batchRef
	total     int64
	nextBatch uint64
}

// Open loads the journal (when cfg.JetStream is set) and starts the
// store's goroutines.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	if cfg.QueueBytes <= 0 {
		cfg.QueueBytes = defaultQueueBytes
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Clock == (clock.Clock{}) {
		cfg.Clock = clock.Real()
	}
	s := &Store{
		cfg:       cfg,
		now:       cfg.Now,
		log:       cfg.Logger,
		in:        make(chan item, 4096),
		stop:      make(chan struct{}),
		groups:    make(map[groupKey]*group),
		nextBatch: 1,
	}
	if s.now == nil {
		s.now = time.Now
	}
	if cfg.JetStream != nil {
		// The journal's bytes include JSON and subjects: give it room so
		// that it holds at least what memory does.
		j, err := openJournal(ctx, cfg.JetStream, 2*cfg.MaxBytes)
		if err != nil {
			return nil, err
		}
		s.j = j
		start := time.Now()
		var n int
		err = j.load(func(m groupMeta) {
			g := s.ensureGroup(groupKey{m.Account, m.Group}, m.Created)
			g.retention = m.Retention
		}, func(r *record, seq uint64) {
			n++
			s.apply(r, seq)
			if r.Batch >= s.nextBatch {
				s.nextBatch = r.Batch + 1
			}
		})
		if err != nil {
			return nil, fmt.Errorf("loading logs: %w", err)
		}
		s.log.Info("logs loaded", "batches", n, "bytes", s.total, "took", time.Since(start).Round(time.Millisecond))
	}
	s.wg.Add(2)
	go s.writer()
	go s.sweeper()
	return s, nil
}

// Close stores what is queued, ends partial lines and stops the
// goroutines. Append and Platform calls after Close are dropped.
func (s *Store) Close() error {
	s.inMu.Lock()
	if s.closed {
		s.inMu.Unlock()
		return nil
	}
	s.closed = true
	close(s.in)
	s.inMu.Unlock()
	close(s.stop)
	s.wg.Wait()
	return nil
}

// Dropped reports how many chunks of output were dropped because the store
// lagged.
func (s *Store) Dropped() uint64 { return s.dropped.Load() }

// Append queues a chunk of a function's output for its log stream; a line
// may span chunks. The group is created by its first event. Append never
// blocks: when the store lags, the chunk is dropped and counted. data is
// copied.
func (s *Store) Append(account, group, stream string, at time.Time, data []byte) {
	if len(data) == 0 {
		return
	}
	s.enqueue(item{account: account, group: group, stream: stream, at: at, data: data})
}

// Platform queues one of the platform's own lines (START, END, REPORT,
// ...) as one event, multi-line or not; it ends any partial line of output
// before it. Like Append, it never blocks.
func (s *Store) Platform(account, group, stream string, at time.Time, line string) {
	if line == "" {
		return
	}
	s.enqueue(item{account: account, group: group, stream: stream, at: at, data: []byte(line), platform: true})
}

// GroupName is the log group of a function, as Lambda names it.
func GroupName(function string) string { return "/aws/lambda/" + function }

func (s *Store) enqueue(it item) {
	n := int64(len(it.data))
	if s.queued.Add(n) > s.cfg.QueueBytes {
		s.queued.Add(-n)
		s.dropped.Add(1)
		return
	}
	it.data = append([]byte(nil), it.data...)
	s.inMu.RLock()
	defer s.inMu.RUnlock()
	if s.closed {
		s.queued.Add(-n)
		s.dropped.Add(1)
		return
	}
	select {
	case s.in <- it:
	default:
		s.queued.Add(-n)
		s.dropped.Add(1)
	}
}

// Sync waits until everything queued before it is stored (or ctx ends).
// For tests and orderly shutdown; it may block.
func (s *Store) Sync(ctx context.Context) error {
	done := make(chan struct{})
	s.inMu.RLock()
	if s.closed {
		s.inMu.RUnlock()
		return nil
	}
	select {
	case s.in <- item{sync: done}:
	case <-ctx.Done():
		s.inMu.RUnlock()
		return ctx.Err()
	}
	s.inMu.RUnlock()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

type streamKey struct{ account, group, stream string }

// writer is the writer goroutine: it turns queued chunks into batches of
// events, keeping each stream's unfinished last line until the rest of it,
// or a platform line, arrives.
// lingerWindow is how long the writer gathers output before it journals it:
// one batch per stream per window rather than one per chunk (an invocation
// brings at least START, END and REPORT), so that journaling costs little
// on the invoke path's CPU. Logs show up that much later, as in CloudWatch.
const lingerWindow = 20 * time.Millisecond

// maxPending bounds what the writer gathers before it journals at once.
const maxPending = 256 << 10

func (s *Store) writer() {
	defer s.wg.Done()
	carries := map[streamKey][]byte{}
	pending := map[streamKey][]rawEvent{}
	var order []streamKey // streams in the order their first line came
	pendingBytes := 0
	flush := func() {
		for _, key := range order {
			s.write(key, pending[key])
			delete(pending, key)
		}
		order, pendingBytes = order[:0], 0
	}
	add := func(it item) {
		s.queued.Add(-int64(len(it.data)))
		key := streamKey{it.account, it.group, it.stream}
		var lines []string
		if it.platform {
			if c := carries[key]; c != nil {
				lines = append(lines, string(c))
				delete(carries, key)
			}
			lines = append(lines, clampMessage(string(it.data)))
		} else {
			var rest []byte
			lines, rest = splitLines(carries[key], it.data)
			if rest != nil {
				carries[key] = rest
			} else {
				delete(carries, key)
			}
		}
		if len(lines) == 0 {
			return
		}
		if _, ok := pending[key]; !ok {
			order = append(order, key)
		}
		ts := it.at.UnixMilli()
		for _, l := range lines {
			pending[key] = append(pending[key], rawEvent{TS: ts, Msg: l})
			pendingBytes += len(l)
		}
	}
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	lingering := false
	for {
		select {
		case it, ok := <-s.in:
			if !ok {
				flush()
				for key, c := range carries {
					s.write(key, []rawEvent{{TS: s.now().UnixMilli(), Msg: string(c)}})
				}
				return
			}
			if it.sync != nil {
				flush()
				close(it.sync)
				continue
			}
			add(it)
			if pendingBytes >= maxPending {
				flush()
			} else if len(order) > 0 && !lingering {
				linger.Reset(lingerWindow)
				lingering = true
			}
		case <-linger.C:
			lingering = false
			flush()
		}
	}
}

// write stores events as one batch of stream key.
func (s *Store) write(key streamKey, events []rawEvent) {
	if len(events) == 0 {
		return
	}
	ingest := s.now().UnixMilli()
	rec := &record{V: recordVersion, Account: key.account, Group: key.group, Stream: key.stream, Ingest: ingest,
		Events: events}
	s.mu.Lock()
	rec.Batch = s.nextBatch
	s.nextBatch++
	_, known := s.groups[groupKey{key.account, key.group}]
	s.mu.Unlock()
	if s.j != nil && !known {
		if err := s.j.putGroup(groupMeta{Account: key.account, Group: key.group, Created: ingest}); err != nil {
			s.log.Warn("logs: storing a new group", "group", key.group, "err", err)
		}
	}
	var seq uint64
	if s.j != nil {
		var err error
		if seq, err = s.j.publish(rec); err != nil {
			s.log.Warn("logs: journaling a batch (kept in memory only)", "group", key.group, "err", err)
		}
	}
	s.mu.Lock()
	s.apply(rec, seq)
	s.mu.Unlock()
}

// ensureGroup returns the group, creating it. s.mu held (or not yet shared).
func (s *Store) ensureGroup(k groupKey, created int64) *group {
	g := s.groups[k]
	if g == nil {
		g = &group{key: k, created: created, streams: make(map[string]*stream)}
		s.groups[k] = g
	}
	return g
}

// apply adds a batch to memory and evicts over the budget. s.mu held.
func (s *Store) apply(r *record, jsSeq uint64) {
	if len(r.Events) == 0 || len(r.Events) >= 1<<20 {
		return
	}
	g := s.ensureGroup(groupKey{r.Account, r.Group}, r.Ingest)
	st := g.streams[r.Stream]
	if st == nil {
		st = &stream{g: g, name: r.Stream, created: r.Ingest}
		g.streams[r.Stream] = st
	}
	var last int64
	if live := st.live(); len(live) > 0 {
		last = live[len(live)-1].Timestamp
	}
	for i, e := range r.Events {
		ts := max(e.TS, last)
		ev := Event{Seq: r.Batch<<20 | uint64(i), Timestamp: ts, Ingestion: r.Ingest, Message: e.Msg, jsSeq: jsSeq}
		st.events = append(st.events, ev)
		n := ev.size()
		st.bytes += n
		g.bytes += n
		s.total += n
	}
	st.lastIngest = r.Ingest
	s.fifo = append(s.fifo, batchRef{st: st, last: st.events[len(st.events)-1].Seq})
	for s.total > s.cfg.MaxBytes && len(s.fifo) > 0 {
		ref := s.fifo[0]
		s.fifo = s.fifo[1:]
		if ref.st.dead {
			continue
		}
		live := ref.st.live()
		n := sort.Search(len(live), func(i int) bool { return live[i].Seq > ref.last })
		s.dropPrefix(ref.st, n)
	}
}

// dropPrefix removes the first n live events of st, and st itself when it
// becomes empty. s.mu held.
func (s *Store) dropPrefix(st *stream, n int) {
	if n <= 0 {
		return
	}
	for i := st.head; i < st.head+n; i++ {
		sz := st.events[i].size()
		st.bytes -= sz
		st.g.bytes -= sz
		s.total -= sz
		st.events[i] = Event{}
	}
	st.head += n
	if st.head == len(st.events) {
		st.events, st.head = nil, 0
		st.dead = true
		delete(st.g.streams, st.name)
		return
	}
	if st.head > 64 && st.head > len(st.events)/2 {
		st.events = append([]Event(nil), st.events[st.head:]...)
		st.head = 0
	}
}

// cutoff is the oldest timestamp g keeps at now (ms); 0 keeps everything.
func (s *Store) cutoff(g *group, now time.Time) int64 {
	if g.retention == 0 {
		return 0
	}
	return now.Add(-s.cfg.Clock.Scale(time.Duration(g.retention) * 24 * time.Hour)).UnixMilli()
}

// sweeper is the sweeper goroutine.
func (s *Store) sweeper() {
	defer s.wg.Done()
	every := max(s.cfg.Clock.Scale(sweepEvery), minSweep)
	t := time.NewTicker(every)
	defer t.Stop()
	var reported uint64
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		s.Sweep()
		if d := s.dropped.Load(); d != reported {
			s.log.Warn("logs: output dropped because the store lagged", "chunks", d-reported)
			reported = d
		}
	}
}

// Sweep removes the events past their group's retention now, from memory
// and from the journal. The sweeper calls it periodically.
func (s *Store) Sweep() {
	type purge struct {
		k        streamKey
		keepFrom uint64
	}
	var purges []purge
	now := s.now()
	s.mu.Lock()
	for _, g := range s.groups {
		cut := s.cutoff(g, now)
		if cut == 0 {
			continue
		}
		for _, st := range g.streams {
			live := st.live()
			n := sort.Search(len(live), func(i int) bool { return live[i].Timestamp >= cut })
			if n == 0 {
				continue
			}
			s.dropPrefix(st, n)
			p := purge{k: streamKey{g.key.account, g.key.name, st.name}}
			if !st.dead {
				p.keepFrom = st.live()[0].jsSeq
				if p.keepFrom == 0 {
					continue // not journaled: nothing to purge
				}
			}
			purges = append(purges, p)
		}
	}
	kept := s.fifo[:0]
	for _, ref := range s.fifo {
		if !ref.st.dead && len(ref.st.live()) > 0 && ref.st.live()[0].Seq <= ref.last {
			kept = append(kept, ref)
		}
	}
	clear(s.fifo[len(kept):])
	s.fifo = kept
	s.mu.Unlock()
	if s.j == nil {
		return
	}
	for _, p := range purges {
		if err := s.j.purgeStream(p.k.account, p.k.group, p.k.stream, p.keepFrom); err != nil {
			s.log.Warn("logs: purging expired events", "group", p.k.group, "err", err)
		}
	}
}

// Errors the queries return, wrapping errdefs classes; their text is
// CloudWatch Logs' message.
var (
	errNoGroup  = fmt.Errorf("%w: The specified log group does not exist.", errdefs.ErrNotFound)
	errNoStream = fmt.Errorf("%w: The specified log stream does not exist.", errdefs.ErrNotFound)
	errExists   = fmt.Errorf("%w: The specified log group already exists", errdefs.ErrConflict)
)
