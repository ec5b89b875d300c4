// Command echo is a Lambda function (aws-lambda-go, provided.al2023) that
// returns its event unchanged, byte for byte.
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"
)

// rawEcho implements lambda.Handler on raw bytes, so neither the event nor the
// response goes through a JSON round trip that could reformat it.
type rawEcho struct{}

func (rawEcho) Invoke(_ context.Context, payload []byte) ([]byte, error) {
	return payload, nil
}

func main() {
	lambda.Start(rawEcho{})
}
