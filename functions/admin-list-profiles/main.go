// Command admin-list-profiles is the Lambda function of the route "admin-list-profiles" (see pkg/api.Routes).
package main

import (
	"context"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/sandbox-broker/broker/pkg/app"
)

func main() {
	handler, err := app.Route(context.Background(), os.Getenv, os.Stdout, "admin-list-profiles")
	if err != nil {
		app.Exit(err)
	}
	lambda.Start(handler)
}
