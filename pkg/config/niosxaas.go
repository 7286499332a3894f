package config

import (
	"context"
	"strconv"
	"time"

	"github.com/sandbox-broker/broker/pkg/niosxaas"
)

// NIOSXaaS configures cleanup's pre-delete step (docs/upstream.md D20). When Enabled is
// false nothing else is read or required.
type NIOSXaaS struct {
	Enabled bool
	BaseURL string
	// Credentials is asked for the email and password at each sign-in; it never prints
	// the password.
	Credentials niosxaas.CredentialsSource
	ShadowMode  bool
	// ServiceName selects the services to delete by exact name; empty selects all.
	ServiceName      string
	Timeout          time.Duration
	MaxAttempts      int
	BreakerThreshold int
	BreakerOpenFor   time.Duration
}

// AllServices is the NIOSXAAS_SERVICE_NAME value that selects every service. An empty
// variable cannot mean it: Env does not tell an empty variable from an unset one, and
// unset means the default name.
const AllServices = "*"

// LoadNIOSXaaS reads NIOSXAAS_ENABLED (false) and, when enabled, NIOSXAAS_BASE_URL
// (https://csp.infoblox.com; https, or http on loopback only), NIOSXAAS_SHADOW_MODE
// (true), NIOSXAAS_SERVICE_NAME (Instrqt-SaaS; "*" for all services),
// NIOSXAAS_TIMEOUT_SECONDS (30), NIOSXAAS_MAX_ATTEMPTS (3), NIOSXAAS_BREAKER_THRESHOLD (5)
// and NIOSXAAS_BREAKER_OPEN_SECONDS (60).
//
// The credentials come from exactly one source: NIOSXAAS_EMAIL with NIOSXAAS_PASSWORD, or,
// in AWS, NIOSXAAS_CREDENTIALS_SECRET_ARN naming a secret {"email": ..., "password": ...}.
// The secret is read and checked once here, so a bad one fails the start, and again at
// each sign-in, so a rotated one is picked up. No error quotes the password.
func LoadNIOSXaaS(ctx context.Context, env Env, fetch SecretFetcher) (NIOSXaaS, error) {
	r := &reader{env: env}
	n := NIOSXaaS{Enabled: r.bool("NIOSXAAS_ENABLED", false)}
	if !n.Enabled {
		return NIOSXaaS{}, r.err()
	}
	n.BaseURL = r.str("NIOSXAAS_BASE_URL", niosxaas.DefaultBaseURL)
	if base, err := niosxaas.ValidateBaseURL(n.BaseURL); err != nil {
		r.fail("NIOSXAAS_BASE_URL", "%v", err)
	} else {
		n.BaseURL = base
	}
	n.ShadowMode = r.bool("NIOSXAAS_SHADOW_MODE", true)
	n.ServiceName = r.str("NIOSXAAS_SERVICE_NAME", "Instrqt-SaaS")
	if n.ServiceName == AllServices {
		n.ServiceName = ""
	}
	n.Timeout = r.duration("NIOSXAAS_TIMEOUT_SECONDS", 30, time.Second, 1, 300)
	n.MaxAttempts = r.int("NIOSXAAS_MAX_ATTEMPTS", 3, 1, 100)
	n.BreakerThreshold = r.int("NIOSXAAS_BREAKER_THRESHOLD", 5, 1, 1000)
	n.BreakerOpenFor = r.duration("NIOSXAAS_BREAKER_OPEN_SECONDS", 60, time.Second, 1, 3600)
	n.Credentials = r.niosxaasCredentials(ctx, fetch)
	return n, r.err()
}

func (r *reader) niosxaasCredentials(ctx context.Context, fetch SecretFetcher) niosxaas.CredentialsSource {
	// The password is read raw: surrounding spaces may be part of it.
	email, password := r.str("NIOSXAAS_EMAIL", ""), r.env("NIOSXAAS_PASSWORD")
	arn := r.str("NIOSXAAS_CREDENTIALS_SECRET_ARN", "")
	switch {
	case (email != "" || password != "") && arn != "":
		r.fail("NIOSXAAS_CREDENTIALS_SECRET_ARN", "set either NIOSXAAS_EMAIL and NIOSXAAS_PASSWORD or NIOSXAAS_CREDENTIALS_SECRET_ARN, not both")
	case arn != "":
		if fetch == nil {
			r.fail("NIOSXAAS_CREDENTIALS_SECRET_ARN", "is set but no secret store is available")
			return nil
		}
		source := func(ctx context.Context) (niosxaas.Credentials, error) {
			secret, err := fetch(ctx, arn)
			if err != nil {
				return niosxaas.Credentials{}, err
			}
			return niosxaas.ParseCredentials([]byte(secret))
		}
		if _, err := source(ctx); err != nil {
			r.fail("NIOSXAAS_CREDENTIALS_SECRET_ARN", "secret %s: %v", arn, err)
		}
		return source
	case email == "" && password == "":
		r.fail("NIOSXAAS_EMAIL", "NIOSXAAS_EMAIL and NIOSXAAS_PASSWORD (or NIOSXAAS_CREDENTIALS_SECRET_ARN) are required when NIOSXAAS_ENABLED is true")
	case password == "":
		r.fail("NIOSXAAS_PASSWORD", "is required with NIOSXAAS_EMAIL")
	case email == "":
		r.fail("NIOSXAAS_EMAIL", "is required with NIOSXAAS_PASSWORD")
	default:
		creds := niosxaas.Credentials{Email: email, Password: niosxaas.Password(password)}
		if err := creds.Validate(); err != nil {
			r.fail("NIOSXAAS_EMAIL", "%v", err)
		}
		return niosxaas.Static(creds)
	}
	return nil
}

func (r *reader) bool(name string, def bool) bool {
	raw := r.str(name, "")
	if raw == "" {
		return def
	}
	v, err := strconv.ParseBool(raw)
	if err != nil {
		r.fail(name, "%q is not true or false", raw)
		return def
	}
	return v
}
