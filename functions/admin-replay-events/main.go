// Command admin-replay-events is the Lambda function of the route "admin-replay-events" (see pkg/api.Routes): it publishes the events' dead letters again.
package main

import (
	"context"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/sandbox-broker/broker/pkg/app"
	"github.com/sandbox-broker/broker/pkg/app/eventfn"
)

func main() {
	handler, err := eventfn.ReplayRoute(context.Background(), os.Getenv, os.Stdout, "admin-replay-events")
	if err != nil {
		app.Exit(err)
	}
	lambda.Start(handler)
}
