// Command emptyfunction is the baseline of the cold-start measurement (cmd/coldstart): a Go
// Lambda function that links aws-lambda-go and nothing else, so its start is the floor of
// any function's on the same machine.
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"
)

func main() {
	lambda.Start(func(context.Context) error { return nil })
}
