// Command stale-cleanup is the Lambda function of the stale-cleanup job (broker.Jobs): EventBridge invokes
// it on the job's schedule, the admin API on demand.
package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/sandbox-broker/broker/pkg/jobfn"
)

func main() {
	logger := slog.New(slog.NewJSONHandler(os.Stdout, nil))
	handler, err := jobfn.New(context.Background(), "stale-cleanup", os.Getenv, logger)
	if err != nil {
		logger.Error("stale-cleanup function cannot start", "error", err.Error())
		os.Exit(1)
	}
	lambda.Start(handler)
}
