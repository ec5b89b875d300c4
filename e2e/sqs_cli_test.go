package e2e

// SQS's query protocol (form-encoded POSTs, XML answers), driven by
// Debian's AWS CLI v2 and boto3, whose botocores predate SQS's JSON
// protocol.

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// awsJSON runs `aws --endpoint-url SRV --output json ARGS...` and decodes
// its output into v (when v is not nil).
func awsJSON(t *testing.T, aws2 string, v any, args ...string) {
	t.Helper()
	cmd := exec.Command(aws2, append([]string{"--endpoint-url", srv.url, "--output", "json"}, args...)...)
	cmd.Env = awsEnv(t)
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("aws %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr)
	}
	if v != nil {
		if err := json.Unmarshal(out, v); err != nil {
			t.Fatalf("aws %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

func TestSQSQueryAWSCLI(t *testing.T) {
	requireServer(t)
	aws2 := awsCLIv2(t)
	t.Parallel()
	name := "e2e-sqs-cli-" + runID

	var created struct{ QueueUrl string }
	awsJSON(t, aws2, &created, "sqs", "create-queue", "--queue-name", name, "--attributes", "VisibilityTimeout=7")
	want := srv.url + "/" + account + "/" + name
	if created.QueueUrl != want {
		t.Fatalf("create-queue: QueueUrl %q, want %q", created.QueueUrl, want)
	}
	t.Cleanup(func() {
		srv.sqsClient().DeleteQueue(context.Background(), &sqs.DeleteQueueInput{QueueUrl: aws.String(want)})
	})
	var got struct{ QueueUrl string }
	awsJSON(t, aws2, &got, "sqs", "get-queue-url", "--queue-name", name)
	if got.QueueUrl != want {
		t.Errorf("get-queue-url: %q", got.QueueUrl)
	}
	var listed struct{ QueueUrls []string }
	awsJSON(t, aws2, &listed, "sqs", "list-queues", "--queue-name-prefix", name)
	if len(listed.QueueUrls) != 1 || listed.QueueUrls[0] != want {
		t.Errorf("list-queues: %v", listed.QueueUrls)
	}
	var attrs struct{ Attributes map[string]string }
	awsJSON(t, aws2, &attrs, "sqs", "get-queue-attributes", "--queue-url", want, "--attribute-names", "All")
	if attrs.Attributes["VisibilityTimeout"] != "7" || attrs.Attributes["QueueArn"] != "arn:aws:sqs:"+region+":"+account+":"+name {
		t.Errorf("get-queue-attributes: %v", attrs.Attributes)
	}

	// botocore checks MD5OfMessageBody and MD5OfMessageAttributes itself.
	body := "hello <query> & \"protocol\" ✓"
	var sent struct{ MessageId, MD5OfMessageBody, MD5OfMessageAttributes string }
	awsJSON(t, aws2, &sent, "sqs", "send-message", "--queue-url", want, "--message-body", body,
		"--message-attributes", `{"color":{"DataType":"String","StringValue":"blue"},"blob":{"DataType":"Binary","BinaryValue":"AAEC"}}`)
	if sent.MessageId == "" || sent.MD5OfMessageBody == "" || sent.MD5OfMessageAttributes == "" {
		t.Fatalf("send-message: %+v", sent)
	}
	var recv struct {
		Messages []struct {
			MessageId, ReceiptHandle, Body, MD5OfBody string
			Attributes                                map[string]string
			MessageAttributes                         map[string]struct{ DataType, StringValue, BinaryValue string }
		}
	}
	awsJSON(t, aws2, &recv, "sqs", "receive-message", "--queue-url", want, "--max-number-of-messages", "10",
		"--wait-time-seconds", "5", "--visibility-timeout", "30", "--attribute-names", "All", "--message-attribute-names", "All")
	if len(recv.Messages) != 1 {
		t.Fatalf("receive-message: %+v", recv)
	}
	m := recv.Messages[0]
	if m.MessageId != sent.MessageId || m.Body != body || m.MD5OfBody != sent.MD5OfMessageBody ||
		m.Attributes["ApproximateReceiveCount"] != "1" || m.MessageAttributes["color"].StringValue != "blue" ||
		m.MessageAttributes["blob"].BinaryValue != "AAEC" {
		t.Errorf("receive-message: %+v", m)
	}
	awsJSON(t, aws2, nil, "sqs", "change-message-visibility", "--queue-url", want, "--receipt-handle", m.ReceiptHandle,
		"--visibility-timeout", "60")
	awsJSON(t, aws2, nil, "sqs", "delete-message", "--queue-url", want, "--receipt-handle", m.ReceiptHandle)
	awsJSON(t, aws2, &attrs, "sqs", "get-queue-attributes", "--queue-url", want,
		"--attribute-names", "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible")
	if attrs.Attributes["ApproximateNumberOfMessages"] != "0" || attrs.Attributes["ApproximateNumberOfMessagesNotVisible"] != "0" {
		t.Errorf("after delete-message: %v", attrs.Attributes)
	}

	// The JSON protocol sees the same queue.
	if _, err := srv.sqsClient().GetQueueUrl(ctx(t), &sqs.GetQueueUrlInput{QueueName: aws.String(name)}); err != nil {
		t.Errorf("GetQueueUrl over JSON: %s", describe(err))
	}

	// Errors come back as the query protocol's codes.
	cmd := exec.Command(aws2, "--endpoint-url", srv.url, "sqs", "get-queue-url", "--queue-name", name+"-missing")
	cmd.Env = awsEnv(t)
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "AWS.SimpleQueueService.NonExistentQueue") {
		t.Errorf("get-queue-url of a missing queue: %v\n%s", err, out)
	}

	awsJSON(t, aws2, nil, "sqs", "delete-queue", "--queue-url", want)
	if _, err := srv.sqsClient().GetQueueUrl(ctx(t), &sqs.GetQueueUrlInput{QueueName: aws.String(name)}); sqsErrorCode(err) != "AWS.SimpleQueueService.NonExistentQueue" {
		t.Errorf("GetQueueUrl after delete-queue: %s", describe(err))
	}
}

// boto3Script creates a queue, sends, receives and deletes a message, and
// deletes the queue; it prints "ok" when all went as expected.
const boto3Script = `
import os, sys, boto3
c = boto3.client("sqs", endpoint_url=os.environ["ENDPOINT"], region_name=os.environ["AWS_DEFAULT_REGION"])
name = os.environ["QUEUE"]
url = c.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "9"})["QueueUrl"]
assert c.get_queue_url(QueueName=name)["QueueUrl"] == url, url
assert c.get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout"])["Attributes"] == {"VisibilityTimeout": "9"}
sent = c.send_message(QueueUrl=url, MessageBody="from boto3 & co", MessageAttributes={"n": {"DataType": "Number", "StringValue": "42"}})
got = c.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=5, VisibilityTimeout=30,
    AttributeNames=["All"], MessageAttributeNames=["All"])["Messages"]
assert len(got) == 1 and got[0]["MessageId"] == sent["MessageId"] and got[0]["Body"] == "from boto3 & co", got
assert got[0]["MessageAttributes"]["n"]["StringValue"] == "42", got
c.delete_message(QueueUrl=url, ReceiptHandle=got[0]["ReceiptHandle"])
assert "Messages" not in c.receive_message(QueueUrl=url, WaitTimeSeconds=0)
try:
    c.get_queue_url(QueueName=name + "-missing")
    sys.exit("get_queue_url of a missing queue succeeded")
except c.exceptions.ClientError as e:
    assert e.response["Error"]["Code"] == "AWS.SimpleQueueService.NonExistentQueue", e.response
c.delete_queue(QueueUrl=url)
print("ok")
`

func TestSQSQueryBoto3(t *testing.T) {
	requireServer(t)
	const python = "/usr/bin/python3"
	if _, err := os.Stat(python); err != nil {
		t.Skip("no " + python)
	}
	if out, err := exec.Command(python, "-c", "import boto3").CombinedOutput(); err != nil {
		t.Skipf("%s cannot import boto3 (apt-get install python3-boto3): %v\n%s", python, err, out)
	}
	t.Parallel()
	name := "e2e-sqs-boto3-" + runID
	t.Cleanup(func() {
		srv.sqsClient().DeleteQueue(context.Background(), &sqs.DeleteQueueInput{QueueUrl: aws.String(srv.url + "/" + account + "/" + name)})
	})
	script := filepath.Join(t.TempDir(), "sqs.py")
	if err := os.WriteFile(script, []byte(boto3Script), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(python, script)
	cmd.Env = append(awsEnv(t), "ENDPOINT="+srv.url, "QUEUE="+name)
	out, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "ok" {
		t.Fatalf("boto3: %v\n%s", err, out)
	}
}
