// Package awssecrets reads secrets from AWS Secrets Manager, traced through pkg/obs. It is a
// package of its own so that only the functions that read a secret (the authorizer, the
// jobs that call the CSP) link the Secrets Manager client.
package awssecrets

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/sandbox-broker/broker/pkg/config"
	"github.com/sandbox-broker/broker/pkg/obs"
)

// Fetcher returns a config.SecretFetcher that reads secrets from Secrets Manager in region
// (empty: the region of the environment). The client is built on the first read, so a
// function that never reads a secret never loads AWS credentials for it.
func Fetcher(region string) config.SecretFetcher {
	client := sync.OnceValues(func() (*secretsmanager.Client, error) {
		cfg, err := awsconfig.LoadDefaultConfig(context.Background(), awsconfig.WithRegion(region))
		if err != nil {
			return nil, fmt.Errorf("load AWS config: %w", err)
		}
		cfg.APIOptions = append(cfg.APIOptions, obs.AWSAPIOptions()...)
		return secretsmanager.NewFromConfig(cfg), nil
	})
	return func(ctx context.Context, arn string) (string, error) {
		c, err := client()
		if err != nil {
			return "", err
		}
		out, err := c.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn)})
		if err != nil {
			return "", err
		}
		if out.SecretString == nil {
			return "", errors.New("the secret has no string value")
		}
		return *out.SecretString, nil
	}
}
