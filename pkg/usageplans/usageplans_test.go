package usageplans_test

import (
	"context"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/apigateway"

	"github.com/sandbox-broker/broker/internal/apigwfake"
	"github.com/sandbox-broker/broker/internal/testkit"
	"github.com/sandbox-broker/broker/pkg/api"
	"github.com/sandbox-broker/broker/pkg/auth"
	"github.com/sandbox-broker/broker/pkg/obs"
	"github.com/sandbox-broker/broker/pkg/usageplans"
)

var ctx = context.Background()

const (
	restAPIID = "a1b2c3d4e5"
	stage     = "api"
)

// newFake starts the fake API Gateway with small pages, so every listing pages.
func newFake(t *testing.T) *apigwfake.Server {
	t.Helper()
	fake := apigwfake.New(apigwfake.Options{RestAPIID: restAPIID, Stage: stage, PageSize: 2})
	if err := fake.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fake.Close() })
	return fake
}

// client is the SDK's API Gateway client, signing as any client does, sent to the fake.
func client(fake *apigwfake.Server) *apigateway.Client {
	return apigateway.New(apigateway.Options{
		BaseEndpoint: aws.String(fake.URL()), Region: "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""),
	})
}

func token(t *testing.T, name string, scope auth.Scope, plain string, rate, burst int) auth.Token {
	t.Helper()
	tok, err := auth.NewToken(name, scope, plain)
	if err != nil {
		t.Fatal(err)
	}
	tok.Limits = auth.ClientLimits{Rate: rate, Burst: burst}
	return tok
}

// state is what the fake holds for one client of the reconciler's.
type state struct {
	plans  []apigwfake.UsagePlan
	values []string // the values of the keys in its plan
	keys   int      // its keys, in a plan or not
}

func stateOf(t *testing.T, fake *apigwfake.Server, prefix, client string) state {
	t.Helper()
	var s state
	keys := map[string]apigwfake.APIKey{}
	for _, k := range fake.Keys() {
		keys[k.ID] = k
		if k.Name == prefix+client {
			s.keys++
			if !k.Enabled {
				t.Errorf("%s: key %s is disabled", client, k.ID)
			}
		}
	}
	for _, p := range fake.Plans() {
		if p.Name != prefix+client {
			continue
		}
		s.plans = append(s.plans, p)
		if !slices.Equal(p.Stages, []string{restAPIID + ":" + stage}) {
			t.Errorf("%s: plan %s is on stages %v", client, p.ID, p.Stages)
		}
		for _, id := range p.KeyIDs {
			if keys[id].Name != prefix+client {
				t.Errorf("%s: plan holds key %s named %q", client, id, keys[id].Name)
			}
			s.values = append(s.values, keys[id].Value)
		}
	}
	slices.Sort(s.values)
	return s
}

// want checks that the client has exactly one plan with throttle (nil: none), holding
// exactly the keys of tokens' usage keys, and no other key.
func want(t *testing.T, fake *apigwfake.Server, prefix, client string, throttle *apigwfake.Throttle, tokens ...auth.Token) apigwfake.UsagePlan {
	t.Helper()
	s := stateOf(t, fake, prefix, client)
	var values []string
	for _, tok := range tokens {
		values = append(values, tok.UsageKey(restAPIID))
	}
	slices.Sort(values)
	if len(s.plans) != 1 || !slices.Equal(s.values, values) || s.keys != len(values) {
		t.Fatalf("%s: %d plans, key values %q (%d keys), want one plan with %q", client, len(s.plans), s.values, s.keys, values)
	}
	got := s.plans[0].Throttle
	if (got == nil) != (throttle == nil) || (got != nil && *got != *throttle) {
		t.Fatalf("%s: throttle %+v, want %+v", client, got, throttle)
	}
	return s.plans[0]
}

func reconcile(t *testing.T, r *usageplans.Reconciler, tokens []auth.Token, counts map[string]int) {
	t.Helper()
	got, notes, err := r.Reconcile(ctx, tokens)
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(got, counts) {
		t.Fatalf("counts %v, want %v (notes %q)", got, counts, notes)
	}
}

