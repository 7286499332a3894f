package config

import (
	"strings"
	"time"
)

// Auth is where the authorizer finds the API tokens.
type Auth struct {
	// TokensSecretARN names the Secrets Manager secret holding the token digests. There is
	// no other source in AWS and no default token.
	TokensSecretARN string
	// TokensRefresh is how often the secret is read again, so rotation and revocation take
	// effect without a deployment.
	TokensRefresh time.Duration
}

// LoadAuth reads TOKENS_SECRET_ARN (required) and TOKENS_REFRESH_SECONDS (300).
func LoadAuth(env Env) (Auth, error) {
	r := &reader{env: env}
	a := Auth{
		TokensSecretARN: r.required("TOKENS_SECRET_ARN"),
		TokensRefresh:   r.duration("TOKENS_REFRESH_SECONDS", 300, time.Second, 10, 3600),
	}
	if a.TokensSecretARN != "" && !strings.HasPrefix(a.TokensSecretARN, "arn:") {
		r.fail("TOKENS_SECRET_ARN", "%q is not an ARN", a.TokensSecretARN)
	}
	return a, r.err()
}
