package events_test

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/sandbox-broker/broker/pkg/csp"
	"github.com/sandbox-broker/broker/pkg/csp/cspfake"
	"github.com/sandbox-broker/broker/pkg/events"
)

// TestErrorClassOfWhatCleanupBooks classifies the errors the real CSP client returns for
// the fake CSP's faults, as cleanup books them in last_error, and never echoes their text.
func TestErrorClassOfWhatCleanupBooks(t *testing.T) {
	accounts := cspfake.Generate(1, nil)
	fake := cspfake.New(cspfake.Options{Token: "class-token"})
	fake.Seed(accounts...)
	if err := fake.Start(); err != nil {
		t.Fatal(err)
	}
	defer fake.Close()
	client, err := csp.New(csp.Options{BaseURL: fake.URL(), Token: "class-token", RequestTimeout: 300 * time.Millisecond, MaxAttempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		faults cspfake.Faults
		id     string
		want   string
	}{
		{"500 with a JSON body", cspfake.Faults{DeleteFail: cspfake.Failure{Trigger: cspfake.Trigger{Rate: 1}, Status: 500}}, accounts[0].ID, events.ErrorCSPServer},
		{"502 with an HTML page", cspfake.Faults{DeleteFail: cspfake.Failure{Trigger: cspfake.Trigger{Rate: 1}, Status: 502, Body: cspfake.BodyHTML}}, accounts[0].ID, events.ErrorCSPServer},
		{"409", cspfake.Faults{DeleteFail: cspfake.Failure{Trigger: cspfake.Trigger{Rate: 1}, Status: 409}}, accounts[0].ID, events.ErrorCSPClient},
		{"a dropped connection", cspfake.Faults{DeleteDrop: cspfake.Trigger{Rate: 1}}, accounts[0].ID, events.ErrorCSPUnreachable},
		{"a delete slower than the timeout", cspfake.Faults{DeleteLatency: time.Second}, accounts[0].ID, events.ErrorCSPTimeout},
		{"an external ID without uuid", cspfake.Faults{}, "identity/accounts/", events.ErrorInvalidExternalID},
	} {
		if err := fake.SetFaults(c.faults); err != nil {
			t.Fatal(err)
		}
		err := client.DeleteAccount(ctx, c.id)
		if err == nil {
			t.Fatalf("%s: no error", c.name)
		}
		if got := events.ErrorClassOf(err.Error()); got != c.want {
			t.Errorf("%s: %q is %s, want %s", c.name, err, got, c.want)
		}
	}
	if got := events.ErrorClassOf("niosxaas: HTTP 502 from the portal"); got != events.ErrorPreDeleteStep {
		t.Errorf("a failed NIOSXaaS step: %s", got)
	}
}

// TestLambdaBatchRoundTrip: a record written as a record of Lambda's batch (a dead
// letter's) reads back as the same record, every attribute type included.
func TestLambdaBatchRoundTrip(t *testing.T) {
	image := map[string]types.AttributeValue{
		"s": &types.AttributeValueMemberS{Value: "x"}, "n": &types.AttributeValueMemberN{Value: "-1.5"},
		"b": &types.AttributeValueMemberB{Value: []byte{0, 1}}, "t": &types.AttributeValueMemberBOOL{Value: true},
		"z": &types.AttributeValueMemberNULL{Value: true}, "ss": &types.AttributeValueMemberSS{Value: []string{"a", "b"}},
		"ns": &types.AttributeValueMemberNS{Value: []string{"1"}}, "bs": &types.AttributeValueMemberBS{Value: [][]byte{{2}}},
		"m": &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{"k": &types.AttributeValueMemberS{Value: "v"}}},
		"l": &types.AttributeValueMemberL{Value: []types.AttributeValue{&types.AttributeValueMemberN{Value: "2"}}},
	}
	r := events.Record{ID: "e1", Name: events.Modify, Sequence: "42", Created: time.Unix(1795000000, 0).UTC(),
		Keys: map[string]types.AttributeValue{"PK": &types.AttributeValueMemberS{Value: "SBX#1"}}, Old: image, New: image}
	raw, err := json.Marshal(events.Batch{Records: []events.LambdaRecord{r.Lambda()}})
	if err != nil {
		t.Fatal(err)
	}
	var b events.Batch
	if err := json.Unmarshal(raw, &b); err != nil {
		t.Fatal(err)
	}
	got, err := b.Decode()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || !reflect.DeepEqual(got[0].New, image) || !reflect.DeepEqual(got[0].Old, image) || got[0].Sequence != "42" ||
		!got[0].Created.Equal(r.Created) || got[0].ID != "e1" || got[0].Name != events.Modify {
		t.Errorf("round trip: %+v", got)
	}
	if _, err := (events.Batch{Records: []events.LambdaRecord{{}}}).Decode(); err != nil {
		t.Errorf("an empty record: %v", err)
	}
}
