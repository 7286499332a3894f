package app_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/sandbox-broker/broker/internal/ddblocal"
	"github.com/sandbox-broker/broker/internal/testkit"
	"github.com/sandbox-broker/broker/pkg/app"
	"github.com/sandbox-broker/broker/pkg/app/authorizer"
)

// The authorizer as its function builds it: the token digests come from Secrets Manager
// (here an HTTP server speaking GetSecretValue, reached through the SDK's standard
// endpoint override), and the sample event's token is allowed once its digest is there.
func TestNewAuthorizerReadsTokensFromSecretsManager(t *testing.T) {
	const arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:broker-tokens-AbCdEf"
	digest := sha256.Sum256([]byte("sample-token-for-tests-only"))
	var reads atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reads.Add(1)
		body, _ := io.ReadAll(r.Body)
		if r.Header.Get("X-Amz-Target") != "secretsmanager.GetSecretValue" || !strings.Contains(string(body), arn) {
			http.Error(w, "unexpected call", http.StatusBadRequest)
			return
		}
		secret := `{"tokens":[{"name":"instruqt","scope":"track","sha256":"` + hex.EncodeToString(digest[:]) + `"}]}`
		_ = json.NewEncoder(w).Encode(map[string]string{"ARN": arn, "SecretString": secret})
	}))
	defer srv.Close()
	t.Setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", srv.URL)
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")

	var logs bytes.Buffer
	a, err := authorizer.New(context.Background(), testkit.Env(map[string]string{"TOKENS_SECRET_ARN": arn}), &logs)
	if err != nil {
		t.Fatal(err)
	}
	root, err := ddblocal.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(root, "events", "authorizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ev events.APIGatewayCustomAuthorizerRequestTypeRequest
	if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		resp, err := a.Authorize(context.Background(), ev)
		if err != nil || resp.PrincipalID != "instruqt" || resp.PolicyDocument.Statement[0].Effect != "Allow" {
			t.Fatalf("%+v %v\nlogs: %s", resp, err, logs.String())
		}
	}
	if reads.Load() != 1 {
		t.Fatalf("%d reads of the secret for 3 requests, want 1 per refresh interval", reads.Load())
	}
}

func TestStartupFailsFastNamingTheVariables(t *testing.T) {
	_, err := app.NewAPI(context.Background(), testkit.Env(map[string]string{"LOG_LEVEL": "loud", "CORS_ALLOWED_ORIGINS": "nope"}), io.Discard, nil, nil)
	for _, name := range []string{"TABLE_NAME", "LOG_LEVEL", "CORS_ALLOWED_ORIGINS"} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("the error does not name %s: %v", name, err)
		}
	}
	if _, err := authorizer.New(context.Background(), testkit.Env(nil), io.Discard); err == nil || !strings.Contains(err.Error(), "TOKENS_SECRET_ARN") {
		t.Errorf("an authorizer without a token secret must not start: %v", err)
	}
}
