package awsapi

import "kindling/internal/uuid"

// NewRequestID returns a random UUID (version 4), the form of Lambda's
// request ids (X-Amzn-RequestId, and the invocation id a function sees).
func NewRequestID() string { return uuid.New() }
