package async

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"kindling/internal/awsapi"
	"kindling/internal/clock"
	"kindling/internal/config"
	"kindling/internal/errdefs"
	"kindling/internal/invoke"
)

// Functions resolves the function an event names.
type Functions interface {
	// Resolve returns the configuration to run for the function and
	// qualifier ("" means $LATEST), or an error wrapping
	// errdefs.ErrNotFound when it no longer exists.
	Resolve(ctx context.Context, account, name, qualifier string) (*config.Function, error)
}

// EventConfigs gives event invoke configurations (*config.EventConfigs).
type EventConfigs interface {
	// Get returns the configuration of the qualifier, or an error wrapping
	// errdefs.ErrNotFound when there is none (Lambda's defaults apply).
	Get(ctx context.Context, account, name, qualifier string) (*config.EventInvokeConfig, error)
}

// QueueSender delivers records and dead-letter messages to the server's SQS
// queues.
type QueueSender interface {
	// SendToQueue sends body to the queue named by its ARN. A missing
	// queue is an error wrapping errdefs.ErrNotFound.
	SendToQueue(ctx context.Context, queueARN string, body []byte, attrs []Attribute) error
}

// PollerConfig configures the pollers. All fields but Logger and
// Concurrency are required.
type PollerConfig struct {
	Queue        *Queue
	Invoker      invoke.Invoker
	Functions    Functions
	EventConfigs EventConfigs
	Queues       QueueSender
	// Clock scales the retry waits and the event age (Lambda time).
	Clock clock.Clock
	// Region is the server's region, for ARNs in records.
	Region string
	// Concurrency bounds the events run at once (default 32).
	Concurrency int
	Logger      *slog.Logger
}

// Stats counts what the pollers did since they started.
type Stats struct {
	Invocations      uint64 // attempts that reached the function
	Succeeded        uint64
	Retries          uint64 // retries scheduled
	OnSuccess        uint64 // records sent to OnSuccess destinations
	OnFailure        uint64 // records sent to OnFailure destinations
	DeadLettered     uint64 // events sent to dead-letter queues
	Dropped          uint64 // failed events with nowhere to go, and unreadable ones
	DeliveryFailures uint64 // records or dead-letter messages that could not be delivered
}

type counters struct {
	invocations, succeeded, retries, onSuccess, onFailure, deadLettered, dropped, deliveryFailures atomic.Uint64
}

// Poller takes events from the Queue and runs them through the invoke path,
// applying the retry policy (Decide) and sending records to destinations.
//
// One fetch goroutine pulls as many events as there are free slots (up to
// Concurrency) and starts a goroutine per event. An event's message is
// acknowledged only once the event has reached its final disposition (a
// destination, the dead-letter queue, dropped) or its next attempt has been
// queued; until then a progress signal every ackWait/3 keeps JetStream from
// delivering it again. A poller that dies leaves its events unacknowledged:
// JetStream delivers them again after ackWait, here or to another poller,
// so every accepted event runs at least once.
type Poller struct {
	cfg    PollerConfig
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	n      counters
}

// StartPoller starts the pollers. Close stops them.
func StartPoller(cfg PollerConfig) *Poller {
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 32
	}
	p := &Poller{cfg: cfg, log: cfg.Logger}
	if p.log == nil {
		p.log = slog.Default()
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	p.wg.Add(1)
	go p.fetchLoop()
	return p
}

// Close stops fetching, cancels the events being run (they are left
// unacknowledged, so JetStream delivers them again) and waits for the
// goroutines.
func (p *Poller) Close() {
	p.cancel()
	p.wg.Wait()
}

// Stats returns the counters.
func (p *Poller) Stats() Stats {
	return Stats{
		Invocations: p.n.invocations.Load(), Succeeded: p.n.succeeded.Load(), Retries: p.n.retries.Load(),
		OnSuccess: p.n.onSuccess.Load(), OnFailure: p.n.onFailure.Load(), DeadLettered: p.n.deadLettered.Load(),
		Dropped: p.n.dropped.Load(), DeliveryFailures: p.n.deliveryFailures.Load(),
	}
}

