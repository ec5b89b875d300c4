package e2e

// The SQS-compatible queues, driven with the unmodified aws-sdk-go-v2 sqs
// client (JSON protocol).

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"
)

// sqsClient returns an SQS client for s. Retries are off so that every
// server answer is seen as it is.
func (s *server) sqsClient() *sqs.Client {
	return sqs.New(sqs.Options{
		Region:           region,
		BaseEndpoint:     aws.String(s.url),
		Credentials:      credentials.NewStaticCredentialsProvider(s.creds.AccessKeyID, s.creds.SecretAccessKey, ""),
		RetryMaxAttempts: 1,
		HTTPClient:       &http.Client{Timeout: time.Minute},
	})
}

// createQueue creates a queue on s (deleted when the test ends) and returns
// its URL and ARN.
func createQueue(t *testing.T, s *server, name string, attrs map[string]string) (url, arn string) {
	t.Helper()
	c := s.sqsClient()
	out, err := c.CreateQueue(ctx(t), &sqs.CreateQueueInput{QueueName: aws.String(name), Attributes: attrs})
	if err != nil {
		t.Fatalf("CreateQueue %s: %s", name, describe(err))
	}
	url = aws.ToString(out.QueueUrl)
	t.Cleanup(func() {
		select {
		case <-s.done:
			return
		default:
		}
		c.DeleteQueue(context.Background(), &sqs.DeleteQueueInput{QueueUrl: aws.String(url)})
	})
	a, err := c.GetQueueAttributes(ctx(t), &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url),
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
	if err != nil {
		t.Fatalf("GetQueueAttributes %s: %s", name, describe(err))
	}
	return url, a.Attributes["QueueArn"]
}

func sqsErrorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func TestSQSQueues(t *testing.T) {
	requireServer(t)
	t.Parallel()
	c := srv.sqsClient()
	name := "e2e-queues-" + runID
	url, arn := createQueue(t, srv, name, map[string]string{"VisibilityTimeout": "5"})
	if url != srv.url+"/"+account+"/"+name || arn != "arn:aws:sqs:"+region+":"+account+":"+name {
		t.Errorf("url %s arn %s", url, arn)
	}
	// Idempotent with the same attributes; a conflict with others.
	if out, err := c.CreateQueue(ctx(t), &sqs.CreateQueueInput{QueueName: aws.String(name),
		Attributes: map[string]string{"VisibilityTimeout": "5"}}); err != nil || aws.ToString(out.QueueUrl) != url {
		t.Errorf("CreateQueue again: %v", describe(err))
	}
	_, err := c.CreateQueue(ctx(t), &sqs.CreateQueueInput{QueueName: aws.String(name),
		Attributes: map[string]string{"VisibilityTimeout": "6"}})
	var exists *sqstypes.QueueNameExists
	if !errors.As(err, &exists) || sqsErrorCode(err) != "QueueAlreadyExists" {
		t.Errorf("CreateQueue with other attributes: %s", describe(err))
	}
	got, err := c.GetQueueUrl(ctx(t), &sqs.GetQueueUrlInput{QueueName: aws.String(name)})
	if err != nil || aws.ToString(got.QueueUrl) != url {
		t.Errorf("GetQueueUrl: %v %s", got, describe(err))
	}
	list, err := c.ListQueues(ctx(t), &sqs.ListQueuesInput{QueueNamePrefix: aws.String(name)})
	if err != nil || len(list.QueueUrls) != 1 || list.QueueUrls[0] != url {
		t.Errorf("ListQueues: %v %s", list, describe(err))
	}
	_, err = c.GetQueueUrl(ctx(t), &sqs.GetQueueUrlInput{QueueName: aws.String("e2e-missing-" + runID)})
	var dne *sqstypes.QueueDoesNotExist
	if !errors.As(err, &dne) || sqsErrorCode(err) != "AWS.SimpleQueueService.NonExistentQueue" {
		t.Errorf("GetQueueUrl of a missing queue: %s", describe(err))
	}
	_, err = c.CreateQueue(ctx(t), &sqs.CreateQueueInput{QueueName: aws.String("bad name!")})
	if sqsErrorCode(err) != "InvalidParameterValue" {
		t.Errorf("bad queue name: %s", describe(err))
	}
	_, err = c.CreateQueue(ctx(t), &sqs.CreateQueueInput{QueueName: aws.String("e2e-bad-" + runID),
		Attributes: map[string]string{"VisibilityTimeout": "99999"}})
	if sqsErrorCode(err) != "InvalidAttributeValue" {
		t.Errorf("bad attribute: %s", describe(err))
	}
	attrs, err := c.GetQueueAttributes(ctx(t), &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url),
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameAll}})
	if err != nil || attrs.Attributes["VisibilityTimeout"] != "5" || attrs.Attributes["ApproximateNumberOfMessages"] != "0" ||
		attrs.Attributes["MessageRetentionPeriod"] != "345600" {
		t.Errorf("GetQueueAttributes: %v %s", attrs, describe(err))
	}
	if _, err := c.DeleteQueue(ctx(t), &sqs.DeleteQueueInput{QueueUrl: aws.String(url)}); err != nil {
		t.Fatal(describe(err))
	}
	_, err = c.SendMessage(ctx(t), &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String("x")})
	if !errors.As(err, &dne) {
		t.Errorf("SendMessage to a deleted queue: %s", describe(err))
	}
}

