package niosxaas_test

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/sandbox-broker/broker/internal/testkit"
	"github.com/sandbox-broker/broker/pkg/niosxaas"
	"github.com/sandbox-broker/broker/pkg/niosxaas/niosxaasfake"
)

// The email is not a secret, but the client keeps it out of logs and errors too, and the
// tests hold it to that.
const (
	testEmail    = "cleanup-bot@example.com"
	testPassword = "pw-Zq81!hunter2"
	serviceName  = "Instrqt-SaaS"
)

func startFake(t *testing.T, opts niosxaasfake.Options) *niosxaasfake.Server {
	t.Helper()
	if opts.Email == "" {
		opts.Email, opts.Password = testEmail, testPassword
	}
	return niosxaasfake.Started(t, opts)
}

// newClient returns a client of the fake whose debug-level JSON logs land in the buffer.
func newClient(t *testing.T, url string, tweak func(*niosxaas.Options)) (*niosxaas.Client, *testkit.Buffer) {
	t.Helper()
	logs := &testkit.Buffer{}
	opts := niosxaas.Options{
		BaseURL:     url,
		Credentials: niosxaas.Static(niosxaas.Credentials{Email: testEmail, Password: testPassword}),
		ServiceName: serviceName,
		Timeout:     5 * time.Second,
		Logger:      slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if tweak != nil {
		tweak(&opts)
	}
	c, err := niosxaas.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return c, logs
}

func sandboxID(i int) string {
	return fmt.Sprintf("identity/accounts/%08d-0000-4000-8000-000000000000", i)
}

func svc(id, name string) niosxaasfake.Service {
	return niosxaasfake.Service{ID: "universalinfra/universalservice/" + id, Name: name}
}

// assertNoSecrets fails if any text holds the password, the email or a jwt (every jwt
// starts with the base64 of `{"`).
func assertNoSecrets(t *testing.T, what string, texts ...string) {
	t.Helper()
	for _, text := range texts {
		for _, secret := range []string{testPassword, testEmail, "eyJ"} {
			if strings.Contains(text, secret) {
				t.Errorf("%s holds %q: %s", what, secret, text)
			}
		}
	}
}
