package sqs

// SQS's query protocol, which older SDKs and CLIs (botocore before SQS moved
// to JSON, e.g. Debian's AWS CLI v2 and boto3) speak: a form-encoded POST
//
//	Action=SendMessage&Version=2012-11-05&QueueUrl=...&MessageBody=...
//
// to the endpoint root or the queue's URL path (/ACCOUNT/NAME), signed with
// SigV4 for "sqs", answered in XML. It is an encoding only: the form is
// translated to the JSON request the operation already reads (formToJSON),
// the same operation runs, and its result is written as XML (writeQueryXML).

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"kindling/internal/awsapi"
)

const (
	// queryNamespace is the XML namespace of SQS's query answers.
	queryNamespace = "http://queue.amazonaws.com/doc/2012-11-05/"
	// FormContentType is the content type of a query-protocol request.
	FormContentType = "application/x-www-form-urlencoded"
)

// IsQueryRequest reports whether r looks like an SQS query-protocol request
// by its method and headers alone (no X-Amz-Target, a form POST); the body's
// Action parameter decides.
func IsQueryRequest(r *http.Request) bool {
	if r.Method != http.MethodPost || r.Header.Get("X-Amz-Target") != "" {
		return false
	}
	ct, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";")
	return strings.EqualFold(strings.TrimSpace(ct), FormContentType)
}

// FormAction returns a form body's Action parameter, or "".
func FormAction(body []byte) string {
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return ""
	}
	return form.Get("Action")
}

// queryOps are the operations served over the query protocol, and whether
// their answer has a <OpResult> element.
var queryOps = map[string]bool{
	"CreateQueue": true, "GetQueueUrl": true, "ListQueues": true, "DeleteQueue": false,
	"GetQueueAttributes": true, "SetQueueAttributes": false, "PurgeQueue": false,
	"SendMessage": true, "ReceiveMessage": true, "DeleteMessage": false,
	"DeleteMessageBatch": true, "ChangeMessageVisibility": false,
}

// run runs one operation on a call whose body is the operation's JSON input.
func (s *Service) run(op string, c *call) (any, error) {
	switch op {
	case "CreateQueue":
		return s.opCreateQueue(c)
	case "GetQueueUrl":
		return s.opGetQueueURL(c)
	case "ListQueues":
		return s.opListQueues(c)
	case "DeleteQueue":
		return s.opDeleteQueue(c)
	case "GetQueueAttributes":
		return s.opGetQueueAttributes(c)
	case "SetQueueAttributes":
		return s.opSetQueueAttributes(c)
	case "PurgeQueue":
		return s.opPurgeQueue(c)
	case "SendMessage":
		return s.opSendMessage(c)
	case "ReceiveMessage":
		return s.opReceiveMessage(c)
	case "DeleteMessage":
		return s.opDeleteMessage(c)
	case "DeleteMessageBatch":
		return s.opDeleteMessageBatch(c)
	case "ChangeMessageVisibility":
		return s.opChangeMessageVisibility(c)
	}
	return nil, errInvalidAction(op)
}

