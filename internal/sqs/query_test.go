package sqs

import (
	"encoding/json"
	"encoding/xml"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
)

func TestIsQueryRequest(t *testing.T) {
	for _, c := range []struct {
		method, ct, target string
		want               bool
	}{
		{"POST", "application/x-www-form-urlencoded; charset=utf-8", "", true},
		{"POST", "Application/X-WWW-Form-Urlencoded", "", true},
		{"POST", "application/x-www-form-urlencoded", "AmazonSQS.SendMessage", false},
		{"POST", "application/json", "", false},
		{"GET", "application/x-www-form-urlencoded", "", false},
		{"POST", "", "", false},
	} {
		r := httptest.NewRequest(c.method, "/", nil)
		if c.ct != "" {
			r.Header.Set("Content-Type", c.ct)
		}
		if c.target != "" {
			r.Header.Set("X-Amz-Target", c.target)
		}
		if got := IsQueryRequest(r); got != c.want {
			t.Errorf("IsQueryRequest(%s %q %q) = %v, want %v", c.method, c.ct, c.target, got, c.want)
		}
	}
	if a := FormAction([]byte("Action=ListQueues&Version=2012-11-05")); a != "ListQueues" {
		t.Errorf("FormAction = %q", a)
	}
	if a := FormAction([]byte(`{"Action":"x"}`)); a != "" {
		t.Errorf("FormAction of JSON = %q", a)
	}
}

