package sqs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"kindling/internal/awsapi"
)

type httpRequest = http.Request

const (
	contentType = "application/x-amz-json-1.0"
	// TargetPrefix is the X-Amz-Target prefix of SQS operations.
	TargetPrefix = "AmazonSQS."
	// maxRequest bounds a request body: a 1 MiB message JSON-escaped, with
	// room for attributes.
	maxRequest = 8 << 20
	// maxWait is the longest long poll (SQS: 20 s).
	maxWait = 20
)

// call is one authenticated SQS request.
type call struct {
	account string
	host    string
	body    []byte
	ctx     context.Context
}

// ServeHTTP serves SQS's JSON protocol: POST / with X-Amz-Target
// AmazonSQS.<Operation>, signed with SigV4 for service "sqs".
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set(awsapi.HeaderRequestID, awsapi.NewRequestID())
	op, ok := strings.CutPrefix(r.Header.Get("X-Amz-Target"), TargetPrefix)
	if !ok || r.Method != http.MethodPost {
		writeError(w, errInvalidAction(r.Header.Get("X-Amz-Target")), s.log)
		return
	}
	c, err := s.authenticate(r)
	if err != nil {
		writeError(w, err, s.log)
		return
	}
	out, err := s.run(op, c)
	if err != nil {
		writeError(w, err, s.log)
		return
	}
	data, err := json.Marshal(out)
	if err != nil {
		writeError(w, err, s.log)
		return
	}
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Content-Length", strconv.Itoa(len(data)))
	w.WriteHeader(http.StatusOK)
	w.Write(data) // a failed write means the client is gone
}

// authenticate reads the request body (bounded) and verifies its SigV4
// signature for service sqs; the call it returns carries the caller's
// account. Both protocols start here.
func (s *Service) authenticate(r *http.Request) (*call, error) {
	if r.ContentLength > maxRequest {
		return nil, errInvalidParameterValue("The request is too large.")
	}
	var buf bytes.Buffer
	n, err := buf.ReadFrom(io.LimitReader(r.Body, maxRequest+1))
	if err != nil {
		return nil, errMalformed("The request body could not be read.")
	}
	if n > maxRequest {
		return nil, errInvalidParameterValue("The request is too large.")
	}
	body := buf.Bytes()
	creds, service, err := s.verify(r, body)
	if err != nil {
		return nil, err
	}
	if service != "sqs" {
		return nil, &apiError{status: http.StatusForbidden, shape: "InvalidSignatureException", ns: "com.amazon.coral.service",
			query: "SignatureDoesNotMatch", sender: true, msg: "Credential should be scoped to correct service: 'sqs'. "}
	}
	if creds.AccountID == "" {
		return nil, errors.New("sqs: credentials without an account id")
	}
	return &call{account: creds.AccountID, host: r.Host, body: body, ctx: r.Context()}, nil
}

func decode(c *call, v any) error {
	body := c.body
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	}
	if err := json.Unmarshal(body, v); err != nil {
		return errMalformed("The request body is not valid JSON: " + clip(err.Error()))
	}
	return nil
}

func (s *Service) queueURL(c *call, name string) string {
	host := c.host
	if host == "" {
		host = "localhost"
	}
	return "http://" + host + "/" + c.account + "/" + name
}

// queueOf resolves a QueueUrl (http://HOST/ACCOUNT/NAME, or the path
// alone) for the caller's account. Another account's queue does not exist
// for the caller.
func (s *Service) queueOf(c *call, queueURL string) (*queue, error) {
	if queueURL == "" {
		return nil, errMissingParameter("QueueUrl")
	}
	p := queueURL
	if u, err := url.Parse(queueURL); err == nil && u.Path != "" {
		p = u.Path
	}
	parts := strings.Split(strings.Trim(p, "/"), "/")
	if len(parts) != 2 || parts[0] != c.account || !validQueueName(parts[1]) {
		return nil, errQueueDoesNotExist()
	}
	return s.queue(parts[0], parts[1])
}

func (s *Service) opCreateQueue(c *call) (any, error) {
	var in struct {
		QueueName  string
		Attributes map[string]string
		Tags       map[string]string `json:"tags"`
	}
	if err := decode(c, &in); err != nil {
		return nil, err
	}
	if in.QueueName == "" {
		return nil, errMissingParameter("QueueName")
	}
	if err := s.createQueue(c.ctx, c.account, in.QueueName, in.Attributes); err != nil {
		return nil, err
	}
	return map[string]string{"QueueUrl": s.queueURL(c, in.QueueName)}, nil
}

