package niosxaas_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/sandbox-broker/broker/internal/testkit"
	"github.com/sandbox-broker/broker/pkg/niosxaas"
	"github.com/sandbox-broker/broker/pkg/niosxaas/niosxaasfake"
)

func TestPasswordIsRedactedEverywhere(t *testing.T) {
	t.Parallel()
	creds := niosxaas.Credentials{Email: testEmail, Password: testPassword}
	js, err := json.Marshal(creds)
	if err != nil {
		t.Fatal(err)
	}
	logs := &testkit.Buffer{}
	slog.New(slog.NewJSONHandler(logs, nil)).Info("creds", "creds", creds, "password", creds.Password)
	slog.New(slog.NewTextHandler(logs, nil)).Info("creds", "creds", creds, "password", creds.Password)
	for _, text := range []string{
		fmt.Sprint(creds), fmt.Sprintf("%v %+v %#v %s %q %x", creds, creds, creds, creds.Password, creds.Password, creds.Password),
		fmt.Sprintf("%#v", creds.Password), string(js), logs.String(), fmt.Errorf("wrapped: %v", creds).Error(),
	} {
		if strings.Contains(text, testPassword) || strings.Contains(text, fmt.Sprintf("%x", testPassword)) {
			t.Errorf("password shown: %s", text)
		}
		if !strings.Contains(text, "[REDACTED]") {
			t.Errorf("no redaction marker: %s", text)
		}
	}
	if creds.Password.Reveal() != testPassword {
		t.Fatal("Reveal does not return the password")
	}
}

func TestParseCredentials(t *testing.T) {
	t.Parallel()
	got, err := niosxaas.ParseCredentials([]byte(` {"email": " bot@example.com ", "password": " p w "}` + "\n"))
	if err != nil || got.Email != "bot@example.com" || got.Password.Reveal() != " p w " {
		t.Fatalf("got %v, %v", got, err)
	}
	for _, tt := range []struct{ secret, want string }{
		{`not json ` + testPassword, "not a JSON object"},
		{`["` + testPassword + `"]`, "not a JSON object"},
		{`{"password":"` + testPassword + `"}`, `secret has no "email" field`},
		{`{"email":"bot@example.com"}`, `secret has no "password" field`},
		{`{"email":"bot@example.com","password":42}`, `secret field "password" is not a string`},
		{`{"email":"bot","password":"` + testPassword + `"}`, "email has no @"},
		{`{"email":"bot@example.com","password":""}`, "password is empty"},
	} {
		_, err := niosxaas.ParseCredentials([]byte(tt.secret))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseCredentials(%s) = %v, want %q", tt.secret, err, tt.want)
			continue
		}
		if strings.Contains(err.Error(), testPassword) {
			t.Errorf("error quotes the password: %v", err)
		}
	}
}

// Every path that logs, at debug level, with the password, the email and the jwts kept
// out of every line and every outcome.
func TestCredentialsAndTokensNeverReachLogsOrOutcomes(t *testing.T) {
	t.Parallel()
	fake := startFake(t, niosxaasfake.Options{})
	for i := range 4 {
		fake.Seed(sandboxID(i), svc("a", serviceName), svc("b", "other"))
	}
	var reasons []string
	c, logs := newClient(t, fake.URL(), nil)
	shadow, shadowLogs := newClient(t, fake.URL(), func(o *niosxaas.Options) { o.ShadowMode = true })
	reasons = append(reasons, fmt.Sprintf("%+v", shadow.Clean(context.Background(), sandboxID(0))))
	reasons = append(reasons, fmt.Sprintf("%+v", c.Clean(context.Background(), sandboxID(1))))
	fake.RevokeSessions()
	reasons = append(reasons, fmt.Sprintf("%+v", c.Clean(context.Background(), sandboxID(2))))
	if err := fake.SetFaults(niosxaasfake.Faults{Delete: fail(500, niosxaasfake.BodyHTML)}); err != nil {
		t.Fatal(err)
	}
	reasons = append(reasons, fmt.Sprintf("%+v", c.Clean(context.Background(), sandboxID(3))))
	fmt.Fprintf(logs, "%+v %#v\n", c, c) // even a careless dump of the client
	if !strings.Contains(logs.String(), "niosxaas signed in") || !strings.Contains(shadowLogs.String(), "would delete") {
		t.Fatalf("the scenario did not log what it should:\n%s\n%s", logs, shadowLogs)
	}
	assertNoSecrets(t, "outcomes", reasons...)
	assertNoSecrets(t, "logs", logs.String(), shadowLogs.String())
}