func (p *Poller) fetchLoop() {
	defer p.wg.Done()
	n := p.cfg.Concurrency
	slots := make(chan struct{}, n)
	for range n {
		slots <- struct{}{}
	}
	failures := 0
	for {
		// Wait for one free slot, then take every free one.
		select {
		case <-slots:
		case <-p.ctx.Done():
			return
		}
		k := 1
	take:
		for k < n {
			select {
			case <-slots:
				k++
			default:
				break take
			}
		}
		batch, err := p.cfg.Queue.cons.Fetch(k, jetstream.FetchMaxWait(time.Second))
		got := 0
		if err == nil {
			for msg := range batch.Messages() {
				got++
				p.wg.Add(1)
				go func() {
					defer func() { slots <- struct{}{}; p.wg.Done() }()
					p.handle(msg)
				}()
			}
			err = batch.Error()
		}
		for range k - got {
			slots <- struct{}{}
		}
		if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, jetstream.ErrNoMessages) {
			if p.ctx.Err() != nil {
				return
			}
			failures++
			p.log.Warn("async: fetching events", "err", err)
			select {
			case <-time.After(min(time.Duration(failures)*100*time.Millisecond, 5*time.Second)):
			case <-p.ctx.Done():
				return
			}
			continue
		}
		failures = 0
	}
}

// age is the event's age in Lambda time.
func (p *Poller) age(ev *Event, now time.Time) time.Duration {
	return time.Duration(float64(now.Sub(ev.Enqueued)) / p.cfg.Clock.Factor())
}

// attempt is the end of one attempt.
type attempt struct {
	outcome Outcome
	res     *invoke.Result // when the function ran
	err     error          // when it did not
}

// handle runs one delivered event to its next step.
func (p *Poller) handle(msg jetstream.Msg) {
	ev, err := DecodeEvent(msg.Headers(), msg.Data())
	if err != nil {
		n := p.n.dropped.Add(1)
		p.log.Error("async: dropping an unreadable event", "err", err, "subject", msg.Subject(), "dropped", n)
		p.settle(msg.Term())
		return
	}
	now := time.Now()
	if wait := ev.NotBefore.Sub(now); wait > 0 {
		p.settle(msg.NakWithDelay(wait))
		return
	}
	ctx := p.ctx
	fn, ferr := p.cfg.Functions.Resolve(ctx, ev.Account, ev.Function, ev.Qualifier)
	if errors.Is(ferr, errdefs.ErrNotFound) {
		n := p.n.dropped.Add(1)
		p.log.Warn("async: dropping an event of a function that no longer exists", "requestId", ev.RequestID,
			"function", ev.Function, "qualifier", ev.Qualifier, "dropped", n)
		p.settle(msg.Term())
		return
	}
	ecfg, err := p.cfg.EventConfigs.Get(ctx, ev.Account, ev.Function, orLatest(ev.Qualifier))
	if err != nil && !errors.Is(err, errdefs.ErrNotFound) {
		p.log.Warn("async: reading the event invoke config", "requestId", ev.RequestID, "err", err)
		p.settle(msg.NakWithDelay(time.Second))
		return
	}
	limits := Limits{MaxRetryAttempts: ecfg.RetryAttempts(), MaxEventAge: ecfg.MaxEventAge()}
	if Expired(p.age(ev, now), limits) {
		p.final(msg, ev, fn, ecfg, Decision{Action: Fail, Condition: CondEventAgeExceeded}, attempt{})
		return
	}

	var at attempt
	if ferr == nil {
		ferr = fn.CanInvoke()
	}
	if ferr != nil {
		at = attempt{outcome: SystemError, err: ferr}
	} else {
		stop := p.heartbeat(msg)
		res, err := p.invoke(ctx, &invoke.Request{
			RequestID: ev.RequestID,
			Function:  fn,
			Qualifier: ev.Qualifier,
			Payload:   ev.Payload,
			TraceID:   ev.TraceID,
		})
		stop()
		if ctx.Err() != nil {
			// Shutting down: leave the event for the next poller.
			p.settle(msg.Nak())
			return
		}
		switch {
		case err == nil && res.FunctionError == "":
			at = attempt{outcome: Succeeded, res: res}
		case err == nil:
			at = attempt{outcome: FunctionError, res: res}
		case errors.Is(err, errdefs.ErrThrottled):
			at = attempt{outcome: Throttled, err: err}
		default:
			at = attempt{outcome: SystemError, err: err}
		}
		if at.res != nil {
			p.n.invocations.Add(1)
		}
	}
	ev.State = ev.State.Next(at.outcome)
	d := Decide(ev.State, at.outcome, p.age(ev, time.Now()), limits)
	if d.Action != Retry {
		p.final(msg, ev, fn, ecfg, d, at)
		return
	}
	wait := p.cfg.Clock.Scale(d.Delay)
	ev.NotBefore = time.Now().Add(wait)
	if err := p.cfg.Queue.requeue(ctx, ev); err != nil {
		// The attempt is not recorded; the same message runs again.
		p.log.Warn("async: queueing a retry", "requestId", ev.RequestID, "err", err)
		p.settle(msg.NakWithDelay(wait))
		return
	}
	p.n.retries.Add(1)
	p.log.Debug("async: retry scheduled", "requestId", ev.RequestID, "function", ev.Function,
		"outcome", at.outcome, "in", wait, "err", at.err)
	p.settle(msg.Ack())
}

