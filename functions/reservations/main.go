// Command reservations is the Lambda function of the reservations job (jobs.Table): EventBridge invokes
// it on the job's schedule.
package main

import (
	"context"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/sandbox-broker/broker/pkg/app"
	"github.com/sandbox-broker/broker/pkg/app/job"
)

func main() {
	handler, err := job.Function(context.Background(), os.Getenv, os.Stdout, "reservations")
	if err != nil {
		app.Exit(err)
	}
	lambda.Start(handler)
}