// ServeQuery serves SQS's query protocol (see IsQueryRequest).
func (s *Service) ServeQuery(w http.ResponseWriter, r *http.Request) {
	w.Header().Set(awsapi.HeaderRequestID, awsapi.NewRequestID())
	if r.Method != http.MethodPost {
		writeQueryError(w, errInvalidAction(r.Method), s)
		return
	}
	c, err := s.authenticate(r)
	if err != nil {
		writeQueryError(w, err, s)
		return
	}
	form, err := url.ParseQuery(string(c.body))
	if err != nil {
		writeQueryError(w, errMalformed("The request body is not a valid form: "+clip(err.Error())), s)
		return
	}
	op := form.Get("Action")
	hasResult, ok := queryOps[op]
	if !ok {
		writeQueryError(w, errInvalidAction(op), s)
		return
	}
	in, err := formToJSON(form, r.URL.Path)
	if err != nil {
		writeQueryError(w, err, s)
		return
	}
	c.body = in // the operations read the JSON protocol's input
	out, err := s.run(op, c)
	if err != nil {
		writeQueryError(w, err, s)
		return
	}
	data, err := encodeQueryResponse(op, hasResult, out, w.Header().Get(awsapi.HeaderRequestID))
	if err != nil {
		writeQueryError(w, err, s)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/xml")
	h.Set("Content-Length", strconv.Itoa(len(data)))
	w.WriteHeader(http.StatusOK)
	w.Write(data) // a failed write means the client is gone
}

// queryInts are the integer parameters; the rest are strings.
var queryInts = map[string]bool{
	"MaxNumberOfMessages": true, "VisibilityTimeout": true, "WaitTimeSeconds": true,
	"DelaySeconds": true, "MaxResults": true,
}

// queryIgnored are parameters of the protocol, not of the operation.
var queryIgnored = map[string]bool{
	"Action": true, "Version": true, "AWSAccessKeyId": true, "Signature": true, "SignatureMethod": true,
	"SignatureVersion": true, "Timestamp": true, "Expires": true, "SecurityToken": true,
}

// queryLists are the flattened lists: Prefix.N=value -> "Member": [...].
var queryLists = map[string]string{
	"AttributeName":              "AttributeNames",
	"MessageSystemAttributeName": "MessageSystemAttributeNames",
	"MessageAttributeName":       "MessageAttributeNames",
}

// indexed groups the parameters Prefix.N.Rest by N (a positive integer), in
// N's order: each group maps Rest to its value.
func indexed(form url.Values, prefix string) ([]map[string]string, error) {
	groups := map[int]map[string]string{}
	for k, vs := range form {
		rest, ok := strings.CutPrefix(k, prefix+".")
		if !ok {
			continue
		}
		num, sub, _ := strings.Cut(rest, ".")
		n, err := strconv.Atoi(num)
		if err != nil || n < 1 {
			return nil, errMalformed("The parameter " + clip(k) + " is not valid: " + prefix + ".N needs a positive integer N.")
		}
		if groups[n] == nil {
			groups[n] = map[string]string{}
		}
		groups[n][sub] = vs[0]
	}
	keys := make([]int, 0, len(groups))
	for n := range groups {
		keys = append(keys, n)
	}
	slices.Sort(keys)
	out := make([]map[string]string, len(keys))
	for i, n := range keys {
		out[i] = groups[n]
	}
	return out, nil
}

// formToJSON translates a query-protocol form into the JSON input of its
// operation. Scalars keep their names (integers become numbers); flattened
// lists and maps become the JSON protocol's arrays and objects. A request
// to the queue's URL path may leave QueueUrl out.
func formToJSON(form url.Values, path string) ([]byte, error) {
	in := map[string]any{}
	for k, vs := range form {
		if queryIgnored[k] || strings.Contains(k, ".") || len(vs) == 0 {
			continue
		}
		v := vs[0]
		if queryInts[k] {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				return nil, errInvalidParameterValue("Value " + clip(v) + " for parameter " + k + " is invalid. Reason: must be an integer.")
			}
			in[k] = n
			continue
		}
		in[k] = v
	}
	if _, ok := in["QueueUrl"]; !ok && path != "" && path != "/" {
		in["QueueUrl"] = path
	}
	for prefix, member := range queryLists {
		groups, err := indexed(form, prefix)
		if err != nil {
			return nil, err
		}
		if len(groups) == 0 {
			continue
		}
		list := make([]string, 0, len(groups))
		for _, g := range groups {
			list = append(list, g[""])
		}
		in[member] = list
	}
	// Attribute.N.Name/Value (CreateQueue, SetQueueAttributes) and
	// Tag.N.Key/Value (CreateQueue).
	for _, m := range []struct{ prefix, member, key, value string }{
		{"Attribute", "Attributes", "Name", "Value"},
		{"Tag", "tags", "Key", "Value"},
	} {
		groups, err := indexed(form, m.prefix)
		if err != nil {
			return nil, err
		}
		if len(groups) == 0 {
			continue
		}
		obj := map[string]string{}
		for _, g := range groups {
			if g[m.key] == "" {
				return nil, errMissingParameter(m.prefix + ".N." + m.key)
			}
			obj[g[m.key]] = g[m.value]
		}
		in[m.member] = obj
	}
	// MessageAttribute.N.Name, .Value.DataType, .Value.StringValue,
	// .Value.BinaryValue (base64, as in JSON).
	groups, err := indexed(form, "MessageAttribute")
	if err != nil {
		return nil, err
	}
	if len(groups) > 0 {
		attrs := map[string]any{}
		for _, g := range groups {
			if g["Name"] == "" {
				return nil, errMissingParameter("MessageAttribute.N.Name")
			}
			v := map[string]any{"DataType": g["Value.DataType"]}
			if sv, ok := g["Value.StringValue"]; ok {
				v["StringValue"] = sv
			}
			if bv, ok := g["Value.BinaryValue"]; ok {
				v["BinaryValue"] = bv
			}
			attrs[g["Name"]] = v
		}
		in["MessageAttributes"] = attrs
	}
	// DeleteMessageBatchRequestEntry.N.Id/ReceiptHandle.
	groups, err = indexed(form, "DeleteMessageBatchRequestEntry")
	if err != nil {
		return nil, err
	}
	if len(groups) > 0 {
		entries := make([]map[string]string, 0, len(groups))
		for _, g := range groups {
			entries = append(entries, map[string]string{"Id": g["Id"], "ReceiptHandle": g["ReceiptHandle"]})
		}
		in["Entries"] = entries
	}
	return json.Marshal(in)
}

