// Command initpanic panics during init, before it ever asks the Runtime API
// for an event: the runtime exits during the init phase.
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"
)

func init() {
	panic("initpanic: deliberate failure during init")
}

func main() {
	lambda.Start(func(context.Context) error { return nil })
}
