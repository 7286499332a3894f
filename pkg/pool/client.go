package pool

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/smithy-go/middleware"

	"github.com/sandbox-broker/broker/internal/ddblocal"
)

// ClientOptions say which DynamoDB to talk to.
type ClientOptions struct {
	// Endpoint overrides the AWS endpoint (DynamoDB Local); empty means AWS.
	Endpoint string
	Region   string
	// APIOptions are added to every call (tracing, request counting).
	APIOptions []func(*middleware.Stack) error
	// HTTPClient replaces the SDK's HTTP client (request counting in the benchmark).
	HTTPClient aws.HTTPClient
}

// NewClient builds a DynamoDB client. A loopback endpoint is DynamoDB Local: it gets static
// credentials, no response checksum validation, which Local does not support, the
// connections of ddblocal.HTTPClient (at most ddblocal.MaxConns, shared with every other
// client of it in this process), no client-side retry quota, and under its retries
// another send of each request DynamoDB Local refused with its lock-wait timeout
// (ddblocal.RetryLockTimeouts), also through o.HTTPClient. Anything else (AWS) uses the
// default credential chain and retryer, and connections with room for a burst.
//
// It fails only on an endpoint that is not a URL or an AWS configuration that does not
// load. The client, as every SDK client, is safe for concurrent use.
func NewClient(ctx context.Context, o ClientOptions) (*dynamodb.Client, error) {
	loadOpts := []func(*awsconfig.LoadOptions) error{awsconfig.WithRegion(o.Region)}
	local, err := isLoopback(o.Endpoint)
	if err != nil {
		return nil, err
	}
	if local {
		loadOpts = append(loadOpts, awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("local", "local", "")))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, loadOpts...)
	if err != nil {
		return nil, fmt.Errorf("pool: load AWS config: %w", err)
	}
	cfg.APIOptions = append(cfg.APIOptions, o.APIOptions...)
	cfg.HTTPClient = o.HTTPClient
	switch {
	case cfg.HTTPClient != nil:
	case local:
		cfg.HTTPClient = ddblocal.HTTPClient(o.Endpoint)
	default:
		cfg.HTTPClient = newHTTPClient()
	}
	if local {
		cfg.HTTPClient = ddblocal.RetryLockTimeouts(cfg.HTTPClient)
		// The standard retryer's client-side quota is for a remote service in trouble; on
		// DynamoDB Local a burst's transaction conflicts drain it and the next call fails
		// with "retry quota exceeded" instead of retrying.
		cfg.Retryer = func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) { o.RateLimiter = ratelimit.None })
		}
	}
	return dynamodb.NewFromConfig(cfg, func(opts *dynamodb.Options) {
		if o.Endpoint != "" {
			opts.BaseEndpoint = aws.String(o.Endpoint)
		}
		if local {
			opts.DisableValidateResponseChecksum = true
		}
	}), nil
}

// newHTTPClient is the SDK's HTTP client with room for a burst's calls: its default idle
// pool is small.
func newHTTPClient() *awshttp.BuildableClient {
	return awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
		tr.MaxIdleConns = 512
		tr.MaxIdleConnsPerHost = 512
	})
}

func isLoopback(endpoint string) (bool, error) {
	if endpoint == "" {
		return false, nil
	}
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" {
		return false, fmt.Errorf("pool: DynamoDB endpoint %q is not a URL", endpoint)
	}
	switch u.Hostname() {
	case "localhost", "127.0.0.1", "::1":
		return true, nil
	}
	return false, nil
}