// queryMembers names the XML elements of the JSON results' collections:
// a list becomes one element per member, a map one element per entry with
// Name and Value children.
var queryMembers = map[string]string{
	"QueueUrls":         "QueueUrl",
	"Attributes":        "Attribute",
	"Messages":          "Message",
	"MessageAttributes": "MessageAttribute",
	"Successful":        "DeleteMessageBatchResultEntry",
	"Failed":            "BatchResultErrorEntry",
}

// encodeQueryResponse writes an operation's result as
// <OpResponse><OpResult>...</OpResult><ResponseMetadata>...</OpResponse>.
func encodeQueryResponse(op string, hasResult bool, out any, requestID string) ([]byte, error) {
	raw, err := json.Marshal(out)
	if err != nil {
		return nil, err
	}
	var v any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.WriteString(xml.Header)
	b.WriteString("<" + op + "Response xmlns=\"" + queryNamespace + "\">")
	if hasResult {
		b.WriteString("<" + op + "Result>")
		if obj, ok := v.(map[string]any); ok {
			writeXMLFields(&b, obj)
		}
		b.WriteString("</" + op + "Result>")
	}
	b.WriteString("<ResponseMetadata><RequestId>")
	xml.EscapeText(&b, []byte(requestID))
	b.WriteString("</RequestId></ResponseMetadata></" + op + "Response>")
	return b.Bytes(), nil
}

// writeXMLFields writes an object's fields in name order.
func writeXMLFields(b *bytes.Buffer, obj map[string]any) {
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		writeXMLField(b, k, obj[k])
	}
}

func writeXMLField(b *bytes.Buffer, name string, v any) {
	switch v := v.(type) {
	case nil:
	case []any:
		member := queryMembers[name]
		if member == "" {
			member = name
		}
		for _, e := range v {
			writeXMLElement(b, member, e)
		}
	case map[string]any:
		member := queryMembers[name]
		if member == "" {
			writeXMLElement(b, name, v)
			return
		}
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			b.WriteString("<" + member + "><Name>")
			xml.EscapeText(b, []byte(k))
			b.WriteString("</Name>")
			writeXMLElement(b, "Value", v[k])
			b.WriteString("</" + member + ">")
		}
	default:
		writeXMLElement(b, name, v)
	}
}

func writeXMLElement(b *bytes.Buffer, name string, v any) {
	b.WriteString("<" + name + ">")
	switch v := v.(type) {
	case map[string]any:
		writeXMLFields(b, v)
	case string:
		xml.EscapeText(b, []byte(v))
	case json.Number:
		b.WriteString(v.String())
	case bool:
		b.WriteString(strconv.FormatBool(v))
	}
	b.WriteString("</" + name + ">")
}

// writeQueryError answers err as the query protocol does:
// <ErrorResponse><Error><Type>Sender</Type><Code>..</Code><Message>..</Message>
// <Detail/></Error><RequestId>..</RequestId></ErrorResponse>.
func writeQueryError(w http.ResponseWriter, err error, s *Service) {
	e, internal := fromError(err)
	if internal {
		s.log.Error("sqs: request failed", "requestId", w.Header().Get(awsapi.HeaderRequestID), "err", err)
	}
	body := encodeQueryError(e, w.Header().Get(awsapi.HeaderRequestID))
	h := w.Header()
	h.Set("Content-Type", "text/xml")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(e.status)
	w.Write(body) // a failed write means the client is gone
}

func encodeQueryError(e *apiError, requestID string) []byte {
	fault := "Receiver"
	if e.sender {
		fault = "Sender"
	}
	var b bytes.Buffer
	b.WriteString(xml.Header)
	b.WriteString("<ErrorResponse xmlns=\"" + queryNamespace + "\"><Error><Type>" + fault + "</Type><Code>")
	xml.EscapeText(&b, []byte(e.query))
	b.WriteString("</Code><Message>")
	xml.EscapeText(&b, []byte(e.msg))
	b.WriteString("</Message><Detail/></Error><RequestId>")
	xml.EscapeText(&b, []byte(requestID))
	b.WriteString("</RequestId></ErrorResponse>")
	return b.Bytes()
}