func (s *Service) opGetQueueURL(c *call) (any, error) {
	var in struct {
		QueueName              string
		QueueOwnerAWSAccountId string
	}
	if err := decode(c, &in); err != nil {
		return nil, err
	}
	if in.QueueName == "" {
		return nil, errMissingParameter("QueueName")
	}
	if in.QueueOwnerAWSAccountId != "" && in.QueueOwnerAWSAccountId != c.account {
		return nil, errQueueDoesNotExist()
	}
	if _, err := s.queue(c.account, in.QueueName); err != nil {
		return nil, err
	}
	return map[string]string{"QueueUrl": s.queueURL(c, in.QueueName)}, nil
}

func (s *Service) opListQueues(c *call) (any, error) {
	var in struct {
		QueueNamePrefix string
		NextToken       string
		MaxResults      *int
	}
	if err := decode(c, &in); err != nil {
		return nil, err
	}
	max := 1000
	if in.MaxResults != nil {
		if *in.MaxResults < 1 || *in.MaxResults > 1000 {
			return nil, errInvalidParameterValue("Value for parameter MaxResults is invalid. Reason: MaxResults must be an integer between 1 and 1000.")
		}
		max = *in.MaxResults
	} else if in.NextToken != "" {
		return nil, errInvalidParameterValue("MaxResults is a mandatory parameter when you provide a value for NextToken.")
	}
	names := s.listQueues(c.account, in.QueueNamePrefix)
	if in.NextToken != "" {
		i, _ := slices.BinarySearch(names, in.NextToken)
		if i < len(names) && names[i] == in.NextToken {
			i++
		}
		names = names[i:]
	}
	out := map[string]any{}
	if len(names) > max {
		names = names[:max]
		if in.MaxResults != nil {
			out["NextToken"] = names[len(names)-1]
		}
	}
	if len(names) > 0 {
		urls := make([]string, len(names))
		for i, n := range names {
			urls[i] = s.queueURL(c, n)
		}
		out["QueueUrls"] = urls
	}
	return out, nil
}

func (s *Service) opDeleteQueue(c *call) (any, error) {
	var in struct{ QueueUrl string }
	if err := decode(c, &in); err != nil {
		return nil, err
	}
	q, err := s.queueOf(c, in.QueueUrl)
	if err != nil {
		return nil, err
	}
	return struct{}{}, s.deleteQueue(c.ctx, q.account, q.name)
}

func (s *Service) opPurgeQueue(c *call) (any, error) {
	var in struct{ QueueUrl string }
	if err := decode(c, &in); err != nil {
		return nil, err
	}
	q, err := s.queueOf(c, in.QueueUrl)
	if err != nil {
		return nil, err
	}
	return struct{}{}, s.purgeQueue(c.ctx, q)
}

// queueAttributeNames are the attributes GetQueueAttributes can return.
var queueAttributeNames = []string{
	"ApproximateNumberOfMessages", "ApproximateNumberOfMessagesDelayed", "ApproximateNumberOfMessagesNotVisible",
	"CreatedTimestamp", "DelaySeconds", "LastModifiedTimestamp", "MaximumMessageSize", "MessageRetentionPeriod",
	"QueueArn", "ReceiveMessageWaitTimeSeconds", "SqsManagedSseEnabled", "VisibilityTimeout",
}

func (s *Service) opGetQueueAttributes(c *call) (any, error) {
	var in struct {
		QueueUrl       string
		AttributeNames []string
	}
	if err := decode(c, &in); err != nil {
		return nil, err
	}
	q, err := s.queueOf(c, in.QueueUrl)
	if err != nil {
		return nil, err
	}
	want := map[string]bool{}
	for _, n := range in.AttributeNames {
		if n == "All" {
			for _, a := range queueAttributeNames {
				want[a] = true
			}
			continue
		}
		if !slices.Contains(queueAttributeNames, n) {
			return nil, errInvalidAttributeName("Unknown Attribute " + clip(n) + ".")
		}
		want[n] = true
	}
	q.mu.Lock()
	visible, inflight, delayed := q.counts(time.Now())
	a, created, modified := q.attrs, q.created, q.modified
	q.mu.Unlock()
	all := map[string]string{
		"ApproximateNumberOfMessages":           strconv.Itoa(visible),
		"ApproximateNumberOfMessagesNotVisible": strconv.Itoa(inflight),
		"ApproximateNumberOfMessagesDelayed":    strconv.Itoa(delayed),
		"CreatedTimestamp":                      strconv.FormatInt(created.Unix(), 10),
		"LastModifiedTimestamp":                 strconv.FormatInt(modified.Unix(), 10),
		"DelaySeconds":                          strconv.Itoa(a.DelaySeconds),
		"MaximumMessageSize":                    strconv.Itoa(a.MaximumMessageSize),
		"MessageRetentionPeriod":                strconv.Itoa(a.MessageRetentionPeriod),
		"QueueArn":                              s.ARN(q.account, q.name),
		"ReceiveMessageWaitTimeSeconds":         strconv.Itoa(a.ReceiveMessageWaitTimeSeconds),
		"SqsManagedSseEnabled":                  "false",
		"VisibilityTimeout":                     strconv.Itoa(a.VisibilityTimeout),
	}
	out := map[string]string{}
	for k := range want {
		out[k] = all[k]
	}
	if len(out) == 0 {
		return struct{}{}, nil
	}
	return map[string]any{"Attributes": out}, nil
}

