package pool

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/smithy-go/middleware"
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
// credentials and no response checksum validation, which Local does not support. Anything
// else uses the default credential chain.
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
	if cfg.HTTPClient == nil {
		// Allocation bursts run many calls at once; the SDK's default idle pool is small.
		cfg.HTTPClient = awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
			tr.MaxIdleConns = 512
			tr.MaxIdleConnsPerHost = 512
		})
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
