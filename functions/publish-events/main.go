// Command publish-events is the Lambda function that consumes the pool table's stream: it
// publishes each transition's domain event on the stack's event bus (docs/events.md).
package main

import (
	"context"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/sandbox-broker/broker/pkg/app"
	"github.com/sandbox-broker/broker/pkg/app/eventfn"
)

func main() {
	handler, err := eventfn.Consumer(context.Background(), os.Getenv, os.Stdout)
	if err != nil {
		app.Exit(err)
	}
	lambda.Start(handler)
}
