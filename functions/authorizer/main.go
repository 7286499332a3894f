// Command authorizer is the REQUEST Lambda authorizer of the API (see pkg/api.Authorizer).
package main

import (
	"context"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/sandbox-broker/broker/pkg/app"
	"github.com/sandbox-broker/broker/pkg/app/authorizer"
)

func main() {
	a, err := authorizer.New(context.Background(), os.Getenv, os.Stdout)
	if err != nil {
		app.Exit(err)
	}
	lambda.Start(a.Authorize)
}
