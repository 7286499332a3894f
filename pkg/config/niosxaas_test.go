package config_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sandbox-broker/broker/internal/testkit"
	"github.com/sandbox-broker/broker/pkg/config"
	"github.com/sandbox-broker/broker/pkg/niosxaas"
)

const (
	niosxaasPassword = "pw-Zq81!hunter2"
	niosxaasARN      = "arn:aws:secretsmanager:eu-central-1:123456789012:secret:niosxaas-AbCdEf"
)

func TestLoadNIOSXaaSDisabledByDefault(t *testing.T) {
	// Disabled, nothing else is read: not even a broken variable fails the start.
	n, err := config.LoadNIOSXaaS(context.Background(), testkit.Env(map[string]string{"NIOSXAAS_TIMEOUT_SECONDS": "x"}), nil)
	if err != nil || n.Enabled {
		t.Fatalf("got %+v, %v; want disabled", n, err)
	}
}

func TestLoadNIOSXaaSDefaults(t *testing.T) {
	n, err := config.LoadNIOSXaaS(context.Background(), testkit.Env(map[string]string{
		"NIOSXAAS_ENABLED": "true", "NIOSXAAS_EMAIL": "bot@example.com", "NIOSXAAS_PASSWORD": niosxaasPassword,
	}), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !n.Enabled || n.BaseURL != "https://csp.infoblox.com" || !n.ShadowMode || n.ServiceName != "Instrqt-SaaS" ||
		n.Timeout != 30*time.Second || n.MaxAttempts != 3 || n.BreakerThreshold != 5 || n.BreakerOpenFor != time.Minute {
		t.Fatalf("got %+v", n)
	}
	creds, err := n.Credentials(context.Background())
	if err != nil || creds.Email != "bot@example.com" || creds.Password.Reveal() != niosxaasPassword {
		t.Fatalf("credentials %v, %v", creds, err)
	}
	if dump := fmt.Sprintf("%v %+v %#v %v", n, n, n, creds); strings.Contains(dump, niosxaasPassword) {
		t.Fatalf("printing the configuration shows the password: %s", dump)
	}
}

func TestLoadNIOSXaaSOverrides(t *testing.T) {
	n, err := config.LoadNIOSXaaS(context.Background(), testkit.Env(map[string]string{
		"NIOSXAAS_ENABLED": "1", "NIOSXAAS_EMAIL": "bot@example.com", "NIOSXAAS_PASSWORD": niosxaasPassword,
		"NIOSXAAS_BASE_URL": "http://127.0.0.1:8123/", "NIOSXAAS_SHADOW_MODE": "false", "NIOSXAAS_SERVICE_NAME": config.AllServices,
		"NIOSXAAS_TIMEOUT_SECONDS": "5", "NIOSXAAS_MAX_ATTEMPTS": "7", "NIOSXAAS_BREAKER_THRESHOLD": "2", "NIOSXAAS_BREAKER_OPEN_SECONDS": "9",
	}), nil)
	if err != nil {
		t.Fatal(err)
	}
	if n.BaseURL != "http://127.0.0.1:8123" || n.ShadowMode || n.ServiceName != "" || n.Timeout != 5*time.Second ||
		n.MaxAttempts != 7 || n.BreakerThreshold != 2 || n.BreakerOpenFor != 9*time.Second {
		t.Fatalf("got %+v", n)
	}
}

func TestLoadNIOSXaaSCredentialsFromASecretReadAtStartAndAtEachSignIn(t *testing.T) {
	store := &secretStore{values: map[string]string{niosxaasARN: `{"email":"bot@example.com","password":"` + niosxaasPassword + `"}`}}
	n, err := config.LoadNIOSXaaS(context.Background(), testkit.Env(map[string]string{
		"NIOSXAAS_ENABLED": "true", "NIOSXAAS_CREDENTIALS_SECRET_ARN": niosxaasARN,
	}), store.fetch)
	if err != nil {
		t.Fatal(err)
	}
	if store.reads != 1 {
		t.Fatalf("secret read %d times at start, want once", store.reads)
	}
	store.values[niosxaasARN] = `{"email":"bot@example.com","password":"rotated"}`
	creds, err := n.Credentials(context.Background())
	if err != nil || creds.Password != niosxaas.Password("rotated") || store.reads != 2 {
		t.Fatalf("credentials %v, %v after %d reads; want the rotated secret", creds, err, store.reads)
	}
}

func TestLoadNIOSXaaSRejects(t *testing.T) {
	enabled := map[string]string{"NIOSXAAS_ENABLED": "true"}
	withPassword := map[string]string{"NIOSXAAS_ENABLED": "true", "NIOSXAAS_EMAIL": "bot@example.com", "NIOSXAAS_PASSWORD": niosxaasPassword}
	store := &secretStore{values: map[string]string{
		niosxaasARN:        `{"email":"bot@example.com"}`,
		niosxaasARN + "-2": `not json ` + niosxaasPassword,
	}}
	tests := []struct {
		name  string
		base  map[string]string
		env   map[string]string
		fetch config.SecretFetcher
		want  []string
	}{
		{"bad enabled", nil, map[string]string{"NIOSXAAS_ENABLED": "yes please"}, nil, []string{`NIOSXAAS_ENABLED: "yes please" is not true or false`}},
		{"no credentials", enabled, nil, nil, []string{"NIOSXAAS_EMAIL: NIOSXAAS_EMAIL and NIOSXAAS_PASSWORD (or NIOSXAAS_CREDENTIALS_SECRET_ARN) are required"}},
		{"email without password", enabled, map[string]string{"NIOSXAAS_EMAIL": "bot@example.com"}, nil, []string{"NIOSXAAS_PASSWORD: is required with NIOSXAAS_EMAIL"}},
		{"password without email", enabled, map[string]string{"NIOSXAAS_PASSWORD": niosxaasPassword}, nil, []string{"NIOSXAAS_EMAIL: is required with NIOSXAAS_PASSWORD"}},
		{"not an email", withPassword, map[string]string{"NIOSXAAS_EMAIL": "bot"}, nil, []string{"NIOSXAAS_EMAIL: email has no @"}},
		{"both sources", withPassword, map[string]string{"NIOSXAAS_CREDENTIALS_SECRET_ARN": niosxaasARN}, store.fetch, []string{"NIOSXAAS_CREDENTIALS_SECRET_ARN: set either"}},
		{"secret without a store", enabled, map[string]string{"NIOSXAAS_CREDENTIALS_SECRET_ARN": niosxaasARN}, nil, []string{"NIOSXAAS_CREDENTIALS_SECRET_ARN: is set but no secret store"}},
		{"secret without password", enabled, map[string]string{"NIOSXAAS_CREDENTIALS_SECRET_ARN": niosxaasARN}, store.fetch, []string{`NIOSXAAS_CREDENTIALS_SECRET_ARN: secret ` + niosxaasARN + `: secret has no "password" field`}},
		{"secret not JSON", enabled, map[string]string{"NIOSXAAS_CREDENTIALS_SECRET_ARN": niosxaasARN + "-2"}, store.fetch, []string{"NIOSXAAS_CREDENTIALS_SECRET_ARN: secret", "is not a JSON object"}},
		{"missing secret", enabled, map[string]string{"NIOSXAAS_CREDENTIALS_SECRET_ARN": niosxaasARN + "-3"}, store.fetch, []string{"NIOSXAAS_CREDENTIALS_SECRET_ARN: secret", "secret not found"}},
		{"plain http to a remote host", withPassword, map[string]string{"NIOSXAAS_BASE_URL": "http://csp.infoblox.com"}, nil, []string{"NIOSXAAS_BASE_URL: ", "must be https"}},
		{"relative base URL", withPassword, map[string]string{"NIOSXAAS_BASE_URL": "csp.infoblox.com"}, nil, []string{"NIOSXAAS_BASE_URL: ", "not an absolute https URL"}},
		{"base URL with credentials", withPassword, map[string]string{"NIOSXAAS_BASE_URL": "https://bot:" + niosxaasPassword + "@csp.infoblox.com"}, nil, []string{"NIOSXAAS_BASE_URL: base URL must not carry credentials"}},
		{"odd scheme with credentials", withPassword, map[string]string{"NIOSXAAS_BASE_URL": "ftp://bot:" + niosxaasPassword + "@csp.infoblox.com"}, nil, []string{"NIOSXAAS_BASE_URL: base URL must not carry credentials"}},
		{"unparsable with credentials", withPassword, map[string]string{"NIOSXAAS_BASE_URL": "https://bot:" + niosxaasPassword + "@csp.infoblox.com:port"}, nil, []string{"NIOSXAAS_BASE_URL: base URL does not parse"}},
		{"every bad number at once", withPassword, map[string]string{
			"NIOSXAAS_TIMEOUT_SECONDS": "0", "NIOSXAAS_MAX_ATTEMPTS": "many", "NIOSXAAS_BREAKER_THRESHOLD": "0",
			"NIOSXAAS_BREAKER_OPEN_SECONDS": "3601", "NIOSXAAS_SHADOW_MODE": "maybe",
		}, nil, []string{
			"NIOSXAAS_TIMEOUT_SECONDS: 0 is outside 1..300", `NIOSXAAS_MAX_ATTEMPTS: "many" is not an integer`,
			"NIOSXAAS_BREAKER_THRESHOLD: 0 is outside", "NIOSXAAS_BREAKER_OPEN_SECONDS: 3601 is outside", `NIOSXAAS_SHADOW_MODE: "maybe"`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{}
			for k, v := range tt.base {
				env[k] = v
			}
			for k, v := range tt.env {
				env[k] = v
			}
			_, err := config.LoadNIOSXaaS(context.Background(), testkit.Env(env), tt.fetch)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), niosxaasPassword) {
				t.Errorf("error echoes the password: %q", err)
			}
		})
	}
}
