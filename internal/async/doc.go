// Package async runs asynchronous invocations (InvocationType Event): the
// durable queue the frontend puts events on, the pollers that take them
// off and run them through the same invoke path as synchronous calls
// (invoke.Invoker), the retry policy, and the delivery of Lambda's
// invocation records to destinations and of failed events to dead-letter
// queues.
//
// # Flow
//
//	frontend --Enqueue--> stream KINDLING_ASYNC (work queue, file storage)
//	                          | durable pull consumer "pollers"
//	                      Poller: fetch -> resolve function -> Invoker.Invoke
//	                          | Decide (policy.go, pure)
//	        retry: queue the next attempt (state, not-before) and ack
//	        done:  OnSuccess record, ack
//	        fail:  OnFailure record | dead-letter message | drop and count, ack
//
// An event is acknowledged only after its final disposition or after its
// next attempt is stored, so a crash at any point leaves it in the stream:
// at least once, never lost. JetStream redelivers an unacknowledged event
// after ackWait; pollers running an event signal progress so that a long
// invocation is not redelivered.
//
// # Event lifecycle
//
// queued -> (delivered) -> running -> one of:
//   - retry scheduled (queued again with NotBefore; delivered early, it is
//     negatively acknowledged with the remaining delay),
//   - succeeded (terminal),
//   - failed: RetriesExhausted or EventAgeExceeded (terminal),
//   - dropped: its function was deleted, or the message is unreadable
//     (terminal, counted).
//
// # Retry policy (Decide)
//
// Function errors are retried MaximumRetryAttempts times (0-2, default 2)
// after Lambda's 1 and 2 minute waits. Throttles and system errors are
// retried with exponential backoff (1 s doubling to 5 minutes) while the
// event is younger than MaximumEventAgeInSeconds (60-21600, default
// 21600). A retry that would start after that age is not scheduled. All
// of these are Lambda times: the pollers scale waits with the server's
// clock and measure ages in Lambda time (--time-scale). Shortages of
// capacity shorter than a few seconds are waited out in place (Poller
// holds its slot) rather than turned into backoffs.
//
// # Wire format
//
// See event.go: the payload as the message body, everything else in
// versioned headers. The invocation record is Record (record.go).
//
// # Threads
//
// One fetch goroutine per Poller pulls as many events as it has free slots
// (Concurrency) and starts a goroutine per event; each running event has a
// heartbeat goroutine. Counters are atomics. Queue is used from the
// frontend's request goroutines and the pollers.
package async
