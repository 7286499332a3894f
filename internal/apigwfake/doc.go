// Package apigwfake is a fake of API Gateway's management API (REST JSON, as
// aws-sdk-go-v2's apigateway client sends it) over real loopback HTTP, for the usage-plans
// job's tests. It knows one REST API with one stage and implements only the calls the job
// makes: the stage, API keys, usage plans and their keys, with API Gateway's rules that
// the job must respect (an API key value is unique and at least 20 characters; a usage
// plan with API stages cannot be deleted; a key is in at most one plan of a stage). It
// records each request and can fail the requests that match a Failure.
package apigwfake
