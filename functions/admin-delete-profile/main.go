// Command admin-delete-profile is the Lambda function of the route "admin-delete-profile" (see pkg/api.Routes).
package main

import (
	"context"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/sandbox-broker/broker/pkg/app"
)

func main() {
	handler, err := app.Route(context.Background(), os.Getenv, os.Stdout, "admin-delete-profile")
	if err != nil {
		app.Exit(err)
	}
	lambda.Start(handler)
}
