package niosxaasfake_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sandbox-broker/broker/internal/testkit"
	"github.com/sandbox-broker/broker/pkg/niosxaas/niosxaasfake"
)

const (
	email    = "bot@example.com"
	password = "pw-Zq81!hunter2"
	account  = "identity/accounts/0f0e0d0c-0000-4000-8000-000000000000"
)

func start(t *testing.T, opts niosxaasfake.Options) *niosxaasfake.Server {
	t.Helper()
	opts.Email, opts.Password = email, password
	return niosxaasfake.Started(t, opts)
}

// call sends one request and returns the status and the decoded JSON answer.
func call(t *testing.T, s *niosxaasfake.Server, method, path, bearer, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, s.URL()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	return resp.StatusCode, out
}

func signIn(t *testing.T, s *niosxaasfake.Server) string {
	t.Helper()
	status, out := call(t, s, "POST", "/v2/session/users/sign_in", "", `{"email":"`+email+`","password":"`+password+`"}`)
	if status != 200 {
		t.Fatalf("sign-in: %d %v", status, out)
	}
	return out["jwt"].(string)
}

func switchTo(t *testing.T, s *niosxaasfake.Server, jwt string) (int, string) {
	t.Helper()
	status, out := call(t, s, "POST", "/v2/session/account_switch", jwt, `{"id":"`+account+`"}`)
	token, _ := out["jwt"].(string)
	return status, token
}

func TestFakeFlowAndCounters(t *testing.T) {
	s := start(t, niosxaasfake.Options{})
	s.Seed(account, niosxaasfake.Service{ID: "universalinfra/universalservice/a1", Name: "Instrqt-SaaS"})
	if status, _ := call(t, s, "POST", "/v2/session/users/sign_in", "", `{"email":"`+email+`","password":"nope"}`); status != 401 {
		t.Fatalf("wrong password: %d, want 401", status)
	}
	user := signIn(t, s)
	status, sandbox := switchTo(t, s, user)
	if status != 200 || sandbox == "" {
		t.Fatalf("switch: %d", status)
	}
	if status, _ := call(t, s, "GET", "/api/universalinfra/v1/universalservices", user, ""); status != 401 {
		t.Fatalf("listing with the user jwt: %d, want 401 (it needs the account's)", status)
	}
	status, out := call(t, s, "GET", "/api/universalinfra/v1/universalservices", sandbox, "")
	if results, _ := out["results"].([]any); status != 200 || len(results) != 1 {
		t.Fatalf("list: %d %v", status, out)
	}
	if status, _ := call(t, s, "DELETE", "/api/universalinfra/v1/universalservices/a1", sandbox, ""); status != 204 {
		t.Fatalf("delete: %d", status)
	}
	if status, _ := call(t, s, "DELETE", "/api/universalinfra/v1/universalservices/a1", sandbox, ""); status != 404 {
		t.Fatalf("second delete: %d, want 404", status)
	}
	if left := s.Services(account); len(left) != 0 {
		t.Fatalf("services left: %v", left)
	}
	n := s.Counters()
	if n.SignIns != 2 || n.Switches[account] != 1 || n.Lists[account] != 1 || n.Deletes[account] != 2 {
		t.Fatalf("counters %+v", n)
	}
}

func TestFakeTokensExpireAndCanBeRevoked(t *testing.T) {
	clock := testkit.NewClock(time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC))
	s := start(t, niosxaasfake.Options{TokenTTL: time.Minute, Now: clock.Now})
	user := signIn(t, s)
	clock.Advance(59 * time.Second)
	if status, _ := switchTo(t, s, user); status != 200 {
		t.Fatalf("switch before expiry: %d", status)
	}
	clock.Advance(time.Second)
	if status, _ := switchTo(t, s, user); status != 401 {
		t.Fatalf("switch at expiry: %d, want 401", status)
	}
	user = signIn(t, s)
	s.RevokeSessions()
	if status, _ := switchTo(t, s, user); status != 401 {
		t.Fatalf("switch after revocation: %d, want 401", status)
	}
}

func TestFakeInjectsFaultsPerEndpoint(t *testing.T) {
	s := start(t, niosxaasfake.Options{})
	if err := s.SetFaults(niosxaasfake.Faults{
		SignIn: niosxaasfake.Endpoint{Fail: niosxaasfake.Failure{Trigger: niosxaasfake.Trigger{Next: 1}, Status: 503, Body: niosxaasfake.BodyHTML}},
		Switch: niosxaasfake.Endpoint{Drop: niosxaasfake.Trigger{Next: 1}},
	}); err != nil {
		t.Fatal(err)
	}
	if status, _ := call(t, s, "POST", "/v2/session/users/sign_in", "", `{"email":"`+email+`","password":"`+password+`"}`); status != 503 {
		t.Fatalf("first sign-in: %d, want the injected 503", status)
	}
	user := signIn(t, s)
	req, _ := http.NewRequest("POST", s.URL()+"/v2/session/account_switch", strings.NewReader(`{"id":"`+account+`"}`))
	req.Header.Set("Authorization", "Bearer "+user)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("dropped switch answered %d", resp.StatusCode)
	}
	if status, _ := switchTo(t, s, user); status != 200 {
		t.Fatalf("switch after the drop: %d", status)
	}
}

func TestFaultsFromEnv(t *testing.T) {
	env := map[string]string{
		"FAKE_NIOSXAAS_LATENCY": "5ms", "FAKE_NIOSXAAS_LIST_LATENCY": "1s",
		"FAKE_NIOSXAAS_SIGN_IN_FAIL_NEXT": "2", "FAKE_NIOSXAAS_SIGN_IN_FAIL_STATUS": "502", "FAKE_NIOSXAAS_SIGN_IN_FAIL_BODY": "html",
		"FAKE_NIOSXAAS_SWITCH_DROP_RATE": "0.25", "FAKE_NIOSXAAS_DELETE_FAIL_IDS": "a1, b2",
	}
	f, err := niosxaasfake.FaultsFromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if f.SignIn.Latency != 5*time.Millisecond || f.List.Latency != time.Second || f.SignIn.Fail.Next != 2 ||
		f.SignIn.Fail.Status != 502 || f.SignIn.Fail.Body != niosxaasfake.BodyHTML || f.Switch.Drop.Rate != 0.25 ||
		len(f.Delete.Fail.IDs) != 2 || f.Delete.Fail.IDs[1] != "b2" {
		t.Fatalf("got %+v", f)
	}
	bad := map[string]string{
		"FAKE_NIOSXAAS_LIST_LATENCY": "soon", "FAKE_NIOSXAAS_DELETE_FAIL_RATE": "2",
		"FAKE_NIOSXAAS_SWITCH_FAIL_STATUS": "302", "FAKE_NIOSXAAS_SIGN_IN_FAIL_BODY": "xml",
	}
	_, err = niosxaasfake.FaultsFromEnv(func(k string) string { return bad[k] })
	for _, want := range []string{`FAKE_NIOSXAAS_LIST_LATENCY="soon"`, "delete fail: rate", "switch fail: status 302", `sign in fail: body "xml"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not contain %q", err, want)
		}
	}
}

func TestFakeRefusesANonLoopbackAddress(t *testing.T) {
	s := niosxaasfake.New(niosxaasfake.Options{Email: email, Password: password, Addr: "0.0.0.0:0"})
	if err := s.Start(); err == nil || !strings.Contains(err.Error(), "not a loopback") {
		_ = s.Close()
		t.Fatalf("Start = %v, want a loopback error", err)
	}
}
