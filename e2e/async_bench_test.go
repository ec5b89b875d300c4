package e2e

// The asynchronous invocation benchmarks of docs/benchmarks.md, against the
// server TestMain starts, through the unmodified AWS SDK for Go v2 (lambda
// and sqs clients), on the aws-lambda-go echo function:
//
//	go test ./e2e -run '^$' -bench Async -benchtime 1x
//
// Figures are reported with b.ReportMetric; BenchmarkAsyncThroughput fails
// if an accepted event never runs.

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

func eventOnce(b *testing.B, c *lambda.Client, name string) string {
	out, err := c.Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String(name),
		InvocationType: types.InvocationTypeEvent, Payload: benchPayload})
	if err != nil {
		b.Fatalf("Invoke (Event): %s", describe(err))
	}
	if out.StatusCode != 202 {
		b.Fatalf("Invoke (Event): status %d", out.StatusCode)
	}
	id, _ := awsmiddleware.GetRequestIDMetadata(out.ResultMetadata)
	return id
}

// benchSQSClient is an SQS client with a pool for concurrent readers.
func benchSQSClient() *sqs.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns, tr.MaxIdleConnsPerHost = 64, 64
	return sqs.New(sqs.Options{
		Region:           region,
		BaseEndpoint:     aws.String(srv.url),
		Credentials:      credentials.NewStaticCredentialsProvider(srv.creds.AccessKeyID, srv.creds.SecretAccessKey, ""),
		RetryMaxAttempts: 1,
		HTTPClient:       &http.Client{Transport: tr},
	})
}

// BenchmarkAsyncAccept measures the latency of accepting one Event
// invocation (SDK, SigV4, frontend, durable JetStream write, 202), one
// client at a time, while the pollers run the accepted events.
func BenchmarkAsyncAccept(b *testing.B) {
	requireBenchServer(b)
	c := benchClient()
	name := "bench-async-accept-" + runID
	benchFunction(b, c, name)
	for range 200 {
		eventOnce(b, c, name)
	}
	const n = 3000
	lat := make([]time.Duration, 0, n)
	b.ResetTimer()
	for range b.N {
		for range n {
			t := time.Now()
			eventOnce(b, c, name)
			lat = append(lat, time.Since(t))
		}
	}
	b.StopTimer()
	p50, p99 := percentile(lat, .5), percentile(lat, .99)
	b.ReportMetric(us(p50), "accept-p50-us")
	b.ReportMetric(us(p99), "accept-p99-us")
	b.Logf("async accept p50 %.0f us p99 %.0f us (%d samples)", us(p50), us(p99), len(lat))
}

// BenchmarkAsyncThroughput accepts 10,000 events from 32 concurrent clients
// and waits until every one has run: each success sends a record to an SQS
// queue (OnSuccess), read back and deduplicated by request id. It reports
// the accept rate and the rate at which events ran, and fails if any
// accepted event is missing.
func BenchmarkAsyncThroughput(b *testing.B) {
	requireBenchServer(b)
	const events, clients = 10000, 32
	c := benchClient()
	qc := benchSQSClient()
	name := "bench-async-tput-" + runID
	benchFunction(b, c, name)
	qout, err := qc.CreateQueue(context.Background(), &sqs.CreateQueueInput{QueueName: aws.String("bench-async-" + runID)})
	if err != nil {
		b.Fatal(describe(err))
	}
	qurl := aws.ToString(qout.QueueUrl)
	b.Cleanup(func() { qc.DeleteQueue(context.Background(), &sqs.DeleteQueueInput{QueueUrl: aws.String(qurl)}) })
	qattrs, err := qc.GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{QueueUrl: aws.String(qurl),
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
	if err != nil {
		b.Fatal(describe(err))
	}
	if _, err := c.PutFunctionEventInvokeConfig(context.Background(), &lambda.PutFunctionEventInvokeConfigInput{
		FunctionName: aws.String(name), DestinationConfig: &types.DestinationConfig{
			OnSuccess: &types.OnSuccess{Destination: aws.String(qattrs.Attributes["QueueArn"])}},
	}); err != nil {
		b.Fatal(describe(err))
	}

	for range b.N {
		// Readers: receive records, delete them in batches, note the ids.
		var mu sync.Mutex
		seen := map[string]bool{}
		var lastRecord time.Time
		dups := 0
		stop := make(chan struct{})
		var readers sync.WaitGroup
		for range 4 {
			readers.Add(1)
			go func() {
				defer readers.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					out, err := qc.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(qurl),
						MaxNumberOfMessages: 10, WaitTimeSeconds: 1, VisibilityTimeout: 600})
					if err != nil {
						b.Errorf("ReceiveMessage: %s", describe(err))
						return
					}
					if len(out.Messages) == 0 {
						continue
					}
					var entries []sqstypes.DeleteMessageBatchRequestEntry
					mu.Lock()
					for i, m := range out.Messages {
						var r invocationRecord
						if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &r); err != nil {
							b.Errorf("not a record: %s", aws.ToString(m.Body))
						}
						if seen[r.RequestContext.RequestID] {
							dups++
						}
						seen[r.RequestContext.RequestID] = true
						entries = append(entries, sqstypes.DeleteMessageBatchRequestEntry{Id: aws.String(string(rune('a' + i))), ReceiptHandle: m.ReceiptHandle})
					}
					lastRecord = time.Now()
					mu.Unlock()
					if _, err := qc.DeleteMessageBatch(context.Background(), &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(qurl), Entries: entries}); err != nil {
						b.Errorf("DeleteMessageBatch: %s", describe(err))
						return
					}
				}
			}()
		}

		ids := make([]string, events)
		var next atomic.Int64
		var senders sync.WaitGroup
		start := time.Now()
		b.ResetTimer()
		for range clients {
			senders.Add(1)
			go func() {
				defer senders.Done()
				for {
					i := next.Add(1) - 1
					if i >= events {
						return
					}
					ids[i] = eventOnce(b, c, name)
				}
			}()
		}
		senders.Wait()
		accepted := time.Since(start)
		b.StopTimer()

		deadline := time.Now().Add(5 * time.Minute)
		for {
			mu.Lock()
			n := len(seen)
			mu.Unlock()
			if n >= events || time.Now().After(deadline) {
				break
			}
			time.Sleep(100 * time.Millisecond) // polling an observable count, bounded by the deadline
		}
		close(stop)
		readers.Wait()
		missing := 0
		for _, id := range ids {
			if !seen[id] {
				missing++
			}
		}
		drained := lastRecord.Sub(start)
		acceptRate := float64(events) / accepted.Seconds()
		runRate := float64(events) / drained.Seconds()
		b.ReportMetric(acceptRate, "accepted/s")
		b.ReportMetric(runRate, "ran/s")
		b.ReportMetric(drained.Seconds(), "drain-s")
		b.ReportMetric(float64(missing), "lost")
		b.Logf("%d events from %d clients: accepted in %v (%.0f/s); all records in %v (%.0f events run/s); %d lost, %d duplicate records",
			events, clients, accepted.Round(time.Millisecond), acceptRate, drained.Round(time.Millisecond), runRate, missing, dups)
		if missing > 0 {
			b.Fatalf("%d accepted events never ran", missing)
		}
	}
}
