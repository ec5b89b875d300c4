package sqs

import (
	"container/heap"
	"errors"
	"sync"
	"time"
)

// MessageAttributeValue is a message attribute as the SQS API carries it.
type MessageAttributeValue struct {
	DataType    string  `json:"DataType"`
	StringValue *string `json:"StringValue,omitempty"`
	BinaryValue []byte  `json:"BinaryValue,omitempty"`
}

// message is one message of a queue.
//
// Lifecycle: a message is delayed (visibleAt in the future, never received),
// visible (visibleAt not after now), or in flight (received, visibleAt in the
// future), until it is deleted or expires (retention). Receiving makes it in
// flight for the visibility timeout; when that passes it is visible again.
type message struct {
	seq      uint64 // stream sequence: the message's durable identity
	id       string
	body     string
	attrs    map[string]MessageAttributeValue
	md5Body  string
	md5Attrs string
	sent     time.Time

	receiveCount int
	firstReceive time.Time
	visibleAt    time.Time
	// gen counts receives; a receipt handle names the receive it came from.
	gen uint32
}

// entry is a queued reference to a message; it is stale (skipped) when the
// message has changed since it was queued.
type entry struct {
	m   *message
	gen uint32
	at  time.Time // for the later heap: the visibleAt it was queued with
}

// laterHeap orders invisible messages by the time they become visible.
type laterHeap []entry

func (h laterHeap) Len() int           { return len(h) }
func (h laterHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h laterHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *laterHeap) Push(x any)        { *h = append(*h, x.(entry)) }
func (h *laterHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

// queue is one queue's state in memory. Its messages are also in the
// stream; this is the index over them: which are visible (ready, FIFO by
// the time they became visible) and which become visible when (later).
//
// mu guards every field below it; it is a leaf lock (nothing is called
// while it is held but the queue's own methods).
type queue struct {
	account, name string

	mu       sync.Mutex
	attrs    attributes
	created  time.Time
	modified time.Time
	msgs     map[uint64]*message
	ready    []entry // visible messages, oldest first; ready[head:] is live
	head     int
	later    laterHeap
	// wake is closed (and replaced) when a message becomes visible or the
	// queue is deleted, waking long polls.
	wake    chan struct{}
	deleted bool
}

func newQueue(account, name string, attrs attributes, created time.Time) *queue {
	return &queue{account: account, name: name, attrs: attrs, created: created, modified: created,
		msgs: map[uint64]*message{}, wake: make(chan struct{})}
}

func (q *queue) signal() {
	close(q.wake)
	q.wake = make(chan struct{})
}

// add indexes a stored message.
func (q *queue) add(m *message, now time.Time) {
	q.msgs[m.seq] = m
	if m.visibleAt.After(now) {
		heap.Push(&q.later, entry{m: m, gen: m.gen, at: m.visibleAt})
		return
	}
	q.ready = append(q.ready, entry{m: m, gen: m.gen})
	q.signal()
}

// promote moves the messages that have become visible to ready.
func (q *queue) promote(now time.Time) {
	moved := false
	for len(q.later) > 0 && !q.later[0].at.After(now) {
		e := heap.Pop(&q.later).(entry)
		if q.msgs[e.m.seq] != e.m || e.m.gen != e.gen || !e.m.visibleAt.Equal(e.at) {
			continue // deleted, received again or its visibility changed
		}
		q.ready = append(q.ready, entry{m: e.m, gen: e.gen})
		moved = true
	}
	if moved {
		q.signal()
	}
}

// receive takes up to max visible messages and makes them invisible for vis
// (0: they stay visible). It returns copies, safe to read without the lock.
func (q *queue) receive(max int, vis time.Duration, now time.Time) []message {
	q.promote(now)
	var out []message
	var again []entry // received with a zero timeout: visible after this receive
	for len(out) < max && q.head < len(q.ready) {
		e := q.ready[q.head]
		q.ready[q.head] = entry{}
		q.head++
		m := e.m
		if q.msgs[m.seq] != m || m.gen != e.gen || m.visibleAt.After(now) {
			continue
		}
		m.receiveCount++
		if m.firstReceive.IsZero() {
			m.firstReceive = now
		}
		m.gen++
		m.visibleAt = now.Add(vis)
		if vis > 0 {
			heap.Push(&q.later, entry{m: m, gen: m.gen, at: m.visibleAt})
		} else {
			again = append(again, entry{m: m, gen: m.gen})
		}
		out = append(out, *m)
	}
	q.compact()
	q.ready = append(q.ready, again...)
	return out
}

// compact drops the consumed prefix of ready when it dominates.
func (q *queue) compact() {
	if q.head > 64 && q.head*2 > len(q.ready) {
		n := copy(q.ready, q.ready[q.head:])
		clear(q.ready[n:])
		q.ready = q.ready[:n]
		q.head = 0
	}
}

// nextVisible returns when the earliest invisible message becomes visible.
func (q *queue) nextVisible() (time.Time, bool) {
	for len(q.later) > 0 {
		e := q.later[0]
		if q.msgs[e.m.seq] == e.m && e.m.gen == e.gen && e.m.visibleAt.Equal(e.at) {
			return e.at, true
		}
		heap.Pop(&q.later)
	}
	return time.Time{}, false
}

// remove forgets a message; it reports whether it was there.
func (q *queue) remove(seq uint64) bool {
	if _, ok := q.msgs[seq]; !ok {
		return false
	}
	delete(q.msgs, seq)
	return true
}

var (
	errNotInFlight   = errors.New("message not in flight")
	errStaleReceipt  = errors.New("receipt handle of an earlier receive")
	errUnknownRecord = errors.New("no such message")
)

// changeVisibility sets an in-flight message's visibility timeout to vis
// from now.
func (q *queue) changeVisibility(seq uint64, gen uint32, vis time.Duration, now time.Time) error {
	m, ok := q.msgs[seq]
	if !ok {
		return errUnknownRecord
	}
	if m.gen != gen {
		return errStaleReceipt
	}
	if !m.visibleAt.After(now) {
		return errNotInFlight
	}
	m.visibleAt = now.Add(vis)
	if vis > 0 {
		heap.Push(&q.later, entry{m: m, gen: m.gen, at: m.visibleAt})
	} else {
		q.ready = append(q.ready, entry{m: m, gen: m.gen})
		q.signal()
	}
	return nil
}

// counts returns the visible, in-flight and delayed message counts.
func (q *queue) counts(now time.Time) (visible, inflight, delayed int) {
	for _, m := range q.msgs {
		switch {
		case !m.visibleAt.After(now):
			visible++
		case m.receiveCount > 0:
			inflight++
		default:
			delayed++
		}
	}
	return
}

// expired returns the messages older than the retention period.
func (q *queue) expired(now time.Time) []uint64 {
	cutoff := now.Add(-time.Duration(q.attrs.MessageRetentionPeriod) * time.Second)
	var out []uint64
	for seq, m := range q.msgs {
		if m.sent.Before(cutoff) {
			out = append(out, seq)
		}
	}
	return out
}

// purge forgets every message and returns their sequences.
func (q *queue) purge() []uint64 {
	out := make([]uint64, 0, len(q.msgs))
	for seq := range q.msgs {
		out = append(out, seq)
	}
	q.msgs = map[uint64]*message{}
	q.ready, q.head, q.later = nil, 0, nil
	return out
}
