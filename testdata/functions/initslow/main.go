// Command initslow sleeps during init for INIT_SLEEP_MS milliseconds, then
// serves as an echo function. It exercises Init Duration and the init limit.
package main

import (
	"context"
	"os"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
)

func init() {
	ms, err := strconv.Atoi(os.Getenv("INIT_SLEEP_MS"))
	if err == nil && ms > 0 {
		time.Sleep(time.Duration(ms) * time.Millisecond)
	}
}

type rawEcho struct{}

func (rawEcho) Invoke(_ context.Context, payload []byte) ([]byte, error) {
	return payload, nil
}

func main() {
	lambda.Start(rawEcho{})
}