// In-place retries of capacity errors (see invoke).
const (
	capacityWait       = 10 * time.Millisecond
	capacityWaitMax    = 200 * time.Millisecond
	capacityWaitBudget = 3 * time.Second
)

// invoke runs one attempt. When the data plane has no room for it now
// (throttled, or no capacity: ErrThrottled, ErrUnavailable), the attempt
// waits briefly and tries again, holding its slot, for up to
// capacityWaitBudget before the error counts as the attempt's outcome. The
// pollers thereby run at the rate the data plane can take instead of
// turning a burst of events into a burst of durable backoffs; the
// exponential backoff of the retry policy is for longer shortages.
func (p *Poller) invoke(ctx context.Context, req *invoke.Request) (*invoke.Result, error) {
	deadline := time.Now().Add(capacityWaitBudget)
	wait := capacityWait
	for {
		res, err := p.cfg.Invoker.Invoke(ctx, req)
		if err == nil || !(errors.Is(err, errdefs.ErrThrottled) || errors.Is(err, errdefs.ErrUnavailable)) ||
			time.Now().Add(wait).After(deadline) {
			return res, err
		}
		// Jitter spreads the waiting slots over the environments freed.
		t := time.NewTimer(wait/2 + rand.N(wait))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		}
		wait = min(2*wait, capacityWaitMax)
	}
}

