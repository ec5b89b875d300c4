package sqs

import (
	"crypto/md5"
	"encoding/binary"
	"encoding/hex"
	"slices"
	"strconv"
)

// attributes are a queue's settable attributes (SQS's units: seconds and
// bytes).
type attributes struct {
	VisibilityTimeout             int `json:"visibilityTimeout"`
	MessageRetentionPeriod        int `json:"messageRetentionPeriod"`
	ReceiveMessageWaitTimeSeconds int `json:"receiveMessageWaitTimeSeconds"`
	DelaySeconds                  int `json:"delaySeconds"`
	MaximumMessageSize            int `json:"maximumMessageSize"`
}

// maxMessageSize is the largest message body SQS accepts (1 MiB).
const maxMessageSize = 1048576

func defaultAttributes() attributes {
	return attributes{
		VisibilityTimeout:             30,
		MessageRetentionPeriod:        345600,
		ReceiveMessageWaitTimeSeconds: 0,
		DelaySeconds:                  0,
		MaximumMessageSize:            maxMessageSize,
	}
}

// attrRange is a settable attribute's field and range.
type attrRange struct {
	field    func(*attributes) *int
	min, max int
}

var settable = map[string]attrRange{
	"VisibilityTimeout":             {func(a *attributes) *int { return &a.VisibilityTimeout }, 0, 43200},
	"MessageRetentionPeriod":        {func(a *attributes) *int { return &a.MessageRetentionPeriod }, 60, 1209600},
	"ReceiveMessageWaitTimeSeconds": {func(a *attributes) *int { return &a.ReceiveMessageWaitTimeSeconds }, 0, 20},
	"DelaySeconds":                  {func(a *attributes) *int { return &a.DelaySeconds }, 0, 900},
	"MaximumMessageSize":            {func(a *attributes) *int { return &a.MaximumMessageSize }, 1024, maxMessageSize},
}

// apply sets the given attributes on a, validating each; unknown or
// unsupported ones are errors in SQS's words.
func (a *attributes) apply(in map[string]string) error {
	names := make([]string, 0, len(in))
	for k := range in {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		v := in[k]
		r, ok := settable[k]
		if !ok {
			switch k {
			case "FifoQueue", "ContentBasedDeduplication", "DeduplicationScope", "FifoThroughputLimit":
				if v == "false" && k == "FifoQueue" {
					continue
				}
				return errUnsupported("Kindling supports standard queues only; FIFO queues are not supported.")
			case "SqsManagedSseEnabled":
				continue // encryption at rest is the host's business
			case "Policy", "RedrivePolicy", "RedriveAllowPolicy", "KmsMasterKeyId", "KmsDataKeyReusePeriodSeconds":
				return errUnsupported("The attribute " + clip(k) + " is not supported by Kindling.")
			}
			return errInvalidAttributeName("Unknown Attribute " + clip(k) + ".")
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < r.min || n > r.max {
			return errInvalidAttributeValue("Invalid value for the parameter " + k + ".")
		}
		*r.field(a) = n
	}
	return nil
}

// differs returns the first attribute given in in whose value differs from
// a (CreateQueue's idempotency check), or "".
func (a attributes) differs(in map[string]string) string {
	b := a
	if err := b.apply(in); err != nil {
		return ""
	}
	names := make([]string, 0, len(settable))
	for k := range settable {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		if *settable[k].field(&a) != *settable[k].field(&b) {
			return k
		}
	}
	return ""
}

func md5Hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

// md5OfAttributes is SQS's MD5OfMessageAttributes: the MD5 of, for each
// attribute in name order, the length-prefixed (4 bytes, big endian) name
// and data type, a transport byte (1 string, 2 binary) and the
// length-prefixed value. "" when there are none.
func md5OfAttributes(attrs map[string]MessageAttributeValue) string {
	if len(attrs) == 0 {
		return ""
	}
	names := make([]string, 0, len(attrs))
	for k := range attrs {
		names = append(names, k)
	}
	slices.Sort(names)
	h := md5.New()
	var n [4]byte
	put := func(b []byte) {
		binary.BigEndian.PutUint32(n[:], uint32(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	for _, k := range names {
		v := attrs[k]
		put([]byte(k))
		put([]byte(v.DataType))
		if v.BinaryValue != nil {
			h.Write([]byte{2})
			put(v.BinaryValue)
		} else {
			h.Write([]byte{1})
			s := ""
			if v.StringValue != nil {
				s = *v.StringValue
			}
			put([]byte(s))
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

func clip(s string) string {
	if len(s) > 256 {
		return s[:256] + "..."
	}
	return s
}
