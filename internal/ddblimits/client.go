package ddblimits

import (
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

// The AWS SDK for Go v2 gives a DynamoDB client of its own defaults these retry settings
// (service/dynamodb, resolveRetryer): four attempts, and a 25 ms base delay for errors
// other than throttling (a throttle always backs off from 1 s). TestAWSRetryerIsTheSDKs
// holds these to the SDK's.
const (
	sdkMaxAttempts = 4
	sdkBaseDelay   = 25 * time.Millisecond
)

// AWSRetryer is the retryer a DynamoDB client of the AWS SDK for Go v2 has by default —
// what classifies an error as retryable or throttling, how many attempts, which backoff —
// without the client-side retry quota. In AWS the quota is per client, and a Lambda
// instance's client serves one request at a time, so it never binds there; a test that
// shares one client among hundreds of simulated instances would drain it at once.
func AWSRetryer() aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = sdkMaxAttempts
		o.BaseDelay = sdkBaseDelay
		o.RateLimiter = ratelimit.None
	})
}

// AsInLambda returns a copy of c that retries as a Lambda function's DynamoDB client
// does in AWS (AWSRetryer) and checks every answer's CRC32, as clients of AWS do.
func AsInLambda(c *dynamodb.Client) *dynamodb.Client {
	return dynamodb.New(c.Options(), func(o *dynamodb.Options) {
		o.Retryer = AWSRetryer()
		o.DisableValidateResponseChecksum = false
	})
}