func TestSQSMessages(t *testing.T) {
	requireServer(t)
	t.Parallel()
	c := srv.sqsClient()
	url, _ := createQueue(t, srv, "e2e-messages-"+runID, nil)
	sent, err := c.SendMessage(ctx(t), &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String("hello"),
		MessageAttributes: map[string]sqstypes.MessageAttributeValue{
			"Kind": {DataType: aws.String("String"), StringValue: aws.String("greeting")},
			"N":    {DataType: aws.String("Number"), StringValue: aws.String("7")},
		}})
	if err != nil { // the SDK checks MD5OfMessageBody
		t.Fatal(describe(err))
	}
	if aws.ToString(sent.MD5OfMessageAttributes) == "" || aws.ToString(sent.MessageId) == "" {
		t.Errorf("SendMessage: %+v", sent)
	}
	// Receive with a 1 s visibility timeout; it comes back with a receive
	// count of 2.
	recv, err := c.ReceiveMessage(ctx(t), &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 10,
		VisibilityTimeout: 1, MessageAttributeNames: []string{"All"},
		MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameAll}})
	if err != nil || len(recv.Messages) != 1 {
		t.Fatalf("ReceiveMessage: %v %s", recv, describe(err))
	}
	m := recv.Messages[0]
	if aws.ToString(m.Body) != "hello" || aws.ToString(m.MessageId) != aws.ToString(sent.MessageId) ||
		m.Attributes["ApproximateReceiveCount"] != "1" || m.Attributes["SentTimestamp"] == "" ||
		aws.ToString(m.MessageAttributes["Kind"].StringValue) != "greeting" ||
		aws.ToString(m.MD5OfMessageAttributes) != aws.ToString(sent.MD5OfMessageAttributes) {
		t.Errorf("received %+v", m)
	}
	empty, err := c.ReceiveMessage(ctx(t), &sqs.ReceiveMessageInput{QueueUrl: aws.String(url)})
	if err != nil || len(empty.Messages) != 0 {
		t.Errorf("in-flight message received again: %v %s", empty, describe(err))
	}
	start := time.Now()
	again, err := c.ReceiveMessage(ctx(t), &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), WaitTimeSeconds: 5,
		MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameApproximateReceiveCount}})
	if err != nil || len(again.Messages) != 1 || again.Messages[0].Attributes["ApproximateReceiveCount"] != "2" {
		t.Fatalf("after the visibility timeout: %v %s", again, describe(err))
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("long poll returned %v after the message became visible", d)
	}
	// The first receipt handle is stale for ChangeMessageVisibility.
	_, err = c.ChangeMessageVisibility(ctx(t), &sqs.ChangeMessageVisibilityInput{QueueUrl: aws.String(url),
		ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: 10})
	if sqsErrorCode(err) != "AWS.SimpleQueueService.MessageNotInflight" {
		t.Errorf("ChangeMessageVisibility with a stale handle: %s", describe(err))
	}
	if _, err := c.DeleteMessage(ctx(t), &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: again.Messages[0].ReceiptHandle}); err != nil {
		t.Fatal(describe(err))
	}
	_, err = c.DeleteMessage(ctx(t), &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: aws.String("garbage")})
	if sqsErrorCode(err) != "ReceiptHandleIsInvalid" {
		t.Errorf("DeleteMessage with garbage: %s", describe(err))
	}

	// Long polling: a receive waiting for up to 10 s returns as soon as a
	// message is sent.
	var wg sync.WaitGroup
	wg.Add(1)
	var polled *sqs.ReceiveMessageOutput
	var perr error
	var took time.Duration
	go func() {
		defer wg.Done()
		start := time.Now()
		polled, perr = c.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), WaitTimeSeconds: 10})
		took = time.Since(start)
	}()
	time.Sleep(300 * time.Millisecond) // let the poll start; the assertion does not depend on it
	if _, err := c.SendMessage(ctx(t), &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String("late")}); err != nil {
		t.Fatal(describe(err))
	}
	wg.Wait()
	if perr != nil || len(polled.Messages) != 1 || aws.ToString(polled.Messages[0].Body) != "late" || took > 5*time.Second {
		t.Errorf("long poll: %v %s after %v", polled, describe(perr), took)
	}

	// Batches of ten, and the count attribute.
	for i := range 25 {
		if _, err := c.SendMessage(ctx(t), &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String(strconv.Itoa(i))}); err != nil {
			t.Fatal(describe(err))
		}
	}
	attrs, err := c.GetQueueAttributes(ctx(t), &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url),
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameApproximateNumberOfMessages}})
	if err != nil || attrs.Attributes["ApproximateNumberOfMessages"] != "25" {
		t.Errorf("ApproximateNumberOfMessages: %v %s", attrs, describe(err))
	}
	b, err := c.ReceiveMessage(ctx(t), &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 10})
	if err != nil || len(b.Messages) != 10 {
		t.Fatalf("batch receive: %d %s", len(b.Messages), describe(err))
	}
	_, err = c.ReceiveMessage(ctx(t), &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 11})
	if sqsErrorCode(err) != "InvalidParameterValue" {
		t.Errorf("MaxNumberOfMessages 11: %s", describe(err))
	}
}

func TestSQSAuth(t *testing.T) {
	requireServer(t)
	t.Parallel()
	c := sqs.New(sqs.Options{
		Region: region, BaseEndpoint: aws.String(srv.url), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider(srv.creds.AccessKeyID, "wrong-secret", ""),
	})
	_, err := c.ListQueues(ctx(t), &sqs.ListQueuesInput{})
	code, status := apiError(err)
	if status != 403 || code != "SignatureDoesNotMatch" {
		t.Errorf("wrong secret: %s", describe(err))
	}
}
