package local

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sandbox-broker/broker/internal/testkit"
	"github.com/sandbox-broker/broker/pkg/api"
	"github.com/sandbox-broker/broker/pkg/api/apitest"
	"github.com/sandbox-broker/broker/pkg/pool"
	"github.com/sandbox-broker/broker/pkg/pool/pooltest"
)

const (
	otherLabToken  = "other-lab-token-0123456789abcdef"
	cappedLabToken = "capped-lab-token-0123456789abcdef"
)

// tokensFile writes a BROKER_TOKENS_FILE in the token secret's format.
func writeTokensFile(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tokens.json")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func digest(plain string) string {
	d := sha256.Sum256([]byte(plain))
	return hex.EncodeToString(d[:])
}

// Two track clients that send the same student ID are two students: neither sees,
// replays, extends or releases the other's sandbox. A capped client's cap reaches the
// allocate function through the gateway, and the student limit answers in the envelope.
func TestClientsAreIsolatedOverHTTP(t *testing.T) {
	table := pooltest.NewTableWithStream(t)
	file := writeTokensFile(t, fmt.Sprintf(`{"tokens":[
		{"name":"other-lab","scope":"track","sha256":%q},
		{"name":"capped-lab","scope":"track","sha256":%q,"max_live_allocations":1}]}`, digest(otherLabToken), digest(cappedLabToken)))
	s, banner, logs := startStack(t, map[string]string{"TABLE_NAME": table, "BROKER_TOKENS_FILE": file})
	for _, want := range []string{"track: client other-lab (from BROKER_TOKENS_FILE)", "track: client capped-lab (from BROKER_TOKENS_FILE), max_live_allocations 1"} {
		if !strings.Contains(banner, want) {
			t.Errorf("the banner lacks %q:\n%s", want, banner)
		}
	}
	c := client{t, s.URL}
	sandboxOf := func(a answer) string {
		var body map[string]any
		if err := json.Unmarshal(a.body, &body); err != nil {
			t.Fatal(err)
		}
		return body["sandbox_id"].(string)
	}
	mine, theirs := track(s.TrackToken, "participant-0001"), track(otherLabToken, "participant-0001")

	first := c.do("POST", "/v1/allocate", mine, nil)
	wantStatus(t, "allocate", first, http.StatusCreated, "")
	id := sandboxOf(first)
	other := c.do("POST", "/v1/allocate", theirs, nil)
	wantStatus(t, "the other client's allocate of the same student ID", other, http.StatusCreated, "")
	otherID := sandboxOf(other)
	if otherID == id {
		t.Fatal("the other client replayed this client's sandbox")
	}
	for _, call := range []struct{ method, path string }{
		{"GET", "/v1/sandboxes/" + id}, {"POST", "/v1/sandboxes/" + id + "/extend"}, {"POST", "/v1/sandboxes/" + id + "/mark-for-deletion"},
	} {
		wantStatus(t, "the other client's "+call.method+" "+call.path, c.do(call.method, call.path, theirs, nil), http.StatusForbidden, api.CodeNotSandboxOwner)
	}
	if again := c.do("POST", "/v1/allocate", theirs, nil); again.status != http.StatusOK || sandboxOf(again) != otherID {
		t.Fatalf("the other client's replay: %d %s", again.status, again.body)
	}
	wantStatus(t, "the other client's release of its own", c.do("POST", "/v1/sandboxes/"+otherID+"/mark-for-deletion", theirs, nil), http.StatusOK, "")
	got := c.do("GET", "/v1/sandboxes/"+id, mine, nil)
	if wantStatus(t, "get", got, http.StatusOK, ""); !strings.Contains(string(got.body), `"status":"allocated"`) {
		t.Fatalf("this client's sandbox after the other's release: %s", got.body)
	}
	if again := c.do("POST", "/v1/allocate", mine, nil); again.status != http.StatusOK || sandboxOf(again) != id {
		t.Fatalf("this client's replay: %d %s", again.status, again.body)
	}

	// A second key for the same student: over STUDENT_MAX_LIVE_ALLOCATIONS (1).
	second := track(s.TrackToken, "participant-0001")
	second.Set(api.HeaderIdempotencyKey, "second-lab")
	over := c.do("POST", "/v1/allocate", second, nil)
	wantStatus(t, "a second key", over, http.StatusConflict, api.CodeStudentLimit)
	if strings.Contains(string(over.body), "participant-0001") || over.header.Get("Retry-After") != "" {
		t.Fatalf("the student limit's answer: %v %s", over.header, over.body)
	}

	// The capped client: one live allocation, then CLIENT_LIMIT_REACHED for another student.
	wantStatus(t, "capped allocate", c.do("POST", "/v1/allocate", track(cappedLabToken, "participant-0001"), nil), http.StatusCreated, "")
	capped := c.do("POST", "/v1/allocate", track(cappedLabToken, "participant-0002"), nil)
	wantStatus(t, "capped client's second student", capped, http.StatusConflict, api.CodeClientLimit)
	if d := apitest.DecodeError(t, capped.body); d.RetryAfter == nil || capped.header.Get("Retry-After") != fmt.Sprint(*d.RetryAfter) {
		t.Fatalf("the cap's answer: %v %s", capped.header, capped.body)
	}
	for _, tok := range []string{otherLabToken, cappedLabToken} {
		if strings.Contains(logs.String(), tok) {
			t.Fatal("a log line carries a token of the file")
		}
	}
	census := pooltest.Check(t, pool.New(pooltest.Client(), table, pool.Options{}))
	if census.ByStatus[pool.Allocated] != 2 || census.Counters != pool.CounterShards {
		t.Fatalf("census %+v", census)
	}
}

func TestBadTokensFileStopsTheStack(t *testing.T) {
	for name, body := range map[string]string{
		"not JSON":          `{"tokens":`,
		"a bad entry":       `{"tokens":[{"name":"x","scope":"root","sha256":"00"}]}`,
		"the stack's token": fmt.Sprintf(`{"tokens":[{"name":"copy","scope":"track","sha256":%q}]}`, digest("track-token-of-the-stack-0123")),
		"a cap below one":   fmt.Sprintf(`{"tokens":[{"name":"x","scope":"track","sha256":%q,"max_live_allocations":0}]}`, digest(otherLabToken)),
		"a missing file":    "",
	} {
		path := filepath.Join(t.TempDir(), "missing.json")
		if body != "" {
			path = writeTokensFile(t, body)
		}
		_, err := Start(t.Context(), testkit.Env(map[string]string{
			"PORT": "0", "DYNAMODB_ENDPOINT": pooltest.Endpoint(), "TABLE_NAME": pooltest.NewTableWithStream(t),
			"BROKER_TRACK_TOKEN": "track-token-of-the-stack-0123", "BROKER_TOKENS_FILE": path,
		}), &strings.Builder{}, &testkit.Buffer{})
		if err == nil || !strings.Contains(err.Error(), "BROKER_TOKENS_FILE") {
			t.Errorf("%s: %v, want an error naming BROKER_TOKENS_FILE", name, err)
		}
	}
}