func formJSON(t *testing.T, form, path string) map[string]any {
	t.Helper()
	v, err := url.ParseQuery(form)
	if err != nil {
		t.Fatal(err)
	}
	data, err := formToJSON(v, path)
	if err != nil {
		t.Fatalf("formToJSON(%s): %v", form, err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestFormToJSON(t *testing.T) {
	for _, c := range []struct {
		form, path string
		want       map[string]any
	}{
		{"Action=CreateQueue&Version=2012-11-05&QueueName=q&Attribute.1.Name=VisibilityTimeout&Attribute.1.Value=5" +
			"&Attribute.2.Name=DelaySeconds&Attribute.2.Value=0&Tag.1.Key=k&Tag.1.Value=v", "/",
			map[string]any{"QueueName": "q", "Attributes": map[string]any{"VisibilityTimeout": "5", "DelaySeconds": "0"},
				"tags": map[string]any{"k": "v"}}},
		{"Action=GetQueueAttributes&QueueUrl=http://h/1/q&AttributeName.2=QueueArn&AttributeName.1=All", "/",
			map[string]any{"QueueUrl": "http://h/1/q", "AttributeNames": []any{"All", "QueueArn"}}},
		{"Action=SendMessage&MessageBody=a+b%26c&DelaySeconds=3" +
			"&MessageAttribute.1.Name=s&MessageAttribute.1.Value.DataType=String&MessageAttribute.1.Value.StringValue=x" +
			"&MessageAttribute.2.Name=b&MessageAttribute.2.Value.DataType=Binary&MessageAttribute.2.Value.BinaryValue=AAE%3D",
			"/123456789012/q",
			map[string]any{"QueueUrl": "/123456789012/q", "MessageBody": "a b&c", "DelaySeconds": 3.0,
				"MessageAttributes": map[string]any{
					"s": map[string]any{"DataType": "String", "StringValue": "x"},
					"b": map[string]any{"DataType": "Binary", "BinaryValue": "AAE="},
				}}},
		{"Action=ReceiveMessage&QueueUrl=u&MaxNumberOfMessages=10&WaitTimeSeconds=0&VisibilityTimeout=30" +
			"&AttributeName.1=All&MessageAttributeName.1=All&MessageSystemAttributeName.1=SentTimestamp", "/ignored/path",
			map[string]any{"QueueUrl": "u", "MaxNumberOfMessages": 10.0, "WaitTimeSeconds": 0.0, "VisibilityTimeout": 30.0,
				"AttributeNames": []any{"All"}, "MessageAttributeNames": []any{"All"}, "MessageSystemAttributeNames": []any{"SentTimestamp"}}},
		{"Action=DeleteMessageBatch&QueueUrl=u&DeleteMessageBatchRequestEntry.1.Id=a&DeleteMessageBatchRequestEntry.1.ReceiptHandle=h", "",
			map[string]any{"QueueUrl": "u", "Entries": []any{map[string]any{"Id": "a", "ReceiptHandle": "h"}}}},
	} {
		if got := formJSON(t, c.form, c.path); !reflect.DeepEqual(got, c.want) {
			t.Errorf("formToJSON(%s)\n got %v\nwant %v", c.form, got, c.want)
		}
	}
	for _, bad := range []string{"MaxNumberOfMessages=ten", "AttributeName.x=All", "Attribute.1.Value=5", "MessageAttribute.0.Name=a"} {
		v, _ := url.ParseQuery(bad)
		if _, err := formToJSON(v, "/"); err == nil {
			t.Errorf("formToJSON(%s) succeeded", bad)
		} else if e, internal := fromError(err); internal || e.status != http.StatusBadRequest {
			t.Errorf("formToJSON(%s): %v", bad, err)
		}
	}
}

// The decoded shapes of the answers, as botocore reads them.
type xmlAttr struct {
	Name  string
	Value string
}

type xmlMsgAttr struct {
	Name  string
	Value struct {
		DataType, StringValue, BinaryValue string
	}
}

func TestQueryResponseXML(t *testing.T) {
	s := "x"
	out := map[string]any{"Messages": []receivedMessage{{
		MessageId: "id1", ReceiptHandle: "rh", MD5OfBody: "md5", Body: "<b>&\"\r\n",
		Attributes:             map[string]string{"SentTimestamp": "1", "ApproximateReceiveCount": "2"},
		MD5OfMessageAttributes: "ma",
		MessageAttributes:      map[string]MessageAttributeValue{"s": {DataType: "String", StringValue: &s}, "b": {DataType: "Binary", BinaryValue: []byte{0, 1}}},
	}}}
	data, err := encodeQueryResponse("ReceiveMessage", true, out, "req-1")
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		XMLName xml.Name `xml:"http://queue.amazonaws.com/doc/2012-11-05/ ReceiveMessageResponse"`
		Result  struct {
			Message []struct {
				MessageId, ReceiptHandle, MD5OfBody, Body, MD5OfMessageAttributes string
				Attribute                                                         []xmlAttr
				MessageAttribute                                                  []xmlMsgAttr
			}
		} `xml:"ReceiveMessageResult"`
		RequestID string `xml:"ResponseMetadata>RequestId"`
	}
	if err := xml.Unmarshal(data, &got); err != nil {
		t.Fatalf("%v\n%s", err, data)
	}
	if len(got.Result.Message) != 1 || got.RequestID != "req-1" {
		t.Fatalf("decoded %+v from\n%s", got, data)
	}
	m := got.Result.Message[0]
	if m.MessageId != "id1" || m.ReceiptHandle != "rh" || m.MD5OfBody != "md5" || m.Body != "<b>&\"\r\n" || m.MD5OfMessageAttributes != "ma" {
		t.Errorf("message %+v from\n%s", m, data)
	}
	if want := []xmlAttr{{"ApproximateReceiveCount", "2"}, {"SentTimestamp", "1"}}; !reflect.DeepEqual(m.Attribute, want) {
		t.Errorf("attributes %+v", m.Attribute)
	}
	if len(m.MessageAttribute) != 2 || m.MessageAttribute[0].Name != "b" || m.MessageAttribute[0].Value.BinaryValue != "AAE=" ||
		m.MessageAttribute[0].Value.DataType != "Binary" || m.MessageAttribute[1].Value.StringValue != "x" {
		t.Errorf("message attributes %+v", m.MessageAttribute)
	}

	// An empty receive still has its result element; operations without
	// a result have only the metadata.
	data, _ = encodeQueryResponse("ReceiveMessage", true, struct{}{}, "r")
	if !strings.Contains(string(data), "<ReceiveMessageResult></ReceiveMessageResult>") {
		t.Errorf("empty receive:\n%s", data)
	}
	data, _ = encodeQueryResponse("DeleteMessage", false, struct{}{}, "r")
	if want := `<DeleteMessageResponse xmlns="http://queue.amazonaws.com/doc/2012-11-05/"><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></DeleteMessageResponse>`; !strings.HasSuffix(string(data), want) {
		t.Errorf("DeleteMessage:\n%s", data)
	}

	data, _ = encodeQueryResponse("ListQueues", true, map[string]any{"QueueUrls": []string{"u1", "u2"}, "NextToken": "n"}, "r")
	var lq struct {
		URLs []string `xml:"ListQueuesResult>QueueUrl"`
		Next string   `xml:"ListQueuesResult>NextToken"`
	}
	if err := xml.Unmarshal(data, &lq); err != nil || !reflect.DeepEqual(lq.URLs, []string{"u1", "u2"}) || lq.Next != "n" {
		t.Errorf("ListQueues %+v %v:\n%s", lq, err, data)
	}

	data, _ = encodeQueryResponse("GetQueueAttributes", true, map[string]any{"Attributes": map[string]string{"QueueArn": "arn", "DelaySeconds": "0"}}, "r")
	var ga struct {
		Attrs []xmlAttr `xml:"GetQueueAttributesResult>Attribute"`
	}
	if err := xml.Unmarshal(data, &ga); err != nil || !reflect.DeepEqual(ga.Attrs, []xmlAttr{{"DelaySeconds", "0"}, {"QueueArn", "arn"}}) {
		t.Errorf("GetQueueAttributes %+v %v:\n%s", ga, err, data)
	}

	data, _ = encodeQueryResponse("SendMessage", true, map[string]string{"MessageId": "m", "MD5OfMessageBody": "d"}, "r")
	if !strings.Contains(string(data), "<SendMessageResult><MD5OfMessageBody>d</MD5OfMessageBody><MessageId>m</MessageId></SendMessageResult>") {
		t.Errorf("SendMessage:\n%s", data)
	}

	data, _ = encodeQueryResponse("DeleteMessageBatch", true, map[string]any{
		"Successful": []map[string]string{{"Id": "a"}},
		"Failed":     []map[string]any{{"Id": "b", "SenderFault": true, "Code": "ReceiptHandleIsInvalid", "Message": "m"}},
	}, "r")
	var db struct {
		OK  []string `xml:"DeleteMessageBatchResult>DeleteMessageBatchResultEntry>Id"`
		Bad []struct {
			Id, Code, Message string
			SenderFault       bool
		} `xml:"DeleteMessageBatchResult>BatchResultErrorEntry"`
	}
	if err := xml.Unmarshal(data, &db); err != nil || len(db.OK) != 1 || len(db.Bad) != 1 || !db.Bad[0].SenderFault || db.Bad[0].Code != "ReceiptHandleIsInvalid" {
		t.Errorf("DeleteMessageBatch %+v %v:\n%s", db, err, data)
	}
}

func TestQueryErrorXML(t *testing.T) {
	rec := httptest.NewRecorder()
	rec.Header().Set("X-Amzn-RequestId", "rid")
	writeQueryError(rec, errQueueDoesNotExist(), nil)
	var got struct {
		XMLName   xml.Name `xml:"ErrorResponse"`
		Error     struct{ Type, Code, Message string }
		RequestId string
	}
	if err := xml.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if rec.Code != 400 || got.Error.Type != "Sender" || got.Error.Code != "AWS.SimpleQueueService.NonExistentQueue" ||
		got.Error.Message != "The specified queue does not exist." || got.RequestId != "rid" ||
		!strings.HasPrefix(rec.Header().Get("Content-Type"), "text/xml") {
		t.Errorf("%d %+v\n%s", rec.Code, got, rec.Body)
	}
}
