// Package local is the local stack behind `make run` (docs/architecture.md §7): an API Gateway
// emulator in front of the same authorizer and route functions as in AWS, the background
// jobs on their schedules, DynamoDB Local (package ddblocal) and the fake CSP.
package local
