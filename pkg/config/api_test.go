package config_test

import (
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sandbox-broker/broker/internal/testkit"
	"github.com/sandbox-broker/broker/pkg/config"
)

func TestLoadAPICORSOrigins(t *testing.T) {
	a, err := config.LoadAPI(testkit.Env(nil))
	if err != nil || len(a.CORSOrigins) != 0 {
		t.Fatalf("default: %+v %v; want no origins (never *)", a, err)
	}
	a, err = config.LoadAPI(testkit.Env(map[string]string{"CORS_ALLOWED_ORIGINS": " https://labs.example.com, http://localhost:3000 ,"}))
	if err != nil || !slices.Equal(a.CORSOrigins, []string{"https://labs.example.com", "http://localhost:3000"}) {
		t.Fatalf("%+v %v", a, err)
	}
	if a, err := config.LoadAPI(testkit.Env(map[string]string{"CORS_ALLOWED_ORIGINS": "*"})); err != nil || a.CORSOrigins[0] != "*" {
		t.Fatalf("an explicit * is allowed: %+v %v", a, err)
	}
	for _, bad := range []string{"*,https://a.example", "labs.example.com", "https://a.example/path", "ftp://a.example", "https://user@a.example"} {
		if _, err := config.LoadAPI(testkit.Env(map[string]string{"CORS_ALLOWED_ORIGINS": bad})); err == nil || !strings.Contains(err.Error(), "CORS_ALLOWED_ORIGINS") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func TestLoadAuth(t *testing.T) {
	if _, err := config.LoadAuth(testkit.Env(nil)); err == nil || !strings.Contains(err.Error(), "TOKENS_SECRET_ARN: is required") {
		t.Fatalf("no secret: %v", err)
	}
	a, err := config.LoadAuth(testkit.Env(map[string]string{"TOKENS_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:1:secret:t"}))
	if err != nil || a.TokensRefresh != 5*time.Minute {
		t.Fatalf("%+v %v", a, err)
	}
	_, err = config.LoadAuth(testkit.Env(map[string]string{"TOKENS_SECRET_ARN": "tokens", "TOKENS_REFRESH_SECONDS": "1"}))
	if err == nil || !strings.Contains(err.Error(), "is not an ARN") || !strings.Contains(err.Error(), "TOKENS_REFRESH_SECONDS") {
		t.Fatalf("both problems must be named: %v", err)
	}
}

func TestLoadObs(t *testing.T) {
	o, err := config.LoadObs(testkit.Env(nil))
	if err != nil || o.LogLevel != slog.LevelInfo || o.MetricsNamespace != "SandboxBroker" {
		t.Fatalf("%+v %v", o, err)
	}
	if o, err := config.LoadObs(testkit.Env(map[string]string{"LOG_LEVEL": "WARN"})); err != nil || o.LogLevel != slog.LevelWarn {
		t.Fatalf("%+v %v", o, err)
	}
	for _, bad := range []string{"verbose", "info+2", "debug-4"} {
		if _, err := config.LoadObs(testkit.Env(map[string]string{"LOG_LEVEL": bad})); err == nil {
			t.Errorf("LOG_LEVEL %q accepted", bad)
		}
	}
}

func TestLoadLocal(t *testing.T) {
	l, err := config.LoadLocal(testkit.Env(nil))
	if err != nil || l.Port != 8080 || l.SeedSandboxes != 50 || !slices.Equal(l.SeedPrefixes, []string{"lab"}) ||
		l.TableName != config.DefaultLocalTable || l.AuthorizerCacheTTL != 5*time.Minute || l.TrackToken != "" {
		t.Fatalf("defaults %+v %v", l, err)
	}
	for variable, env := range map[string]map[string]string{
		"TABLE_NAME":         {"DYNAMODB_ENDPOINT": "http://127.0.0.1:8000"},
		"DATA_DIR":           {"DYNAMODB_ENDPOINT": "http://127.0.0.1:8000", "TABLE_NAME": "t", "DATA_DIR": "/tmp/x"},
		"CSP_BASE_URL":       {"CSP_API_TOKEN": "x"},
		"SEED_PREFIXES":      {"SEED_PREFIXES": "lab,a b"},
		"BROKER_ADMIN_TOKEN": {"BROKER_TRACK_TOKEN": "same-token-0123456789", "BROKER_ADMIN_TOKEN": "same-token-0123456789"},
		"PORT":               {"PORT": "70000"},
	} {
		if _, err := config.LoadLocal(testkit.Env(env)); err == nil || !strings.Contains(err.Error(), variable) {
			t.Errorf("%v: %v, want an error naming %s", env, err, variable)
		}
	}
}
