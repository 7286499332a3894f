package cspfake

import (
	"encoding/json"
	"reflect"
	"regexp"
	"testing"
	"time"
)

var uuidPattern = regexp.MustCompile(`^identity/accounts/[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestGenerate(t *testing.T) {
	got := Generate(7, []string{"lab", "demo", "ws"})
	names := []string{"lab-0001", "demo-0001", "ws-0001", "lab-0002", "demo-0002", "ws-0002", "lab-0003"}
	ids := map[string]bool{}
	cspIDs := map[int64]bool{}
	for i, a := range got {
		if a.Name != names[i] {
			t.Errorf("account %d name = %q, want %q", i, a.Name, names[i])
		}
		if a.AccountType != "sandbox" || a.State != "active" {
			t.Errorf("account %d is %s/%s, want sandbox/active", i, a.AccountType, a.State)
		}
		if !uuidPattern.MatchString(a.ID) {
			t.Errorf("account %d id %q is not identity/accounts/<uuid>", i, a.ID)
		}
		if _, err := time.Parse(time.RFC3339Nano, a.CreatedAt); err != nil {
			t.Errorf("account %d created_at %q: %v", i, a.CreatedAt, err)
		}
		if len(a.SFDCAccountID) != 15 {
			t.Errorf("account %d sfdc_account_id %q is not 15 characters", i, a.SFDCAccountID)
		}
		if a.CSPID <= 0 || cspIDs[a.CSPID] || ids[a.ID] {
			t.Errorf("account %d: csp_id %d / id %s missing or repeated", i, a.CSPID, a.ID)
		}
		ids[a.ID], cspIDs[a.CSPID] = true, true
	}
	if len(got) != 7 {
		t.Fatalf("Generate(7) returned %d accounts", len(got))
	}
	if !reflect.DeepEqual(got, Generate(7, []string{"lab", "demo", "ws"})) {
		t.Fatal("Generate is not deterministic")
	}
	if d := Generate(2, nil); d[0].Name != "lab-0001" || d[1].Name != "lab-0002" {
		t.Fatalf("default prefix: %q, %q", d[0].Name, d[1].Name)
	}
	if len(Generate(0, nil)) != 0 || len(Generate(-3, nil)) != 0 {
		t.Fatal("Generate of no accounts must return none")
	}
}

func TestLoadFixture(t *testing.T) {
	accounts, err := LoadFixture("../../../testdata/csp/accounts.json")
	if err != nil {
		t.Fatalf("LoadFixture: %v", err)
	}
	if len(accounts) != 8 {
		t.Fatalf("fixture has %d accounts, want 8", len(accounts))
	}
	first := accounts[0]
	if first.UUID() != "6f1c2a4e-9b1d-4c8e-a6f2-3d5e7b9c1a01" || first.CSPID != 2012345 || first.Name != "lab-adventure-0001" {
		t.Fatalf("first account = %+v", first)
	}
	// Raw is kept verbatim, including the fields the typed view cannot hold.
	var m map[string]any
	if err := json.Unmarshal(accounts[3].Raw, &m); err != nil || m["csp_id"] != "2012348" || m["sfdc_account_id"] != nil {
		t.Fatalf("raw entry 3 = %s (%v)", accounts[3].Raw, err)
	}
	if accounts[3].CSPID != 0 {
		t.Fatalf("a string csp_id must not fill the typed field, got %d", accounts[3].CSPID)
	}
	if _, err := LoadFixture("does-not-exist.json"); err == nil {
		t.Fatal("LoadFixture of a missing file succeeded")
	}
}
