package async

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"kindling/internal/errdefs"
)

// Stream and consumer names.
const (
	// StreamName is the JetStream stream holding queued events: a
	// work-queue stream (a message is removed when acknowledged) on file
	// storage.
	StreamName = "KINDLING_ASYNC"
	// consumerName is the durable pull consumer the pollers share.
	consumerName = "pollers"
	// ackWait is how long a delivered event may go without an ack or a
	// progress signal before JetStream delivers it again (to this or
	// another poller). Pollers signal progress every ackWait/3 while an
	// event runs, so only a crashed poller's events wait this long.
	ackWait = 10 * time.Second
	// maxAckPending bounds the events delivered and not yet acknowledged,
	// including those waiting for a retry (negatively acknowledged with a
	// delay).
	maxAckPending = 100000
)

// Queue is the durable queue of asynchronous invocations on JetStream. The
// frontend enqueues; pollers (poller.go), in this process or another one on
// the same NATS, take events from its durable consumer. It is safe for
// concurrent use.
type Queue struct {
	js       jetstream.JetStream
	cons     jetstream.Consumer
	accepted atomic.Uint64
}

// OpenQueue creates or opens the stream and the pollers' consumer.
// replicas is the stream's replica count (0 means 1).
func OpenQueue(ctx context.Context, js jetstream.JetStream, replicas int) (*Queue, error) {
	if replicas <= 0 {
		replicas = 1
	}
	stream, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        StreamName,
		Description: "Kindling asynchronous invocations",
		Subjects:    []string{subjectPrefix + ">"},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
		Discard:     jetstream.DiscardOld,
	})
	if err != nil {
		return nil, fmt.Errorf("async: stream %s: %w", StreamName, err)
	}
	cons, err := stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable:       consumerName,
		Description:   "Kindling async pollers",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       ackWait,
		MaxAckPending: maxAckPending,
		MaxDeliver:    -1,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		MaxWaiting:    512,
	})
	if err != nil {
		return nil, fmt.Errorf("async: consumer %s: %w", consumerName, err)
	}
	return &Queue{js: js, cons: cons}, nil
}

// Enqueue stores ev durably: it returns once JetStream has written it. An
// error wraps errdefs.ErrUnavailable.
func (q *Queue) Enqueue(ctx context.Context, ev *Event) error {
	if len(ev.Payload) > MaxPayload {
		return fmt.Errorf("%w: async: payload of %d bytes", errdefs.ErrTooLarge, len(ev.Payload))
	}
	if ev.Enqueued.IsZero() {
		ev.Enqueued = time.Now()
	}
	if _, err := q.js.PublishMsg(ctx, ev.encode()); err != nil {
		return fmt.Errorf("%w: async: enqueue: %v", errdefs.ErrUnavailable, err)
	}
	q.accepted.Add(1)
	return nil
}

// requeue stores ev as the next attempt of an event (a retry).
func (q *Queue) requeue(ctx context.Context, ev *Event) error {
	if _, err := q.js.PublishMsg(ctx, ev.encode()); err != nil {
		return fmt.Errorf("%w: async: requeue: %v", errdefs.ErrUnavailable, err)
	}
	return nil
}

// Accepted returns how many events this Queue has enqueued.
func (q *Queue) Accepted() uint64 { return q.accepted.Load() }
