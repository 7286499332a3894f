// Package authorizer builds the Lambda authorizer's function: the only route-side function
// that reads a secret.
package authorizer

import (
	"context"
	"errors"
	"io"

	"github.com/sandbox-broker/broker/pkg/api"
	"github.com/sandbox-broker/broker/pkg/app"
	"github.com/sandbox-broker/broker/pkg/app/awssecrets"
	"github.com/sandbox-broker/broker/pkg/auth"
	"github.com/sandbox-broker/broker/pkg/config"
)

// New builds the Lambda authorizer: tokens from the Secrets Manager secret
// TOKENS_SECRET_ARN, re-read every TOKENS_REFRESH_SECONDS.
func New(ctx context.Context, env config.Env, out io.Writer) (*api.Authorizer, error) {
	return FromSecret(ctx, env, out, awssecrets.Fetcher(""))
}

// FromSecret builds the authorizer whose token store reads the secret TOKENS_SECRET_ARN
// with read: Secrets Manager in New, the local stack's tokens in its instances. The store
// is the authorizer's own, so each instance reads the secret on its first request.
func FromSecret(_ context.Context, env config.Env, out io.Writer, read config.SecretFetcher) (*api.Authorizer, error) {
	o, obsErr := app.NewObservability(env, out)
	authCfg, authErr := config.LoadAuth(env)
	if err := errors.Join(obsErr, authErr); err != nil {
		return nil, err
	}
	store := auth.NewSecretStore(read, authCfg.TokensSecretARN, auth.SecretStoreOptions{Refresh: authCfg.TokensRefresh, Log: o.Log})
	return api.NewAuthorizer(store, o.Log), nil
}