// final sends an event that is done to where its decision says, then
// acknowledges it.
func (p *Poller) final(msg jetstream.Msg, ev *Event, fn *config.Function, ecfg *config.EventInvokeConfig, d Decision, at attempt) {
	ctx := p.ctx
	success := d.Action == Done
	if success {
		p.n.succeeded.Add(1)
	}
	var resp *ResponseContext
	var payload []byte
	status := http.StatusInternalServerError
	if at.res != nil {
		status = http.StatusOK
		version := at.res.ExecutedVersion
		if version == "" && fn != nil {
			version = fn.Version
		}
		resp = &ResponseContext{StatusCode: status, ExecutedVersion: version, FunctionError: at.res.FunctionError}
		payload = at.res.Payload
	} else if at.outcome == Throttled {
		status = http.StatusTooManyRequests
	}
	if dest := ecfg.Destination(success); dest != "" {
		arn := "arn:aws:lambda:" + p.cfg.Region + ":" + ev.Account + ":function:" + ev.Function + ":" + orLatest(ev.Qualifier)
		rec := newRecord(ev, arn, d.Condition, time.Now(), resp, payload)
		if err := p.deliverRecord(ctx, ev.Account, dest, rec); err != nil {
			n := p.n.deliveryFailures.Add(1)
			p.log.Warn("async: destination delivery failed", "requestId", ev.RequestID, "function", ev.Function,
				"destination", dest, "err", err, "deliveryFailures", n)
		} else if success {
			p.n.onSuccess.Add(1)
		} else {
			p.n.onFailure.Add(1)
		}
	} else if !success && fn != nil && fn.DeadLetterTarget != "" {
		msgText := ""
		switch {
		case at.res != nil:
			msgText = errorMessage(at.res.Payload)
		case at.err != nil:
			msgText, _ = awsapiMessage(at.err)
		default:
			msgText = "Event age exceeded " + ecfg.MaxEventAge().String()
		}
		body := ev.Payload
		if len(body) == 0 {
			body = []byte("{}")
		}
		err := sameAccount(ev.Account, fn.DeadLetterTarget)
		if err == nil {
			err = p.cfg.Queues.SendToQueue(ctx, fn.DeadLetterTarget, body, deadLetterAttributes(ev.RequestID, status, msgText))
		}
		if err != nil {
			n := p.n.deliveryFailures.Add(1)
			p.log.Warn("async: dead-letter delivery failed", "requestId", ev.RequestID, "function", ev.Function,
				"target", fn.DeadLetterTarget, "err", err, "deliveryFailures", n)
		} else {
			p.n.deadLettered.Add(1)
		}
	} else if !success {
		n := p.n.dropped.Add(1)
		p.log.Warn("async: event dropped", "requestId", ev.RequestID, "function", ev.Function,
			"condition", d.Condition, "approximateInvokeCount", ev.State.Invocations, "dropped", n)
	}
	p.settle(msg.Ack())
}

// awsapiMessage is the user-facing message of a platform error.
func awsapiMessage(err error) (string, int) {
	e, internal := awsapi.FromError(err)
	if internal {
		return "An internal error occurred", e.Status
	}
	return e.Message, e.Status
}

// sameAccount checks that a destination ARN is of the event's account:
// one account never writes to another's queues or functions.
func sameAccount(account, arn string) error {
	d, err := ParseDestination(arn)
	if err != nil {
		return err
	}
	if d.Account != account {
		return fmt.Errorf("%w: destination %s is not in account %s", errdefs.ErrInvalid, clip(arn), account)
	}
	return nil
}

// deliverRecord sends rec to a destination ARN of account.
func (p *Poller) deliverRecord(ctx context.Context, account, dest string, rec *Record) error {
	if err := sameAccount(account, dest); err != nil {
		return err
	}
	d, err := ParseDestination(dest)
	if err != nil {
		return err
	}
	body, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	switch d.Kind {
	case DestQueue:
		return p.cfg.Queues.SendToQueue(ctx, dest, body, nil)
	case DestFunction:
		if len(body) > MaxPayload {
			return errors.New("the record is larger than the asynchronous payload limit")
		}
		return p.cfg.Queue.Enqueue(ctx, &Event{
			RequestID: awsapi.NewRequestID(), Account: d.Account, Function: d.Name, Qualifier: d.Qualifier,
			Payload: body, Enqueued: time.Now(),
		})
	}
	return errors.New("unknown destination kind")
}

// heartbeat signals progress on msg until stop is called.
func (p *Poller) heartbeat(msg jetstream.Msg) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(ackWait / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if err := msg.InProgress(); err != nil {
					p.log.Warn("async: progress signal", "err", err)
				}
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// settle logs a failed acknowledgement: the event will be delivered again
// (at least once).
func (p *Poller) settle(err error) {
	if err != nil && p.ctx.Err() == nil {
		p.log.Warn("async: acknowledging an event", "err", err)
	}
}

func orLatest(q string) string {
	if q == "" {
		return config.LatestVersion
	}
	return q
}
