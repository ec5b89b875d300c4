package server

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"

	"kindling/internal/async"
	"kindling/internal/clock"
	"kindling/internal/config"
	"kindling/internal/invoke"
	"kindling/internal/natsembed"
	"kindling/internal/sigv4"
	"kindling/internal/sqs"
)

// asyncParts are the components of asynchronous invocation: the durable
// event queue, the event invoke configurations, the SQS service that
// destinations and dead-letter queues deliver to, and the pollers.
type asyncParts struct {
	queue   *async.Queue
	configs *config.EventConfigs
	sqs     *sqs.Service
	poller  *async.Poller
	log     *slog.Logger
}

// openAsync opens the queue, the configurations and SQS (before the
// frontend, which enqueues and serves the configuration API).
func openAsync(ctx context.Context, nats *natsembed.Server, verifier *sigv4.Verifier, region string, log *slog.Logger) (*asyncParts, error) {
	a := &asyncParts{log: log}
	var err error
	if a.queue, err = async.OpenQueue(ctx, nats.JetStream(), 1); err != nil {
		return nil, fmt.Errorf("async queue: %w", err)
	}
	if a.configs, err = config.OpenEventConfigs(ctx, nats.JetStream(), config.Options{Region: region}); err != nil {
		return nil, fmt.Errorf("event invoke configs: %w", err)
	}
	if a.sqs, err = sqs.Open(ctx, sqs.Config{JetStream: nats.JetStream(), Verifier: verifier, Region: region, Logger: log}); err != nil {
		return nil, fmt.Errorf("sqs: %w", err)
	}
	return a, nil
}

// startPollers starts the pollers on the invoke path (once the assignment
// service runs): the router, under the same concurrency limits as
// synchronous invokes (a throttled event is retried).
func (a *asyncParts) startPollers(functions *config.Store, invoker invoke.Invoker, clk clock.Clock, region string, concurrency int) {
	a.poller = async.StartPoller(async.PollerConfig{
		Queue:        a.queue,
		Invoker:      invoker,
		Functions:    asyncFunctions{functions},
		EventConfigs: a.configs,
		Queues:       queueSender{a.sqs},
		Clock:        clk,
		Region:       region,
		Concurrency:  concurrency,
		Logger:       a.log,
	})
}

// close stops the pollers (before the assignment service closes: their
// in-flight events are left for the next start) and SQS.
func (a *asyncParts) close() {
	if a.poller != nil {
		a.poller.Close()
		st := a.poller.Stats()
		a.log.Info("async pollers stopped", "accepted", a.queue.Accepted(), "invocations", st.Invocations,
			"succeeded", st.Succeeded, "retries", st.Retries, "onSuccess", st.OnSuccess, "onFailure", st.OnFailure,
			"deadLettered", st.DeadLettered, "dropped", st.Dropped, "deliveryFailures", st.DeliveryFailures)
	}
	if a.sqs != nil {
		a.sqs.Close()
	}
}

// asyncFunctions resolves events' functions in the config service; an
// alias picks its version per attempt, as a synchronous invoke does.
type asyncFunctions struct{ store *config.Store }

func (f asyncFunctions) Resolve(ctx context.Context, account, name, qualifier string) (*config.Function, error) {
	return f.store.LookupQualified(ctx, account, name, qualifier, rand.Float64())
}

// queueSender delivers records and dead-letter messages to SQS.
type queueSender struct{ svc *sqs.Service }

func (q queueSender) SendToQueue(ctx context.Context, arn string, body []byte, attrs []async.Attribute) error {
	var m map[string]sqs.MessageAttributeValue
	if len(attrs) > 0 {
		m = make(map[string]sqs.MessageAttributeValue, len(attrs))
		for _, a := range attrs {
			v := a.Value
			m[a.Name] = sqs.MessageAttributeValue{DataType: a.DataType, StringValue: &v}
		}
	}
	return q.svc.SendToQueue(ctx, arn, body, m)
}
