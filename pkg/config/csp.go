package config

import (
	"context"
	"net/url"
	"strings"
	"time"
)

// CSP is how the jobs reach the ENG CSP API. There is no mock mode: the local stack and the
// tests point BaseURL at the fake CSP server like at any other.
type CSP struct {
	BaseURL string
	// Token is sent as "Authorization: Token <Token>"; it is never logged.
	Token            string
	ConnectTimeout   time.Duration
	RequestTimeout   time.Duration
	MaxAttempts      int
	BreakerThreshold int
	BreakerOpenFor   time.Duration
	// ListMaxAccounts bounds one listing; beyond it the listing fails.
	ListMaxAccounts int
}

// SecretFetcher returns the value of a secret (pkg/app/awssecrets reads Secrets Manager;
// this package imports no AWS client, which every function would then link).
type SecretFetcher func(ctx context.Context, arn string) (string, error)

// LoadCSP reads CSP_BASE_URL (required), the token, CSP_CONNECT_TIMEOUT_SECONDS (5),
// CSP_REQUEST_TIMEOUT_SECONDS (15: upstream deletes take 5–10 s), CSP_MAX_ATTEMPTS (3),
// CSP_BREAKER_THRESHOLD (5), CSP_BREAKER_OPEN_SECONDS (60) and CSP_LIST_MAX_ACCOUNTS (50 000:
// a listing beyond it fails rather than growing without end when the CSP pages wrongly).
//
// The token comes from exactly one of CSP_API_TOKEN or, in AWS, CSP_TOKEN_SECRET_ARN: a
// Secrets Manager secret whose value is the token, read once through fetch at start. An
// empty token is an error, never a silent switch to anything else (docs/upstream.md D25).
func LoadCSP(ctx context.Context, env Env, fetch SecretFetcher) (CSP, error) {
	r := &reader{env: env}
	c := CSP{
		BaseURL:          r.required("CSP_BASE_URL"),
		ConnectTimeout:   r.duration("CSP_CONNECT_TIMEOUT_SECONDS", 5, time.Second, 1, 60),
		RequestTimeout:   r.duration("CSP_REQUEST_TIMEOUT_SECONDS", 15, time.Second, 1, 300),
		MaxAttempts:      r.int("CSP_MAX_ATTEMPTS", 3, 1, 10),
		BreakerThreshold: r.int("CSP_BREAKER_THRESHOLD", 5, 1, 1000),
		BreakerOpenFor:   r.duration("CSP_BREAKER_OPEN_SECONDS", 60, time.Second, 1, 3600),
		ListMaxAccounts:  r.int("CSP_LIST_MAX_ACCOUNTS", 50_000, 1, 200_000),
	}
	if c.BaseURL != "" {
		if u, err := url.Parse(c.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			r.fail("CSP_BASE_URL", "%q is not an absolute http(s) URL", c.BaseURL)
		}
	}
	token, arn := r.str("CSP_API_TOKEN", ""), r.str("CSP_TOKEN_SECRET_ARN", "")
	switch {
	case token != "" && arn != "":
		r.fail("CSP_API_TOKEN", "set either CSP_API_TOKEN or CSP_TOKEN_SECRET_ARN, not both")
	case token != "":
		c.Token = token
	case arn == "":
		r.fail("CSP_API_TOKEN", "is required (or CSP_TOKEN_SECRET_ARN naming a secret that holds it)")
	case fetch == nil:
		r.fail("CSP_TOKEN_SECRET_ARN", "is set but no secret store is available")
	default:
		secret, err := fetch(ctx, arn)
		switch {
		case err != nil:
			r.fail("CSP_TOKEN_SECRET_ARN", "cannot read secret %s: %v", arn, err)
		case strings.TrimSpace(secret) == "":
			r.fail("CSP_TOKEN_SECRET_ARN", "secret %s is empty", arn)
		default:
			c.Token = strings.TrimSpace(secret)
		}
	}
	return c, r.err()
}