func (s *Service) opSetQueueAttributes(c *call) (any, error) {
	var in struct {
		QueueUrl   string
		Attributes map[string]string
	}
	if err := decode(c, &in); err != nil {
		return nil, err
	}
	q, err := s.queueOf(c, in.QueueUrl)
	if err != nil {
		return nil, err
	}
	return struct{}{}, s.setAttributes(c.ctx, q, in.Attributes)
}

func (s *Service) opSendMessage(c *call) (any, error) {
	var in struct {
		QueueUrl          string
		MessageBody       *string
		DelaySeconds      *int
		MessageAttributes map[string]MessageAttributeValue
	}
	if err := decode(c, &in); err != nil {
		return nil, err
	}
	q, err := s.queueOf(c, in.QueueUrl)
	if err != nil {
		return nil, err
	}
	if in.MessageBody == nil {
		return nil, errMissingParameter("MessageBody")
	}
	r, err := s.send(c.ctx, q, *in.MessageBody, in.MessageAttributes, in.DelaySeconds)
	if err != nil {
		return nil, err
	}
	out := map[string]string{"MessageId": r.id, "MD5OfMessageBody": r.md5Body}
	if r.md5Attrs != "" {
		out["MD5OfMessageAttributes"] = r.md5Attrs
	}
	return out, nil
}

// receivedMessage is a message in ReceiveMessage's answer.
type receivedMessage struct {
	MessageId              string                           `json:"MessageId"`
	ReceiptHandle          string                           `json:"ReceiptHandle"`
	MD5OfBody              string                           `json:"MD5OfBody"`
	Body                   string                           `json:"Body"`
	Attributes             map[string]string                `json:"Attributes,omitempty"`
	MD5OfMessageAttributes string                           `json:"MD5OfMessageAttributes,omitempty"`
	MessageAttributes      map[string]MessageAttributeValue `json:"MessageAttributes,omitempty"`
}

var systemAttributeNames = []string{"ApproximateFirstReceiveTimestamp", "ApproximateReceiveCount", "SenderId", "SentTimestamp"}

func (s *Service) opReceiveMessage(c *call) (any, error) {
	var in struct {
		QueueUrl                    string
		AttributeNames              []string
		MessageSystemAttributeNames []string
		MessageAttributeNames       []string
		MaxNumberOfMessages         *int
		VisibilityTimeout           *int
		WaitTimeSeconds             *int
	}
	if err := decode(c, &in); err != nil {
		return nil, err
	}
	q, err := s.queueOf(c, in.QueueUrl)
	if err != nil {
		return nil, err
	}
	max := 1
	if in.MaxNumberOfMessages != nil {
		if *in.MaxNumberOfMessages < 1 || *in.MaxNumberOfMessages > 10 {
			return nil, errInvalidParameterValue("Value " + strconv.Itoa(*in.MaxNumberOfMessages) + " for parameter MaxNumberOfMessages is invalid. Reason: Must be between 1 and 10, if provided.")
		}
		max = *in.MaxNumberOfMessages
	}
	q.mu.Lock()
	vis, wait := q.attrs.VisibilityTimeout, q.attrs.ReceiveMessageWaitTimeSeconds
	q.mu.Unlock()
	if in.VisibilityTimeout != nil {
		if *in.VisibilityTimeout < 0 || *in.VisibilityTimeout > 43200 {
			return nil, errInvalidParameterValue("Value " + strconv.Itoa(*in.VisibilityTimeout) + " for parameter VisibilityTimeout is invalid. Reason: Must be between 0 and 43200, if provided.")
		}
		vis = *in.VisibilityTimeout
	}
	if in.WaitTimeSeconds != nil {
		if *in.WaitTimeSeconds < 0 || *in.WaitTimeSeconds > maxWait {
			return nil, errInvalidParameterValue("Value " + strconv.Itoa(*in.WaitTimeSeconds) + " for parameter WaitTimeSeconds is invalid. Reason: Must be >= 0 and <= 20, if provided.")
		}
		wait = *in.WaitTimeSeconds
	}
	sys := map[string]bool{}
	for _, n := range append(in.AttributeNames, in.MessageSystemAttributeNames...) {
		if n == "All" {
			for _, a := range systemAttributeNames {
				sys[a] = true
			}
		}
		sys[n] = true
	}
	msgs := s.receive(c.ctx, q, max, time.Duration(vis)*time.Second, time.Duration(wait)*time.Second)
	out := make([]receivedMessage, 0, len(msgs))
	for i := range msgs {
		m := &msgs[i]
		rm := receivedMessage{MessageId: m.id, ReceiptHandle: receiptHandle(q, m), MD5OfBody: m.md5Body, Body: m.body}
		if len(sys) > 0 {
			rm.Attributes = map[string]string{}
			add := func(k, v string) {
				if sys[k] {
					rm.Attributes[k] = v
				}
			}
			add("ApproximateReceiveCount", strconv.Itoa(m.receiveCount))
			add("SentTimestamp", strconv.FormatInt(m.sent.UnixMilli(), 10))
			add("ApproximateFirstReceiveTimestamp", strconv.FormatInt(m.firstReceive.UnixMilli(), 10))
			add("SenderId", q.account)
		}
		if sel := selectAttributes(m.attrs, in.MessageAttributeNames); len(sel) > 0 {
			rm.MessageAttributes = sel
			rm.MD5OfMessageAttributes = md5OfAttributes(sel)
		}
		out = append(out, rm)
	}
	if len(out) == 0 {
		return struct{}{}, nil
	}
	return map[string]any{"Messages": out}, nil
}

