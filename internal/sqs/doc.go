// Package sqs is Kindling's SQS-compatible queue service, on the same
// endpoint as the Lambda API, in both of SQS's protocols: JSON (POST / with
// X-Amz-Target AmazonSQS.<Operation>, application/x-amz-json-1.0; current
// SDKs) and query (form-encoded Action=<Operation> with XML answers; older
// botocore, such as Debian's AWS CLI and boto3 — query.go translates the form
// into the JSON input and the result into XML, so both run the same
// operations). SigV4 with service
// "sqs", credentials mapped to accounts; one account never sees another's
// queues (QueueDoesNotExist). Asynchronous invocation records and
// dead-letter messages are delivered here (SendToQueue), and users read
// them with the AWS SDKs or CLI.
//
// Operations: CreateQueue (idempotent: the same attributes return the
// queue, others are QueueNameExists), GetQueueUrl, ListQueues,
// DeleteQueue, PurgeQueue, GetQueueAttributes, SetQueueAttributes,
// SendMessage (message attributes, DelaySeconds), ReceiveMessage (1-10
// messages, long polling up to 20 s, per-receive visibility timeout,
// system attributes), DeleteMessage, DeleteMessageBatch,
// ChangeMessageVisibility. Standard queues only (no FIFO). URLs are
// http://HOST/ACCOUNT/NAME, ARNs arn:aws:sqs:REGION:ACCOUNT:NAME.
//
// Errors follow the JSON protocol of a query-compatible service:
// {"__type":"com.amazonaws.sqs#QueueDoesNotExist","message":...} and the
// X-Amzn-Query-Error header ("AWS.SimpleQueueService.NonExistentQueue;Sender"),
// which the SDKs report as the error code.
//
// # Storage
//
// Queue definitions are in the KV bucket kindling-sqs-queues; messages in
// the stream KINDLING_SQS, one stream message per SQS message, subject
// kindling.sqs.<account>.<name>, body a versioned JSON record that names
// the queue's incarnation (its creation time) so that a deleted and
// recreated queue never sees the old one's messages. SendMessage answers
// after JetStream has written the message; DeleteMessage deletes it from
// the stream. The in-memory index (queue.go) holds visibility and receive
// counts; it is rebuilt from the stream at start, with every message
// visible (at least once).
//
// # Threads and locks
//
// Handlers run on net/http's goroutines; long polls wait on a per-queue
// channel closed when a message becomes visible. A sweep goroutine removes
// messages past their retention period. Lock order: Service.mu, then
// queue.mu; no JetStream call is made under queue.mu.
package sqs
