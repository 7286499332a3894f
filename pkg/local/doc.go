// Package local is the local stack behind `make run` (docs/architecture.md §7): an API Gateway
// emulator in front of the same authorizer and route functions as in AWS, the background
// jobs on their schedules, DynamoDB Local (package ddblocal) and the fake CSP. Every
// function runs as Lambda runs it (lambda.go): instances built by its own constructor
// (functions.go), one invocation at a time each, within Lambda's concurrency limits; where
// the stack still differs from AWS is docs/architecture.md §8.
package local
