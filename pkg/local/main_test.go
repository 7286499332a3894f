package local

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sandbox-broker/broker/internal/testkit"
	"github.com/sandbox-broker/broker/pkg/api"
	"github.com/sandbox-broker/broker/pkg/api/apitest"
	"github.com/sandbox-broker/broker/pkg/pool/pooltest"
)

func TestMain(m *testing.M) { pooltest.Main(m) }

// startStack runs a stack on the test binary's DynamoDB Local (DYNAMODB_ENDPOINT, a fresh
// table unless extra names one) with the fake CSP, on a free port, and stops it when the
// test ends.
func startStack(t *testing.T, extra map[string]string) (*Stack, string, *testkit.Buffer) {
	t.Helper()
	env := map[string]string{
		"PORT": "0", "DYNAMODB_ENDPOINT": pooltest.Endpoint(),
		"SEED_SANDBOXES": "6", "SEED_PREFIXES": "lab,other", "JOB_INTERVAL_SCALE": "0.05", "LOG_LEVEL": "debug",
		"EVENTS_FILE": filepath.Join(t.TempDir(), "events.jsonl"),
	}
	for k, v := range extra {
		env[k] = v
	}
	// One table per stack: with a second one created after the stack's table, DynamoDB
	// Local answered the stack's stream poller TrimmedDataAccessException on every read,
	// and the stack wrote no events.
	if env["TABLE_NAME"] == "" {
		env["TABLE_NAME"] = pooltest.NewTableWithStream(t)
	}
	var banner bytes.Buffer
	logs := &testkit.Buffer{}
	s, err := Start(context.Background(), testkit.Env(env), &banner, logs)
	if err != nil {
		t.Fatalf("start: %v\nlogs:\n%s", err, logs.String())
	}
	t.Cleanup(s.Stop)
	return s, banner.String(), logs
}

// client calls the stack over HTTP and holds every answer to the OpenAPI document.
type client struct {
	t   *testing.T
	url string
}

type answer struct {
	status int
	header http.Header
	body   []byte
}

func (c client) do(method, path string, header http.Header, body []byte) answer {
	c.t.Helper()
	a, err := c.send(method, path, header, body)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	c.check(method, path, a)
	return a
}

// send makes the call and reads the answer; unlike do, it may run on any goroutine.
func (c client) send(method, path string, header http.Header, body []byte) (answer, error) {
	req, err := http.NewRequest(method, c.url+path, bytes.NewReader(body))
	if err != nil {
		return answer{}, err
	}
	for k, vs := range header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return answer{}, err
	}
	return answer{resp.StatusCode, resp.Header, b}, nil
}

// check holds an answer to the OpenAPI document.
func (c client) check(method, path string, a answer) {
	c.t.Helper()
	resource, _, _ := strings.Cut(path, "?")
	if route, _, status := api.Match(method, resource); status == http.StatusOK {
		apitest.Check(c.t, route.Method, route.Path, a.status, a.header, a.body)
	} else {
		apitest.CheckError(c.t, a.status, a.header, a.body)
	}
}

// track returns the headers of a lab platform's call for student.
func track(token, student string) http.Header {
	h := http.Header{}
	h.Set("Authorization", "Bearer "+token)
	if student != "" {
		h.Set(api.HeaderSandboxID, student)
	}
	return h
}

func wantStatus(t *testing.T, what string, a answer, status int, code string) {
	t.Helper()
	if a.status != status {
		t.Fatalf("%s: %d %s, want %d", what, a.status, a.body, status)
	}
	if code != "" {
		if d := apitest.DecodeError(t, a.body); d.Code != code {
			t.Fatalf("%s: code %s, want %s: %s", what, d.Code, code, a.body)
		}
	}
	if strings.Contains(string(a.body), "goroutine") {
		t.Fatalf("%s: a stack trace in the answer", what)
	}
}
