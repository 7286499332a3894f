// Command admin-sync is the Lambda function of the route "admin-sync" (see pkg/api.Routes): an admin route that starts a job.
package main

import (
	"context"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/sandbox-broker/broker/pkg/app"
	"github.com/sandbox-broker/broker/pkg/app/trigger"
)

func main() {
	handler, err := trigger.Route(context.Background(), os.Getenv, os.Stdout, "admin-sync")
	if err != nil {
		app.Exit(err)
	}
	lambda.Start(handler)
}
