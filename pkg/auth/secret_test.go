package auth_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/sandbox-broker/broker/internal/testkit"
	"github.com/sandbox-broker/broker/pkg/auth"
)

// secretsManager is an HTTP server speaking the GetSecretValue call of the Secrets
// Manager JSON protocol, so the store is tested through the real SDK client.
type secretsManager struct {
	mu     sync.Mutex
	value  string
	fail   bool
	calls  atomic.Int64
	server *httptest.Server
}

func newSecretsManager(t *testing.T, value string) *secretsManager {
	sm := &secretsManager{value: value}
	sm.server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sm.calls.Add(1)
		body, _ := io.ReadAll(r.Body)
		var in struct{ SecretId string }
		if r.Header.Get("X-Amz-Target") != "secretsmanager.GetSecretValue" || json.Unmarshal(body, &in) != nil || in.SecretId != testARN {
			http.Error(w, `{"__type":"InvalidRequestException","message":"bad request"}`, http.StatusBadRequest)
			return
		}
		sm.mu.Lock()
		defer sm.mu.Unlock()
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		if sm.fail {
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = w.Write([]byte(`{"__type":"InternalServiceError","message":"try later"}`))
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"ARN": testARN, "Name": "broker-tokens", "SecretString": sm.value, "VersionId": "v1"})
	}))
	t.Cleanup(sm.server.Close)
	return sm
}

func (sm *secretsManager) set(value string, fail bool) {
	sm.mu.Lock()
	defer sm.mu.Unlock()
	sm.value, sm.fail = value, fail
}

// client reads the secret with the real Secrets Manager client, over HTTP.
func (sm *secretsManager) client() auth.ReadSecret {
	c := secretsmanager.New(secretsmanager.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(sm.server.URL),
		Credentials:      credentials.NewStaticCredentialsProvider("test", "test", ""),
		RetryMaxAttempts: 1,
	})
	return func(ctx context.Context, arn string) (string, error) {
		out, err := c.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn)})
		if err != nil {
			return "", err
		}
		return aws.ToString(out.SecretString), nil
	}
}

const testARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:broker-tokens-AbCdEf"

func secretWith(entries ...[3]string) string {
	var list []map[string]string
	for _, e := range entries {
		d := sha256.Sum256([]byte(e[2]))
		list = append(list, map[string]string{"name": e[0], "scope": e[1], "sha256": hex.EncodeToString(d[:])})
	}
	b, _ := json.Marshal(map[string]any{"tokens": list})
	return string(b)
}

func TestSecretStoreReadsOnceThenRefreshes(t *testing.T) {
	sm := newSecretsManager(t, secretWith([3]string{"instruqt", "track", trackPlain}))
	var logs bytes.Buffer
	clk := testkit.NewClock(time.Unix(1_800_000_000, 0))
	store := auth.NewSecretStore(sm.client(), testARN, auth.SecretStoreOptions{Refresh: 5 * time.Minute, Log: slog.New(slog.NewJSONHandler(&logs, nil)), Now: clk.Now})
	ctx := context.Background()

	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if _, ok := auth.Match(store.Tokens(ctx), trackPlain); !ok {
				t.Error("the configured token is not accepted")
			}
		})
	}
	wg.Wait()
	if n := sm.calls.Load(); n != 1 {
		t.Fatalf("%d reads of the secret for 20 concurrent first calls, want 1", n)
	}

	// Rotation: the new token works once the refresh interval has passed, not before.
	sm.set(secretWith([3]string{"instruqt", "track", "rotated-track-token-abcdef0123"}), false)
	clk.Advance(4 * time.Minute)
	if _, ok := auth.Match(store.Tokens(ctx), trackPlain); !ok || sm.calls.Load() != 1 {
		t.Fatal("within the refresh interval the store must serve what it read")
	}
	clk.Advance(2 * time.Minute)
	tokens := store.Tokens(ctx)
	if _, ok := auth.Match(tokens, "rotated-track-token-abcdef0123"); !ok {
		t.Fatal("the rotated token is not accepted after the refresh")
	}
	if _, ok := auth.Match(tokens, trackPlain); ok {
		t.Fatal("the revoked token is still accepted after the refresh")
	}

	// An outage keeps the last good tokens, and is retried after a short wait, not at
	// every request and not only after the full refresh interval.
	sm.set("", true)
	clk.Advance(6 * time.Minute)
	before := sm.calls.Load()
	if _, ok := auth.Match(store.Tokens(ctx), "rotated-track-token-abcdef0123"); !ok {
		t.Fatal("a failed refresh must keep the tokens read before")
	}
	store.Tokens(ctx)
	if sm.calls.Load() != before+1 {
		t.Fatalf("a failed read was retried at once (%d reads)", sm.calls.Load()-before)
	}
	if !strings.Contains(logs.String(), "cannot read the token secret") {
		t.Fatalf("the failed read is not logged: %s", logs.String())
	}
	sm.set(secretWith([3]string{"ops", "admin", adminPlain}), false)
	clk.Advance(11 * time.Second)
	if id, ok := auth.Match(store.Tokens(ctx), adminPlain); !ok || id.Scope != auth.Admin {
		t.Fatal("the store did not recover after the outage")
	}
}

