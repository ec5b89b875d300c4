package async

import (
	"fmt"
	"strings"

	"kindling/internal/errdefs"
)

// DestinationKind is the service a destination ARN names.
type DestinationKind uint8

const (
	// DestQueue is an SQS queue of this server (arn:aws:sqs:REGION:ACCOUNT:NAME).
	DestQueue DestinationKind = iota + 1
	// DestFunction is a Lambda function of this server, invoked
	// asynchronously with the record as its event
	// (arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]).
	DestFunction
)

// Destination is a parsed destination or dead-letter target ARN.
type Destination struct {
	Kind      DestinationKind
	ARN       string
	Region    string
	Account   string
	Name      string
	Qualifier string
}

// ParseDestination parses a destination ARN. Kindling delivers to SQS
// queues and Lambda functions only; anything else (SNS, EventBridge, S3,
// malformed) is errdefs.ErrInvalid with a message for the user.
func ParseDestination(arn string) (Destination, error) {
	parts := strings.Split(arn, ":")
	if len(parts) < 6 || parts[0] != "arn" || !strings.HasPrefix(parts[1], "aws") {
		return Destination{}, fmt.Errorf("%w: The destination ARN %s is invalid.", errdefs.ErrInvalid, clip(arn))
	}
	d := Destination{ARN: arn, Region: parts[3], Account: parts[4]}
	switch parts[2] {
	case "sqs":
		if len(parts) != 6 || !validToken(parts[5], 80) {
			return Destination{}, fmt.Errorf("%w: The destination ARN %s is not a valid SQS queue ARN.", errdefs.ErrInvalid, clip(arn))
		}
		d.Kind, d.Name = DestQueue, parts[5]
	case "lambda":
		if len(parts) < 7 || len(parts) > 8 || parts[5] != "function" || !validToken(parts[6], 64) ||
			(len(parts) == 8 && !validToken(parts[7], 128) && parts[7] != "$LATEST") {
			return Destination{}, fmt.Errorf("%w: The destination ARN %s is not a valid Lambda function ARN.", errdefs.ErrInvalid, clip(arn))
		}
		d.Kind, d.Name = DestFunction, parts[6]
		if len(parts) == 8 {
			d.Qualifier = parts[7]
		}
	default:
		return Destination{}, fmt.Errorf("%w: Kindling delivers asynchronous invocation records to SQS queues and Lambda functions only, not to %s.",
			errdefs.ErrInvalid, clip(arn))
	}
	if len(d.Account) != 12 || d.Region == "" {
		return Destination{}, fmt.Errorf("%w: The destination ARN %s is invalid.", errdefs.ErrInvalid, clip(arn))
	}
	return d, nil
}

// validToken reports whether s is 1..max of [a-zA-Z0-9-_].
func validToken(s string, max int) bool {
	if s == "" || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func clip(s string) string {
	if len(s) > 256 {
		return s[:256] + "..."
	}
	return s
}