// writesSince are the requests after the first n that change something.
func writesSince(fake *apigwfake.Server, n int) []string {
	var out []string
	for _, r := range fake.Requests()[n:] {
		if !strings.HasPrefix(r, "GET ") {
			out = append(out, r)
		}
	}
	return out
}

// TestReconcileFollowsTheSecret walks a secret through its life: first run, a repeated
// run, a changed rate, a dropped throttle, a token rotation with its overlap, a duplicate
// plan, a removed client; another owner's key and plan are never touched.
func TestReconcileFollowsTheSecret(t *testing.T) {
	fake := newFake(t)
	foreignKey := fake.AddKey("someone-else", "someone-elses-api-key-value-0123456789")
	fake.AddPlan("someone-else", &apigwfake.Throttle{RateLimit: 1, BurstLimit: 1}, foreignKey)
	r := usageplans.New(client(fake), restAPIID, stage)
	prefix := r.Prefix()
	if !strings.Contains(prefix, restAPIID) || !strings.HasSuffix(prefix, "/") {
		t.Fatalf("prefix %q does not name the API", prefix)
	}
	instruqt := token(t, "instruqt", auth.Track, "instruqt-token-0123456789abcdef", 10, 20)
	ops := token(t, "ops", auth.Admin, "ops-token-0123456789abcdef", 0, 0)
	partner := token(t, "partner", auth.Track, "partner-token-0123456789abcdef", 3, 6)

	// First run: a plan and a key per client.
	reconcile(t, r, []auth.Token{instruqt, ops, partner}, map[string]int{usageplans.Created: 3})
	plan := want(t, fake, prefix, "instruqt", &apigwfake.Throttle{RateLimit: 10, BurstLimit: 20}, instruqt)
	want(t, fake, prefix, "ops", nil, ops)
	want(t, fake, prefix, "partner", &apigwfake.Throttle{RateLimit: 3, BurstLimit: 6}, partner)

	// The authorizer answers, for the same token, the value of the key in the client's plan.
	authorizer := api.NewAuthorizer(auth.Static{instruqt, ops, partner}, obs.NewLogger(&testkit.Buffer{}, 0))
	resp, err := authorizer.Authorize(ctx, events.APIGatewayCustomAuthorizerRequestTypeRequest{
		HTTPMethod: "POST", Resource: "/v1/allocate", MethodArn: "arn:aws:execute-api:us-east-1:123456789012:" + restAPIID + "/" + stage + "/POST/v1/allocate",
		Headers: map[string]string{"Authorization": "Bearer instruqt-token-0123456789abcdef"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if s := stateOf(t, fake, prefix, "instruqt"); len(s.values) != 1 || resp.UsageIdentifierKey != s.values[0] {
		t.Fatalf("the authorizer answers usage identifier key %q, the plan holds %q", resp.UsageIdentifierKey, s.values)
	}

	// A second run with the same secret reads and changes nothing.
	n := len(fake.Requests())
	reconcile(t, r, []auth.Token{instruqt, ops, partner}, map[string]int{usageplans.Unchanged: 3})
	if w := writesSince(fake, n); len(w) > 0 {
		t.Fatalf("the unchanged run wrote %q", w)
	}

	// A new rate and burst update the same plan in place; a dropped throttle removes it.
	instruqt.Limits = auth.ClientLimits{Rate: 5, Burst: 7}
	partner.Limits = auth.ClientLimits{}
	reconcile(t, r, []auth.Token{instruqt, ops, partner}, map[string]int{usageplans.Updated: 2, usageplans.Unchanged: 1})
	if got := want(t, fake, prefix, "instruqt", &apigwfake.Throttle{RateLimit: 5, BurstLimit: 7}, instruqt); got.ID != plan.ID {
		t.Fatalf("the plan was replaced (%s, was %s)", got.ID, plan.ID)
	}
	want(t, fake, prefix, "partner", nil, partner)

	// Rotation: the new digest next to the old one puts a second key into the plan; removing
	// the old digest takes the old key out and deletes it.
	rotated := token(t, "instruqt", auth.Track, "instruqt-rotated-0123456789abcdef", 5, 7)
	reconcile(t, r, []auth.Token{instruqt, rotated, ops, partner}, map[string]int{usageplans.Updated: 1, usageplans.Unchanged: 2})
	want(t, fake, prefix, "instruqt", &apigwfake.Throttle{RateLimit: 5, BurstLimit: 7}, instruqt, rotated)
	reconcile(t, r, []auth.Token{rotated, ops, partner}, map[string]int{usageplans.Updated: 1, usageplans.Unchanged: 2})
	if got := want(t, fake, prefix, "instruqt", &apigwfake.Throttle{RateLimit: 5, BurstLimit: 7}, rotated); got.ID != plan.ID {
		t.Fatalf("the rotation replaced the plan")
	}

	// A second plan of one client (left by hand) goes, the first one listed stays; a key
	// that is none of the client's is taken out of its plan (and kept).
	fake.AddPlan(prefix+"ops", nil)
	stray := fake.AddKey("stray", "a-stray-api-key-value-0123456789")
	partnerPlan := stateOf(t, fake, prefix, "partner").plans[0]
	if _, err := client(fake).CreateUsagePlanKey(ctx, &apigateway.CreateUsagePlanKeyInput{
		UsagePlanId: aws.String(partnerPlan.ID), KeyId: aws.String(stray), KeyType: aws.String("API_KEY"),
	}); err != nil {
		t.Fatal(err)
	}
	reconcile(t, r, []auth.Token{rotated, ops, partner}, map[string]int{usageplans.Updated: 2, usageplans.Unchanged: 1})
	want(t, fake, prefix, "ops", nil, ops)
	want(t, fake, prefix, "partner", nil, partner)
	if !slices.ContainsFunc(fake.Keys(), func(k apigwfake.APIKey) bool { return k.ID == stray }) {
		t.Fatal("the stray key was deleted, not just taken out of the plan")
	}

	// A client gone from the secret loses its plan and key; the others stay as they are.
	reconcile(t, r, []auth.Token{rotated, ops}, map[string]int{usageplans.Removed: 1, usageplans.Unchanged: 2})
	if s := stateOf(t, fake, prefix, "partner"); len(s.plans) != 0 || s.keys != 0 {
		t.Fatalf("the removed client keeps %d plans and %d keys", len(s.plans), s.keys)
	}
	want(t, fake, prefix, "ops", nil, ops)
	foreign := 0
	for _, p := range fake.Plans() {
		if p.Name == "someone-else" && slices.Equal(p.KeyIDs, []string{foreignKey}) && p.Throttle.RateLimit == 1 {
			foreign++
		}
	}
	if foreign != 1 || !slices.ContainsFunc(fake.Keys(), func(k apigwfake.APIKey) bool { return k.ID == foreignKey }) {
		t.Fatal("another owner's plan or key was touched")
	}

	// An empty secret removes everything the reconciler owns.
	reconcile(t, r, nil, map[string]int{usageplans.Removed: 2})
	if len(fake.Plans()) != 1 || len(fake.Keys()) != 2 {
		t.Fatalf("left %d plans and %d keys, want only the foreign ones", len(fake.Plans()), len(fake.Keys()))
	}
}

// TestReconcileNotesDisagreeingEntries: a client's entries with different limits get one
// plan with the last entry's, and a note that names the client but no key or digest.
func TestReconcileNotesDisagreeingEntries(t *testing.T) {
	fake := newFake(t)
	r := usageplans.New(client(fake), restAPIID, stage)
	old := token(t, "instruqt", auth.Track, "instruqt-token-0123456789abcdef", 10, 20)
	rotated := token(t, "instruqt", auth.Track, "instruqt-rotated-0123456789abcdef", 4, 8)
	counts, notes, err := r.Reconcile(ctx, []auth.Token{old, rotated})
	if err != nil || counts[usageplans.Created] != 1 || len(notes) != 1 || !strings.Contains(notes[0], "instruqt") {
		t.Fatalf("counts %v, notes %q, %v", counts, notes, err)
	}
	if strings.Contains(notes[0], old.UsageKey(restAPIID)) || strings.Contains(notes[0], rotated.UsageKey(restAPIID)) {
		t.Fatal("the note carries a key")
	}
	want(t, fake, r.Prefix(), "instruqt", &apigwfake.Throttle{RateLimit: 4, BurstLimit: 8}, old, rotated)
}

// TestReconcileStopsOnAnAPIGatewayError: a refused call ends the run with API Gateway's
// error, after counting what was done; the next run, once API Gateway accepts again,
// finishes the work without redoing it. A wrong stage fails before anything is written.
func TestReconcileStopsOnAnAPIGatewayError(t *testing.T) {
	fake := newFake(t)
	r := usageplans.New(client(fake), restAPIID, stage)
	first := token(t, "instruqt", auth.Track, "instruqt-token-0123456789abcdef", 10, 20)
	second := token(t, "partner", auth.Track, "partner-token-0123456789abcdef", 3, 6)
	reconcile(t, r, []auth.Token{first}, map[string]int{usageplans.Created: 1})

	fake.SetFailure(&apigwfake.Failure{Method: "POST", PathPrefix: "/usageplans", Status: 400, Type: "LimitExceededException"})
	counts, _, err := r.Reconcile(ctx, []auth.Token{first, second})
	if err == nil || !strings.Contains(err.Error(), "LimitExceededException") || !strings.Contains(err.Error(), "partner") {
		t.Fatalf("error %v, want API Gateway's for partner", err)
	}
	if !maps.Equal(counts, map[string]int{usageplans.Unchanged: 1}) {
		t.Fatalf("counts of the failed run %v", counts)
	}
	fake.SetFailure(nil)
	reconcile(t, r, []auth.Token{first, second}, map[string]int{usageplans.Created: 1, usageplans.Unchanged: 1})
	want(t, fake, r.Prefix(), "partner", &apigwfake.Throttle{RateLimit: 3, BurstLimit: 6}, second)

	n := len(fake.Requests())
	wrong := usageplans.New(client(fake), "no-such-api", stage)
	if _, _, err := wrong.Reconcile(ctx, nil); err == nil || !strings.Contains(err.Error(), "NotFoundException") {
		t.Fatalf("a wrong REST API id: %v", err)
	}
	if got := fake.Requests()[n:]; len(got) != 1 || !strings.HasPrefix(got[0], "GET /restapis/no-such-api/stages/") {
		t.Fatalf("a wrong REST API id made the requests %q", got)
	}
}

// TestAnotherStacksKeysInTheRegionDoNotCollide: API keys are unique by value in a region,
// and a second stack of the region (another REST API) holds keys for the same tokens: its
// keys do not stop this stack's, because a usage key names its REST API.
func TestAnotherStacksKeysInTheRegionDoNotCollide(t *testing.T) {
	fake := newFake(t)
	instruqt := token(t, "instruqt", auth.Track, "instruqt-token-0123456789abcdef", 0, 0)
	const otherAPI = "f6g7h8i9j0"
	other := usageplans.New(nil, otherAPI, stage)
	fake.AddKey(other.Prefix()+"instruqt", instruqt.UsageKey(otherAPI))
	r := usageplans.New(client(fake), restAPIID, stage)
	reconcile(t, r, []auth.Token{instruqt}, map[string]int{usageplans.Created: 1})
	want(t, fake, r.Prefix(), "instruqt", nil, instruqt)
	if s := stateOf(t, fake, other.Prefix(), "instruqt"); s.keys != 1 {
		t.Fatalf("the other stack's key: %+v, want it untouched", s)
	}
}