// selectAttributes returns the message attributes a ReceiveMessage asked
// for: All or .* for every one, a name, or a prefix ending in ".*".
func selectAttributes(attrs map[string]MessageAttributeValue, names []string) map[string]MessageAttributeValue {
	if len(attrs) == 0 || len(names) == 0 {
		return nil
	}
	out := map[string]MessageAttributeValue{}
	for k, v := range attrs {
		for _, n := range names {
			if n == "All" || n == ".*" || n == k ||
				(strings.HasSuffix(n, ".*") && strings.HasPrefix(k, strings.TrimSuffix(n, "*"))) {
				out[k] = v
				break
			}
		}
	}
	return out
}

func (s *Service) opDeleteMessage(c *call) (any, error) {
	var in struct{ QueueUrl, ReceiptHandle string }
	if err := decode(c, &in); err != nil {
		return nil, err
	}
	q, err := s.queueOf(c, in.QueueUrl)
	if err != nil {
		return nil, err
	}
	if in.ReceiptHandle == "" {
		return nil, errMissingParameter("ReceiptHandle")
	}
	seq, _, err := parseReceiptHandle(q, in.ReceiptHandle)
	if err != nil {
		return nil, err
	}
	return struct{}{}, s.deleteMessage(c.ctx, q, seq)
}

func (s *Service) opDeleteMessageBatch(c *call) (any, error) {
	var in struct {
		QueueUrl string
		Entries  []struct{ Id, ReceiptHandle string }
	}
	if err := decode(c, &in); err != nil {
		return nil, err
	}
	q, err := s.queueOf(c, in.QueueUrl)
	if err != nil {
		return nil, err
	}
	switch {
	case len(in.Entries) == 0:
		return nil, errEmptyBatch()
	case len(in.Entries) > 10:
		return nil, errTooManyEntries()
	}
	type failed struct {
		Id          string
		SenderFault bool
		Code        string
		Message     string
	}
	ok := []map[string]string{}
	bad := []failed{}
	for _, e := range in.Entries {
		seq, _, err := parseReceiptHandle(q, e.ReceiptHandle)
		if err == nil {
			err = s.deleteMessage(c.ctx, q, seq)
		}
		if err != nil {
			ae, _ := fromError(err)
			bad = append(bad, failed{Id: e.Id, SenderFault: ae.sender, Code: ae.query, Message: ae.msg})
			continue
		}
		ok = append(ok, map[string]string{"Id": e.Id})
	}
	return map[string]any{"Successful": ok, "Failed": bad}, nil
}

func (s *Service) opChangeMessageVisibility(c *call) (any, error) {
	var in struct {
		QueueUrl          string
		ReceiptHandle     string
		VisibilityTimeout *int
	}
	if err := decode(c, &in); err != nil {
		return nil, err
	}
	q, err := s.queueOf(c, in.QueueUrl)
	if err != nil {
		return nil, err
	}
	if in.VisibilityTimeout == nil {
		return nil, errMissingParameter("VisibilityTimeout")
	}
	return struct{}{}, s.changeVisibility(q, in.ReceiptHandle, *in.VisibilityTimeout)
}
