package config_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sandbox-broker/broker/internal/testkit"
	"github.com/sandbox-broker/broker/pkg/config"
)

const secretARN = "arn:aws:secretsmanager:eu-central-1:123456789012:secret:csp-token-AbCdEf"

// secretStore is a SecretFetcher over a map that counts its reads.
type secretStore struct {
	values map[string]string
	reads  int
}

func (s *secretStore) fetch(_ context.Context, arn string) (string, error) {
	s.reads++
	v, ok := s.values[arn]
	if !ok {
		return "", errors.New("ResourceNotFoundException: secret not found")
	}
	return v, nil
}

func TestLoadCSPDefaults(t *testing.T) {
	c, err := config.LoadCSP(context.Background(), testkit.Env(map[string]string{
		"CSP_BASE_URL": "https://csp.example.com/v2", "CSP_API_TOKEN": "tok",
	}), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := config.CSP{
		BaseURL: "https://csp.example.com/v2", Token: "tok", ConnectTimeout: 5 * time.Second,
		RequestTimeout: 15 * time.Second, MaxAttempts: 3, BreakerThreshold: 5, BreakerOpenFor: time.Minute,
		ListMaxAccounts: 50_000,
	}
	if c != want {
		t.Fatalf("got %+v\nwant %+v", c, want)
	}
}

func TestLoadCSPTokenFromSecretsManagerOnce(t *testing.T) {
	store := &secretStore{values: map[string]string{secretARN: "  secret-token\n"}}
	c, err := config.LoadCSP(context.Background(), testkit.Env(map[string]string{
		"CSP_BASE_URL": "https://csp.example.com/v2", "CSP_TOKEN_SECRET_ARN": secretARN,
		"CSP_REQUEST_TIMEOUT_SECONDS": "20", "CSP_BREAKER_OPEN_SECONDS": "30",
	}), store.fetch)
	if err != nil {
		t.Fatal(err)
	}
	if c.Token != "secret-token" || c.RequestTimeout != 20*time.Second || c.BreakerOpenFor != 30*time.Second {
		t.Fatalf("got %+v", c)
	}
	if store.reads != 1 {
		t.Fatalf("secret read %d times, want once", store.reads)
	}
}

func TestLoadCSPRejects(t *testing.T) {
	const token = "tok-9f2c41"
	base := map[string]string{"CSP_BASE_URL": "https://csp.example.com/v2", "CSP_API_TOKEN": token}
	store := &secretStore{values: map[string]string{secretARN: "   "}}
	tests := []struct {
		name  string
		env   map[string]string
		fetch config.SecretFetcher
		want  []string
	}{
		{"no base URL", map[string]string{"CSP_BASE_URL": ""}, nil, []string{"CSP_BASE_URL: is required"}},
		{"relative base URL", map[string]string{"CSP_BASE_URL": "csp.example.com/v2"}, nil, []string{"CSP_BASE_URL: \"csp.example.com/v2\" is not an absolute http(s) URL"}},
		{"no token at all", map[string]string{"CSP_API_TOKEN": ""}, nil, []string{"CSP_API_TOKEN: is required"}},
		{"blank token", map[string]string{"CSP_API_TOKEN": "   "}, nil, []string{"CSP_API_TOKEN: is required"}},
		{"token and secret", map[string]string{"CSP_TOKEN_SECRET_ARN": secretARN}, store.fetch, []string{"CSP_API_TOKEN: set either"}},
		{"secret without a store", map[string]string{"CSP_API_TOKEN": "", "CSP_TOKEN_SECRET_ARN": secretARN}, nil, []string{"CSP_TOKEN_SECRET_ARN: is set but no secret store"}},
		{"empty secret", map[string]string{"CSP_API_TOKEN": "", "CSP_TOKEN_SECRET_ARN": secretARN}, store.fetch, []string{"CSP_TOKEN_SECRET_ARN: secret " + secretARN + " is empty"}},
		{"missing secret", map[string]string{"CSP_API_TOKEN": "", "CSP_TOKEN_SECRET_ARN": secretARN + "x"}, store.fetch, []string{"CSP_TOKEN_SECRET_ARN: cannot read secret", "secret not found"}},
		{"every bad number at once", map[string]string{
			"CSP_CONNECT_TIMEOUT_SECONDS": "0", "CSP_REQUEST_TIMEOUT_SECONDS": "fast", "CSP_MAX_ATTEMPTS": "11",
			"CSP_BREAKER_THRESHOLD": "-1", "CSP_BREAKER_OPEN_SECONDS": "3601", "CSP_LIST_MAX_ACCOUNTS": "0",
		}, nil, []string{
			"CSP_CONNECT_TIMEOUT_SECONDS: 0 is outside 1..60", `CSP_REQUEST_TIMEOUT_SECONDS: "fast" is not an integer`,
			"CSP_MAX_ATTEMPTS: 11 is outside 1..10", "CSP_BREAKER_THRESHOLD: -1 is outside", "CSP_BREAKER_OPEN_SECONDS: 3601 is outside",
			"CSP_LIST_MAX_ACCOUNTS: 0 is outside 1..200000",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{}
			for k, v := range base {
				env[k] = v
			}
			for k, v := range tt.env {
				env[k] = v
			}
			_, err := config.LoadCSP(context.Background(), testkit.Env(env), tt.fetch)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), token) {
				t.Errorf("error echoes the token: %q", err)
			}
		})
	}
}
