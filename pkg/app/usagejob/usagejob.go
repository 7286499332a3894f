// Package usagejob builds the usage-plans job's work (jobs.UsagePlans). It is a package of
// its own, passed to job.Function by that job's main only (job.WithUsagePlans), so only the
// usage-plans bootstrap links the API Gateway client.
package usagejob

import (
	"context"
	"errors"
	"fmt"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/apigateway"

	"github.com/sandbox-broker/broker/pkg/config"
	"github.com/sandbox-broker/broker/pkg/jobs"
	"github.com/sandbox-broker/broker/pkg/obs"
	"github.com/sandbox-broker/broker/pkg/usageplans"
)

// Build reads config.LoadAuth's TOKENS_SECRET_ARN (the secret is read with fetch at each
// run) and config.LoadUsagePlans from env, and returns the reconciler on an API Gateway
// client of region, whose endpoint the SDK's own AWS_ENDPOINT_URL can move.
func Build(ctx context.Context, env config.Env, fetch config.SecretFetcher, region string) (jobs.UsagePlans, error) {
	authCfg, authErr := config.LoadAuth(env)
	cfg, cfgErr := config.LoadUsagePlans(env)
	if err := errors.Join(authErr, cfgErr); err != nil {
		return jobs.UsagePlans{}, err
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(region))
	if err != nil {
		return jobs.UsagePlans{}, fmt.Errorf("load AWS config: %w", err)
	}
	awsCfg.APIOptions = append(awsCfg.APIOptions, obs.AWSAPIOptions()...)
	return jobs.UsagePlans{
		ReadTokens: func(ctx context.Context) (string, error) { return fetch(ctx, authCfg.TokensSecretARN) },
		Reconciler: usageplans.New(apigateway.NewFromConfig(awsCfg), cfg.RestAPIID, cfg.Stage),
	}, nil
}