// TestSecretStoreRefreshIsTimedOnTheWallClock moves the clock past the refresh interval as
// a Lambda freeze of the authorizer does (an hour on the wall clock, none on the monotonic
// one), or steps the wall clock back past the last read. A token revoked meanwhile must
// stop working at the next request; timed on the monotonic reading, it would keep working
// for as long as the freezes last.
func TestSecretStoreRefreshIsTimedOnTheWallClock(t *testing.T) {
	for _, jump := range testkit.ClockJumps() {
		t.Run(jump.Name, func(t *testing.T) {
			sm := newSecretsManager(t, secretWith([3]string{"instruqt", "track", trackPlain}))
			clk := testkit.NewMonotonicClock()
			store := auth.NewSecretStore(sm.client(), testARN, auth.SecretStoreOptions{Refresh: 5 * time.Minute, Now: clk.Now})
			ctx := context.Background()
			if _, ok := auth.Match(store.Tokens(ctx), trackPlain); !ok {
				t.Fatal("the configured token is not accepted")
			}
			sm.set(secretWith([3]string{"instruqt", "track", "rotated-track-token-abcdef0123"}), false)
			jump.Move(clk)
			if _, ok := auth.Match(store.Tokens(ctx), trackPlain); ok {
				t.Fatalf("the revoked token still works (%d reads of the secret)", sm.calls.Load())
			}
		})
	}
}

func TestSecretStoreWithoutTokensDeniesEverything(t *testing.T) {
	sm := newSecretsManager(t, "")
	sm.set("", true)
	store := auth.NewSecretStore(sm.client(), testARN, auth.SecretStoreOptions{Refresh: time.Minute, Log: slog.New(slog.DiscardHandler)})
	if d := auth.Decide(store.Tokens(context.Background()), "Bearer "+trackPlain, auth.Track); d.Outcome != auth.Unauthorized || d.Reason != auth.ReasonNoTokens {
		t.Fatalf("an unreadable secret on a cold start: %+v", d)
	}
	sm.set(`{"tokens":[{"name":"x","scope":"track","sha256":"zz"}]}`, false)
	var logs bytes.Buffer
	store = auth.NewSecretStore(sm.client(), testARN, auth.SecretStoreOptions{Refresh: time.Minute, Log: slog.New(slog.NewJSONHandler(&logs, nil))})
	if tokens := store.Tokens(context.Background()); len(tokens) != 0 {
		t.Fatalf("invalid entries were accepted: %+v", tokens)
	}
	if !strings.Contains(logs.String(), "invalid entries") {
		t.Fatalf("invalid entries are not logged: %s", logs.String())
	}
}

func TestParseSecretReadsClientLimits(t *testing.T) {
	d := func(s string) string { x := sha256.Sum256([]byte(s)); return hex.EncodeToString(x[:]) }
	raw := `{"tokens":[
		{"name":"instruqt","scope":"track","sha256":"` + d("a") + `","rate":20,"burst":40,"max_live_allocations":500},
		{"name":"plain","scope":"track","sha256":"` + d("b") + `"},
		{"name":"half","scope":"track","sha256":"` + d("c") + `","rate":20},
		{"name":"zero","scope":"track","sha256":"` + d("d") + `","rate":0,"burst":1},
		{"name":"huge","scope":"track","sha256":"` + d("e") + `","rate":1,"burst":5001},
		{"name":"nolive","scope":"track","sha256":"` + d("f") + `","max_live_allocations":0}]}`
	tokens, problems, err := auth.ParseSecret([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	if len(tokens) != 2 || tokens[0].Limits != (auth.ClientLimits{Rate: 20, Burst: 40, MaxLiveAllocations: 500}) || tokens[1].Limits != (auth.ClientLimits{}) {
		t.Fatalf("tokens %+v", tokens)
	}
	if len(problems) != 4 || !strings.Contains(problems[0], "rate and burst go together") || !strings.Contains(problems[1], "rate must be") ||
		!strings.Contains(problems[2], "burst must be") || !strings.Contains(problems[3], "max_live_allocations") {
		t.Fatalf("problems %q", problems)
	}
}

// SecretDocument writes what ParseSecret reads: every token with its scope, digest and
// limits comes back, and the document carries no plain token.
func TestSecretDocumentRoundTrips(t *testing.T) {
	var want []auth.Token
	var plains []string
	for _, tk := range []struct {
		name   string
		scope  auth.Scope
		plain  string
		limits auth.ClientLimits
	}{
		{"instruqt", auth.Track, "track-token-0123456789abcdef", auth.ClientLimits{Rate: 20, Burst: 40, MaxLiveAllocations: 500}},
		{"capped", auth.Track, "capped-token-0123456789abcdef", auth.ClientLimits{MaxLiveAllocations: 3}},
		{"ops", auth.Admin, "admin-token-0123456789abcdef", auth.ClientLimits{}},
		{"prometheus", auth.Metrics, "metrics-token-0123456789abcdef", auth.ClientLimits{}},
	} {
		token, err := auth.NewToken(tk.name, tk.scope, tk.plain)
		if err != nil {
			t.Fatal(err)
		}
		token.Limits = tk.limits
		want, plains = append(want, token), append(plains, tk.plain)
	}
	doc := auth.SecretDocument(want)
	for _, plain := range plains {
		if strings.Contains(string(doc), plain) {
			t.Errorf("the document carries a plain token: %s", doc)
		}
	}
	got, problems, err := auth.ParseSecret(doc)
	if err != nil || len(problems) > 0 {
		t.Fatalf("%v %q", err, problems)
	}
	if len(got) != len(want) {
		t.Fatalf("%d tokens back, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("token %d: %+v, want %+v", i, got[i], want[i])
		}
	}
}
