package auth_test

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"
	"testing"

	"github.com/sandbox-broker/broker/pkg/auth"
)

func mustToken(t *testing.T, name string, scope auth.Scope, plain string) auth.Token {
	t.Helper()
	tok, err := auth.NewToken(name, scope, plain)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

const (
	trackPlain = "track-token-0123456789abcdef"
	adminPlain = "admin-token-0123456789abcdef"
)

func TestParseBearerIsStrict(t *testing.T) {
	for _, c := range []struct {
		header string
		token  string // "" means rejected
	}{
		{"Bearer abc.DEF_123~+/-==", "abc.DEF_123~+/-=="},
		{"Bearer x", "x"},
		{"", ""},
		{"Bearer", ""},
		{"Bearer ", ""},
		{"bearer abc", ""},
		{"BEARER abc", ""},
		{"Bearer  abc", ""},
		{" Bearer abc", ""},
		{"Bearer abc ", ""},
		{"Bearer\tabc", ""},
		{"Bearer Bearer abc", ""},
		{"Bearer abc def", ""},
		{"Basic YWxhZGRpbjpvcGVuc2VzYW1l", ""},
		{"Token abc", ""},
		{"Bearer abc,Bearer def", ""},
		{"Bearer a=b", ""},
		{"Bearer é", ""},
		{"Bearer abc\x00", ""},
		{"Bearer " + strings.Repeat("a", auth.MaxTokenLength), strings.Repeat("a", auth.MaxTokenLength)},
		{"Bearer " + strings.Repeat("a", auth.MaxTokenLength+1), ""},
	} {
		got, err := auth.ParseBearer(c.header)
		if got != c.token || (err == nil) != (c.token != "") {
			t.Errorf("ParseBearer(%q) = %q, %v; want %q", c.header, got, err, c.token)
		}
	}
}

func TestMatchComparesDigestsOfEveryEntry(t *testing.T) {
	tokens := []auth.Token{
		mustToken(t, "instruqt", auth.Track, trackPlain),
		mustToken(t, "ops", auth.Admin, adminPlain),
		mustToken(t, "instruqt", auth.Track, "rotated-track-token-abcdef0123"),
	}
	for _, c := range []struct {
		plain string
		want  auth.Identity
		ok    bool
	}{
		{trackPlain, auth.Identity{Name: "instruqt", Scope: auth.Track}, true},
		{adminPlain, auth.Identity{Name: "ops", Scope: auth.Admin}, true},
		{"rotated-track-token-abcdef0123", auth.Identity{Name: "instruqt", Scope: auth.Track}, true},
		{trackPlain + "x", auth.Identity{}, false},
		{"", auth.Identity{}, false},
	} {
		got, ok := auth.Match(tokens, c.plain)
		if got.Name != c.want.Name || got.Scope != c.want.Scope || got.MaxLiveAllocations != 0 || ok != c.ok {
			t.Errorf("Match(%q) = %s %s %v, want %+v %v", c.plain, got.Name, got.Scope, ok, c.want, c.ok)
		}
		// The identity's usage key is the matched token's, on any REST API.
		if i := slices.IndexFunc(tokens, func(tok auth.Token) bool { return tok.Digest == sha256.Sum256([]byte(c.plain)) }); ok &&
			got.UsageKey("a1b2c3d4e5") != tokens[i].UsageKey("a1b2c3d4e5") {
			t.Errorf("Match(%q): usage key is not the matched token's", c.plain)
		}
	}
	if _, ok := auth.Match(nil, trackPlain); ok {
		t.Error("no tokens must match nothing")
	}
}

// TestUsageKeyIsDerivedFromTheEntry: the usage key is a function of the digest, the
// client's name and the REST API's id only (the authorizer and the usage-plans job compute
// it apart), long enough for API Gateway (at least 20 characters), and differs when any of
// them changes: a rotated token, the same token moved to another client, or given to a
// second stack's REST API in the same region (API Gateway refuses two keys of one value in
// a region) gets another API key.
func TestUsageKeyIsDerivedFromTheEntry(t *testing.T) {
	const api, otherAPI = "a1b2c3d4e5", "f6g7h8i9j0"
	track := mustToken(t, "instruqt", auth.Track, trackPlain)
	again := mustToken(t, "instruqt", auth.Admin, trackPlain)
	again.Limits = auth.ClientLimits{Rate: 5, Burst: 10}
	key := track.UsageKey(api)
	if len(key) != 64 || strings.Trim(key, "0123456789abcdef") != "" {
		t.Fatalf("usage key %q is not 64 hex digits", key)
	}
	if again.UsageKey(api) != key {
		t.Error("the usage key depends on more than the digest, the name and the REST API")
	}
	if strings.Contains(key, hex.EncodeToString(track.Digest[:])) || strings.Contains(key, trackPlain) {
		t.Error("the usage key shows the digest or the token")
	}
	for _, other := range []auth.Token{mustToken(t, "instruqt", auth.Track, "rotated-track-token-abcdef0123"), mustToken(t, "partner", auth.Track, trackPlain)} {
		if other.UsageKey(api) == key {
			t.Errorf("%s's other token has the same usage key", other.Name)
		}
	}
	if track.UsageKey(otherAPI) == key {
		t.Error("two REST APIs of one region get the same key for one token")
	}
}

func TestNewTokenRefusesWeakOrUnpresentableTokens(t *testing.T) {
	for _, plain := range []string{"", "short", "has space in the middle", "0123456789abcde", "é0123456789abcdef"} {
		if _, err := auth.NewToken("x", auth.Track, plain); err == nil {
			t.Errorf("NewToken(%q) accepted", plain)
		}
	}
	tok := mustToken(t, "x", auth.Track, "0123456789abcdef")
	if tok.Digest != sha256.Sum256([]byte("0123456789abcdef")) {
		t.Error("the token is not stored as its SHA-256 digest")
	}
}

func TestDecide(t *testing.T) {
	const metricsPlain = "metrics-token-0123456789"
	tokens := auth.Static{mustToken(t, "instruqt", auth.Track, trackPlain), mustToken(t, "ops", auth.Admin, adminPlain),
		mustToken(t, "prometheus", auth.Metrics, metricsPlain)}
	for _, c := range []struct {
		name   string
		tokens []auth.Token
		header string
		need   auth.Scope
		want   auth.Outcome
		who    string
	}{
		{"track token on a track route", tokens, "Bearer " + trackPlain, auth.Track, auth.Allowed, "instruqt"},
		{"admin token on an admin route", tokens, "Bearer " + adminPlain, auth.Admin, auth.Allowed, "ops"},
		{"track token on an admin route", tokens, "Bearer " + trackPlain, auth.Admin, auth.Forbidden, "instruqt"},
		{"admin token on a track route", tokens, "Bearer " + adminPlain, auth.Track, auth.Forbidden, "ops"},
		{"metrics token on a metrics route", tokens, "Bearer " + metricsPlain, auth.Metrics, auth.Allowed, "prometheus"},
		{"admin token on a metrics route", tokens, "Bearer " + adminPlain, auth.Metrics, auth.Allowed, "ops"},
		{"track token on a metrics route", tokens, "Bearer " + trackPlain, auth.Metrics, auth.Forbidden, "instruqt"},
		{"metrics token on an admin route", tokens, "Bearer " + metricsPlain, auth.Admin, auth.Forbidden, "prometheus"},
		{"metrics token on a track route", tokens, "Bearer " + metricsPlain, auth.Track, auth.Forbidden, "prometheus"},
		{"unknown token", tokens, "Bearer unknown-token-0123456789", auth.Track, auth.Unauthorized, ""},
		{"repeated scheme", tokens, "Bearer Bearer " + trackPlain, auth.Track, auth.Unauthorized, ""},
		{"lowercase scheme", tokens, "bearer " + trackPlain, auth.Track, auth.Unauthorized, ""},
		{"no header", tokens, "", auth.Track, auth.Unauthorized, ""},
		{"no tokens configured", nil, "Bearer " + trackPlain, auth.Track, auth.Unauthorized, ""},
	} {
		d := auth.Decide(c.tokens, c.header, c.need)
		if d.Outcome != c.want || d.Identity.Name != c.who {
			t.Errorf("%s: %+v, want %s by %q", c.name, d, c.want, c.who)
		}
		if strings.Contains(d.Reason, trackPlain) || strings.Contains(d.Reason, adminPlain) {
			t.Errorf("%s: the reason names the token: %q", c.name, d.Reason)
		}
	}
	if d := auth.Decide(nil, "Bearer "+trackPlain, auth.Track); d.Reason != auth.ReasonNoTokens {
		t.Errorf("no tokens: reason %q", d.Reason)
	}
}

func TestParseSecret(t *testing.T) {
	digest := func(s string) string { d := sha256.Sum256([]byte(s)); return hex.EncodeToString(d[:]) }
	raw := `{"tokens":[
		{"name":"instruqt","scope":"track","sha256":"` + digest(trackPlain) + `"},
		{"name":"ops","scope":"admin","sha256":"` + strings.ToUpper(digest(adminPlain)) + `"},
		{"name":"bad scope","scope":"root","sha256":"` + digest("a") + `"},
		{"name":"short","scope":"track","sha256":"abcd"},
		{"name":"again","scope":"track","sha256":"` + digest(trackPlain) + `"}
	]}`
	tokens, problems, err := auth.ParseSecret([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	if len(tokens) != 2 || tokens[0].Name != "instruqt" || tokens[1].Scope != auth.Admin {
		t.Fatalf("tokens %+v", tokens)
	}
	if len(problems) != 3 {
		t.Fatalf("problems %q, want 3", problems)
	}
	for _, p := range problems {
		if strings.Contains(p, digest("a")) || strings.Contains(p, digest(trackPlain)) {
			t.Errorf("a problem names a digest: %s", p)
		}
	}
	if id, ok := auth.Match(tokens, adminPlain); !ok || id.Name != "ops" {
		t.Error("an upper-case hex digest must work")
	}
	for _, bad := range []string{``, `[]`, `{"tokens":null}`, `{}`, `{"tokens":[],"extra":1}`, `not json`} {
		if _, _, err := auth.ParseSecret([]byte(bad)); err == nil {
			t.Errorf("ParseSecret(%q) accepted", bad)
		}
	}
	if tokens, _, err := auth.ParseSecret([]byte(`{"tokens":[]}`)); err != nil || len(tokens) != 0 {
		t.Errorf("an empty list is a valid document with no tokens: %v %v", tokens, err)
	}
}
