package csp_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/sandbox-broker/broker/pkg/csp"
	"github.com/sandbox-broker/broker/pkg/csp/cspfake"
)

const testToken = "tok-3f9a1c"

// startFake serves accounts on 127.0.0.1 until the test ends.
func startFake(t *testing.T, opts cspfake.Options, accounts ...cspfake.Account) *cspfake.Server {
	t.Helper()
	if opts.Token == "" {
		opts.Token = testToken
	}
	return cspfake.Started(t, opts, accounts...)
}

func setFaults(t *testing.T, s *cspfake.Server, f cspfake.Faults) {
	t.Helper()
	if err := s.SetFaults(f); err != nil {
		t.Fatalf("set faults: %v", err)
	}
}

// newClient points a client at baseURL; tweak adjusts the options first.
func newClient(t *testing.T, baseURL string, tweak func(*csp.Options)) *csp.Client {
	t.Helper()
	opts := csp.Options{BaseURL: baseURL, Token: testToken, RequestTimeout: 2 * time.Second}
	if tweak != nil {
		tweak(&opts)
	}
	c, err := csp.New(opts)
	if err != nil {
		t.Fatalf("csp.New: %v", err)
	}
	return c
}

func deleteStatuses(s *cspfake.Server) []int {
	var out []int
	for _, d := range s.Deletes() {
		out = append(out, d.Status)
	}
	return out
}

// expectedAccount is what the client should make of a generated account.
func expectedAccount(t *testing.T, a cspfake.Account) csp.Account {
	t.Helper()
	created, err := time.Parse(time.RFC3339Nano, a.CreatedAt)
	if err != nil {
		t.Fatalf("generated created_at %q: %v", a.CreatedAt, err)
	}
	return csp.Account{
		SandboxID:     strconv.FormatInt(a.CSPID, 10),
		HasCSPID:      true,
		UUID:          a.UUID(),
		ExternalID:    a.ID,
		Name:          a.Name,
		CreatedAt:     created.UTC(),
		SFDCAccountID: a.SFDCAccountID,
	}
}

func sameAccount(a, b csp.Account) bool {
	return a.SandboxID == b.SandboxID && a.HasCSPID == b.HasCSPID && a.UUID == b.UUID && a.ExternalID == b.ExternalID && a.Name == b.Name &&
		a.CreatedAt.Equal(b.CreatedAt) && a.SFDCAccountID == b.SFDCAccountID
}
