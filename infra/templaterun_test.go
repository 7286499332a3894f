package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/jsii-runtime-go"

	"github.com/sandbox-broker/broker/internal/apigwfake"
	"github.com/sandbox-broker/broker/internal/ddblocal"
	"github.com/sandbox-broker/broker/internal/eventcheck"
	"github.com/sandbox-broker/broker/internal/tablecheck"
	"github.com/sandbox-broker/broker/internal/testkit"
	"github.com/sandbox-broker/broker/pkg/api"
	"github.com/sandbox-broker/broker/pkg/api/apitest"
	"github.com/sandbox-broker/broker/pkg/auth"
	"github.com/sandbox-broker/broker/pkg/broker"
	"github.com/sandbox-broker/broker/pkg/config"
	"github.com/sandbox-broker/broker/pkg/csp/cspfake"
	domain "github.com/sandbox-broker/broker/pkg/events"
	"github.com/sandbox-broker/broker/pkg/jobs"
	"github.com/sandbox-broker/broker/pkg/niosxaas/niosxaasfake"
	"github.com/sandbox-broker/broker/pkg/pool"
	"github.com/sandbox-broker/broker/pkg/pool/pooltest"
	"github.com/sandbox-broker/broker/pkg/usageplans"
)

// The stand-in values of the secrets, by the variable that names the secret. A secret the
// template gives a function under another variable has no stand-in and fails the test.
const (
	sampleToken = "sample-token-for-tests-only" // the bearer token of events/authorizer.json
	// partnerToken is a second client's, with its own throttle: the usage-plans job makes
	// its plan, while instruqt's plan is there already and departed's is left over.
	partnerToken = "template-run-partner-token"
	cspToken     = "template-run-csp-token"
	// The NIOSXaaS service account the stand-in secret holds and the fake NIOSXaaS accepts.
	niosxaasEmail    = "template-run@example.com"
	niosxaasPassword = "template-run-niosxaas-password"
)

func standInSecret(variable string) (string, bool) {
	switch variable {
	case "TOKENS_SECRET_ARN":
		d, p := sha256.Sum256([]byte(sampleToken)), sha256.Sum256([]byte(partnerToken))
		return `{"tokens":[{"name":"instruqt","scope":"track","sha256":"` + hex.EncodeToString(d[:]) + `"},` +
			`{"name":"partner","scope":"track","sha256":"` + hex.EncodeToString(p[:]) + `","rate":7,"burst":14}]}`, true
	case "CSP_TOKEN_SECRET_ARN":
		return cspToken, true
	case "NIOSXAAS_CREDENTIALS_SECRET_ARN":
		return `{"email":"` + niosxaasEmail + `","password":"` + niosxaasPassword + `"}`, true
	}
	return "", false
}

// sampleLetter is the dead letter the replay route's sample finds in the queue.
var sampleLetter = domain.Letter{Reason: "the bus refused the event: ThrottlingException", Event: &domain.Event{
	Version: domain.Version, ID: "2012224-2-1795000060123", Type: domain.Allocated, Sequence: 2,
	Time:    time.UnixMilli(1795000060123).UTC(),
	Sandbox: &domain.Sandbox{ID: "2012224", Name: "lab-0001", Prefix: "lab"}, Lab: "dns-basics-lab", Client: "instruqt",
	Student: "participant-0001", Actor: domain.Actor{Kind: "student"}, Status: &domain.Status{From: "available", To: "allocated"},
	AllocatedAt: ptr(time.Unix(1795000060, 0).UTC()), ExpiresAt: ptr(time.Unix(1795172860, 0).UTC()),
}}

func ptr[T any](v T) *T { return &v }

// seededStaleSince is a fixed instant, past every grace period: the admin-bulk-delete
// sample confirms the one record stale since then with a fixed status_before (the next day).
var seededStaleSince = time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)

// sampleSandbox is the sandbox the route samples name; by default it is allocated to the
// samples' student. A function whose sample needs it in another state says so here.
var sampleSandboxState = map[string]pool.Status{
	"allocate":             pool.Available, // so the sample allocates rather than replays
	"admin-retry-deletion": pool.DeletionFailed,
}

// sampleReservation is the reservation the admin-cancel-reservation sample cancels.
const sampleReservation = 5123456789012

// seedLabs gives the profile and reservation routes what their samples name: dns-lab's
// profile on prefix lab-, and a scheduled reservation under the sample's ID. A
// reservation's ID is drawn at random when it is created, so the seed writes the item
// under the sample's (its own shard, as the pool gives each reservation; the key is the
// pool's LABS / RESERVATION#<id>: a cancel answering 404 here means it moved).
func seedLabs(ctx context.Context, fn string, p *pool.Pool, db *dynamodb.Client, table string) error {
	by := pool.Actor{Kind: "operator", Name: "seed"}
	switch fn {
	case "admin-delete-profile":
		_, err := p.PutProfile(ctx, pool.Profile{Lab: "dns-lab", Prefix: "lab-", LabDurationMinutes: 120}, by)
		return err
	case "admin-cancel-reservation":
		r := pool.Reservation{ID: strconv.Itoa(sampleReservation), Shard: sampleReservation, Lab: "dns-lab", Prefix: "lab-", Seats: 1,
			StartsAt: time.Now().Add(24 * time.Hour).Unix(), EndsAt: time.Now().Add(27 * time.Hour).Unix(), LeadSeconds: 1800,
			State: pool.ReservationScheduled, Rev: 1}
		item, err := attributevalue.MarshalMap(r)
		if err != nil {
			return err
		}
		item[pool.AttrPK] = &types.AttributeValueMemberS{Value: "LABS"}
		item[pool.AttrSK] = &types.AttributeValueMemberS{Value: "RESERVATION#" + r.ID}
		_, err = db.PutItem(ctx, &dynamodb.PutItemInput{TableName: &table, Item: item})
		return err
	}
	return nil
}

// seedTable fills a function's table before its sample is sent: the sample's sandbox
// 2012224, an available one and one stale since seededStaleSince (so bulk and stale
// deletion and stale-cleanup find work).
func seedTable(ctx context.Context, fn string, db *dynamodb.Client, table string, cfg config.Pool) error {
	p := pool.New(db, table, pool.Options{})
	by := pool.Actor{Kind: "job", Name: "sync"}
	for i, id := range []string{"2012224", "2012225", "2012226"} {
		a := pool.Account{ID: id, Name: fmt.Sprintf("lab-%04d", i+1), ExternalID: fmt.Sprintf("identity/accounts/3f1c9a52-0b7e-4d3a-9c1f-5e2d8b7a6c4%d", i)}
		if _, err := p.Create(ctx, a, by); err != nil {
			return err
		}
	}
	then := pool.New(db, table, pool.Options{Now: func() time.Time { return seededStaleSince }})
	if s, err := then.Get(ctx, "2012226"); err != nil {
		return err
	} else if _, err := then.MarkStale(ctx, s, by); err != nil {
		return err
	}
	if err := seedLabs(ctx, fn, p, db, table); err != nil {
		return err
	}
	state, ok := sampleSandboxState[fn]
	if ok && state == pool.Available {
		return nil
	}
	if _, err := broker.New(p, cfg).Allocate(ctx, broker.AllocateRequest{
		Student: "participant-0001", NamePrefix: "lab-0001", TrackName: "dns-basics-lab", Client: "instruqt",
	}); err != nil {
		return err
	}
	if !ok {
		return nil
	}
	s, err := p.Get(ctx, "2012224")
	if err != nil {
		return err
	}
	if s, err = p.Release(ctx, s, pool.Holder{Client: "instruqt", Student: "participant-0001"}, by); err != nil {
		return err
	}
	if state == pool.DeletionFailed {
		_, err = p.FailDeletion(ctx, s, "the CSP refused the delete", by)
		return err
	}
	return fmt.Errorf("seedTable: no way to put the sample sandbox in state %s", state)
}

// TestTemplateRunsEveryFunction: the template is what runs. It synthesises the stack from
// freshly built bootstraps and, for every AWS::Lambda::Function of the template, runs the
// bootstrap of the asset the template names under the Lambda runtime interface emulator,
// with exactly the template's environment. Only the references are resolved, to stand-ins:
// the table to a table of DynamoDB Local, the secrets to ARNs the Secrets Manager
// stand-in serves, the job functions to names the Lambda stand-in accepts. On top come
// the stand-ins' endpoints (AWS_ENDPOINT_URL), AWS credentials and region, what Lambda
// derives from the function's properties (name, timeout, memory) and one literal:
// CSP_BASE_URL and NIOSXAAS_BASE_URL point at the real services in the template and at
// the fake CSP and the fake NIOSXaaS here. Each
// function answers its events/ sample correctly, and every AWS call it makes is allowed
// by its role, and every action its role grants is used or listed in tablecheck.Unexercised.
func TestTemplateRunsEveryFunction(t *testing.T) {
	root, err := ddblocal.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	rie := filepath.Join(root, "bin", "aws-lambda-rie")
	if _, err := os.Stat(rie); err != nil {
		t.Fatalf("the Lambda runtime interface emulator is not installed at %s: run `make tools`", rie)
	}
	bins := buildBootstraps(t)
	ctx := context.Background()
	db, err := ddblocal.Start(ctx, ddblocal.Options{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Stop)
	dbClient, err := pool.NewClient(ctx, pool.ClientOptions{Endpoint: db.Endpoint, Region: standInRegion})
	if err != nil {
		t.Fatal(err)
	}
	fake := cspfake.Started(t, cspfake.Options{Token: cspToken}, cspfake.Generate(3, nil)...)
	nios := niosxaasfake.Started(t, niosxaasfake.Options{Email: niosxaasEmail, Password: niosxaasPassword})
	literalOverrides := map[string]string{"CSP_BASE_URL": fake.URL(), "NIOSXAAS_BASE_URL": nios.URL()}

	// Synthesis with the built bootstraps as the assets: the assembly stages a copy of each.
	flags, err := cdkContext()
	if err != nil {
		t.Fatal(err)
	}
	outdir := t.TempDir()
	app := awscdk.NewApp(&awscdk.AppProps{Context: &flags, Outdir: jsii.String(outdir)})
	cfg := testConfig(bins.dir)
	runStack := NewBrokerStack(app, "TemplateRun", cfg, nil)
	app.Synth(nil)
	var tpl struct {
		Resources map[string]any
	}
	readJSON(t, filepath.Join(outdir, *runStack.TemplateFile()), &tpl)
	var manifest struct {
		Files map[string]struct {
			Source struct{ Path string }
		}
	}
	readJSON(t, filepath.Join(outdir, "TemplateRun.assets.json"), &manifest)

	var ids []string
	for id, res := range tpl.Resources {
		if res.(map[string]any)["Type"] == "AWS::Lambda::Function" {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	if len(ids) != len(bins.size) {
		t.Errorf("the template has %d functions, functions/ %d", len(ids), len(bins.size))
	}
	// Two emulators at a time on two cores: each function's start is mostly waiting.
	slots := make(chan struct{}, 4)
	var wg sync.WaitGroup
	for _, id := range ids {
		props := tpl.Resources[id].(map[string]any)["Properties"].(map[string]any)
		wg.Go(func() {
			slots <- struct{}{}
			defer func() { <-slots }()
			t.Run(id, func(t *testing.T) {
				r := run{t: t, root: root, rie: rie, id: id, props: props, resources: tpl.Resources, db: dbClient,
					dbEndpoint: db.Endpoint, literals: literalOverrides}
				r.bootstrap, r.folder = r.asset(outdir, manifest.Files, bins)
				r.exec(ctx)
			})
		})
	}
	wg.Wait()
}

type run struct {
	t                 *testing.T
	root, rie, id     string
	props             map[string]any
	resources         map[string]any
	db                *dynamodb.Client
	dbEndpoint        string
	literals          map[string]string
	bootstrap, folder string
	table             string
	standIn           *standIn
	apigw             *apigwfake.Server
	env               map[string]string
	invokeAddr        string
	outputOf          func() string
}

// asset is the bootstrap of the function's Code (its S3Key names the asset in the
// assembly's manifest) and the functions/ folder it was built from.
func (r *run) asset(outdir string, files map[string]struct{ Source struct{ Path string } }, bins bootstraps) (string, string) {
	t := r.t
	code, _ := r.props["Code"].(map[string]any)
	key, _ := code["S3Key"].(string)
	file, ok := files[strings.TrimSuffix(key, ".zip")]
	if !ok {
		t.Fatalf("%s: Code %v names no asset of the assembly", r.id, code)
	}
	bootstrap := filepath.Join(outdir, file.Source.Path, "bootstrap")
	content, err := os.ReadFile(bootstrap)
	if err != nil {
		t.Fatalf("%s: the asset has no bootstrap: %v", r.id, err)
	}
	folder, ok := bins.sha256[sha256.Sum256(content)]
	if !ok {
		t.Fatalf("%s: its bootstrap is none of the built functions/*", r.id)
	}
	return bootstrap, folder
}

func (r *run) exec(ctx context.Context) {
	t := r.t
	r.table = fmt.Sprintf("run-%s", r.folder)
	if err := pool.CreateTable(ctx, r.db, r.table); err != nil {
		t.Fatal(err)
	}
	res := resolver{resources: r.resources, table: r.table}
	secrets := map[string]string{}
	r.env = map[string]string{}
	vars, _ := r.props["Environment"].(map[string]any)
	variables, _ := vars["Variables"].(map[string]any)
	for name, v := range variables {
		value, err := res.value(v)
		if err != nil {
			t.Fatalf("%s: variable %s: %v", r.folder, name, err)
		}
		if ref, ok := v.(map[string]any); ok && res.typeOf(fmt.Sprint(ref["Ref"])) == "AWS::SecretsManager::Secret" {
			secret, ok := standInSecret(name)
			if !ok {
				t.Fatalf("%s: variable %s names a secret the test has no stand-in value for", r.folder, name)
			}
			secrets[value] = secret
		}
		if o, ok := r.literals[name]; ok {
			value = o
		}
		r.env[name] = value
	}
	r.apigw = seedAPIGateway()
	r.standIn = newStandIn(t, r.dbEndpoint, secrets, r.apigw)
	if route, ok := api.RouteByName(r.folder); ok && route.ReplaysEvents {
		letter, _ := json.Marshal(sampleLetter)
		r.standIn.sqs.Put(r.env["EVENTS_DLQ_URL"], string(letter))
	}
	if len(variables) > 0 {
		poolCfg, err := config.LoadPool(testkit.Env(r.env))
		if err == nil && r.env["TABLE_NAME"] != "" {
			if err := seedTable(ctx, r.folder, r.db, r.table, poolCfg); err != nil {
				t.Fatal(err)
			}
		}
	}
	r.start()
	r.answer(r.invoke(r.sample()))
	if j, ok := jobs.Named(r.folder); ok && j.UsesAPIGateway {
		r.checkUsagePlans()
	}
	r.checkIAM(res)
	if r.env["TABLE_NAME"] != "" {
		pooltest.Check(t, pool.New(r.db, r.table, pool.Options{}))
	}
}

// start runs the bootstrap under the emulator with the template's variables and the
// allowed overrides only: not the test's own environment.
func (r *run) start() {
	t := r.t
	env := []string{
		"AWS_REGION=" + standInRegion, "AWS_DEFAULT_REGION=" + standInRegion,
		// DynamoDB Local keeps one database per access key: the one the test's client uses.
		"AWS_ACCESS_KEY_ID=local", "AWS_SECRET_ACCESS_KEY=local",
		"AWS_ENDPOINT_URL=" + r.standIn.URL(),
		"AWS_LAMBDA_FUNCTION_NAME=" + r.id,
		fmt.Sprintf("AWS_LAMBDA_FUNCTION_TIMEOUT=%v", r.props["Timeout"]),
		fmt.Sprintf("AWS_LAMBDA_FUNCTION_MEMORY_SIZE=%v", r.props["MemorySize"]),
	}
	for k, v := range r.env {
		env = append(env, k+"="+v)
	}
	r.invokeAddr, r.outputOf = testkit.StartEmulator(t, r.rie, r.bootstrap, env, r.folder)
}

func (r *run) sample() []byte {
	raw, err := os.ReadFile(filepath.Join(r.root, "events", r.folder+".json"))
	if err != nil {
		r.t.Fatalf("%s: %v", r.folder, err)
	}
	return raw
}

func (r *run) invoke(event []byte) []byte {
	t := r.t
	resp, err := http.Post("http://"+r.invokeAddr+"/2015-03-31/functions/function/invocations", "application/json", bytes.NewReader(event))
	if err != nil {
		t.Fatalf("%s: invoke: %v", r.folder, err)
	}
	defer resp.Body.Close()
	var body bytes.Buffer
	_, _ = body.ReadFrom(resp.Body)
	// A function that exits at start leaves the emulator nothing to answer with: its
	// "start-up failed" line says why, naming the variable.
	if why := r.startupFailure(); why != "" {
		t.Fatalf("function %s does not start with the template's environment: %s", r.folder, why)
	}
	var failure struct{ ErrorType, ErrorMessage string }
	if json.Unmarshal(body.Bytes(), &failure) == nil && failure.ErrorType != "" {
		t.Fatalf("%s: the invocation failed: %s: %s", r.folder, failure.ErrorType, failure.ErrorMessage)
	}
	return body.Bytes()
}

// startupFailure is the error of the function's "start-up failed" line (app.Exit): it
// names each variable that is missing or bad.
func (r *run) startupFailure() string {
	sc := bufio.NewScanner(strings.NewReader(r.outputOf()))
	for sc.Scan() {
		var line struct{ Msg, Error string }
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "start-up failed" {
			return line.Error
		}
	}
	return ""
}

// answer checks the answer by the kind of function: a route's in the contract's status
// and envelope, a job's run summary, the authorizer's policy.
func (r *run) answer(body []byte) {
	t := r.t
	if route, ok := api.RouteByName(r.folder); ok {
		var resp events.APIGatewayProxyResponse
		if err := json.Unmarshal(body, &resp); err != nil {
			t.Fatalf("%s: %v: %s", r.folder, err, body)
		}
		h := http.Header{}
		for k, v := range resp.Headers {
			h.Set(k, v)
		}
		apitest.Check(t, route.Method, route.Path, resp.StatusCode, h, []byte(resp.Body))
		if resp.StatusCode/100 != 2 {
			t.Errorf("%s answers its sample %d %s, want a 2xx", r.folder, resp.StatusCode, resp.Body)
		}
		if route.ReplaysEvents {
			r.checkEvents(1, `{"messages":1,"published":1,"deleted":1,"kept":0}`, resp.Body)
		}
		return
	}
	if r.folder == api.EventConsumerFunction {
		r.checkEvents(2, `{"batchItemFailures":[]}`, string(body))
		return
	}
	if _, ok := jobs.Named(r.folder); ok {
		var sum jobs.Summary
		if err := json.Unmarshal(body, &sum); err != nil {
			t.Fatalf("%s: %v: %s", r.folder, err, body)
		}
		if sum.Job != r.folder || (sum.Outcome != jobs.OutcomeOK && sum.Outcome != jobs.OutcomePartial) {
			t.Errorf("%s: run summary %+v", r.folder, sum)
		}
		return
	}
	if r.folder == api.AuthorizerFunction {
		var resp events.APIGatewayCustomAuthorizerResponse
		if err := json.Unmarshal(body, &resp); err != nil {
			t.Fatalf("%s: %v: %s", r.folder, err, body)
		}
		if resp.PrincipalID != "instruqt" || len(resp.PolicyDocument.Statement) == 0 || resp.PolicyDocument.Statement[0].Effect != "Allow" {
			t.Errorf("authorizer: %s, want an Allow policy for instruqt", body)
		}
		if resp.UsageIdentifierKey != standInToken(t, "instruqt").UsageKey(standInRestAPIID) {
			t.Errorf("authorizer: usage identifier key %q, want instruqt's usage key on the sample's REST API", resp.UsageIdentifierKey)
		}
		return
	}
	t.Fatalf("functions/%s is neither a route, a job, the authorizer nor the stream's consumer", r.folder)
}

// checkEvents: the function answered want and put n valid events on the stack's bus.
func (r *run) checkEvents(n int, want, got string) {
	t := r.t
	if strings.TrimSpace(got) != want {
		t.Errorf("%s answers %s, want %s", r.folder, got, want)
	}
	put := r.standIn.events.Events()
	if len(put) != n {
		t.Errorf("%s put %d events on the bus, want %d", r.folder, len(put), n)
	}
	for _, e := range put {
		raw, _ := json.Marshal(e)
		if err := eventcheck.Validate(raw); err != nil {
			t.Errorf("%s: %v", r.folder, err)
		}
		if e.Bus != r.env["EVENT_BUS_NAME"] {
			t.Errorf("%s put an event on bus %q, not the stack's %q", r.folder, e.Bus, r.env["EVENT_BUS_NAME"])
		}
	}
}

// seedAPIGateway is the fake API Gateway of one function's run: instruqt's plan exists
// with a throttle its entry no longer has and without its key, and the departed client's
// plan and key are left over, so the usage-plans job makes, updates and removes.
func seedAPIGateway() *apigwfake.Server {
	gw := apigwfake.New(apigwfake.Options{RestAPIID: standInRestAPIID, Stage: stageName})
	prefix := usageplans.New(nil, standInRestAPIID, stageName).Prefix()
	gw.AddPlan(prefix+"instruqt", &apigwfake.Throttle{RateLimit: 1, BurstLimit: 1})
	gw.AddPlan(prefix+"departed", nil, gw.AddKey(prefix+"departed", "the-departed-clients-usage-key-0123456789"))
	return gw
}

// standInToken is the token of client in the stand-in tokens secret.
func standInToken(t *testing.T, client string) auth.Token {
	t.Helper()
	doc, _ := standInSecret("TOKENS_SECRET_ARN")
	tokens, _, err := auth.ParseSecret([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range tokens {
		if tok.Name == client {
			return tok
		}
	}
	t.Fatalf("no %s in the stand-in tokens secret", client)
	return auth.Token{}
}

// checkUsagePlans: after the usage-plans job's run, the fake API Gateway holds one plan per
// client of the stand-in secret, on the stack's stage, with the entry's throttle and the
// key the authorizer names for the client's token; the departed client is gone.
func (r *run) checkUsagePlans() {
	t := r.t
	prefix := usageplans.New(nil, standInRestAPIID, stageName).Prefix()
	values := map[string]string{}
	for _, k := range r.apigw.Keys() {
		values[k.ID] = k.Value
	}
	plans := map[string]apigwfake.UsagePlan{}
	for _, p := range r.apigw.Plans() {
		plans[strings.TrimPrefix(p.Name, prefix)] = p
	}
	for client, throttle := range map[string]*apigwfake.Throttle{"instruqt": nil, "partner": {RateLimit: 7, BurstLimit: 14}} {
		p, ok := plans[client]
		key := standInToken(t, client).UsageKey(standInRestAPIID)
		if !ok || len(p.KeyIDs) != 1 || values[p.KeyIDs[0]] != key || (p.Throttle == nil) != (throttle == nil) ||
			(throttle != nil && *p.Throttle != *throttle) || len(p.Stages) != 1 || p.Stages[0] != standInRestAPIID+":"+stageName {
			t.Errorf("usage-plans: %s's plan %+v, want throttle %+v and its token's key", client, p, throttle)
		}
	}
	if len(plans) != 2 || len(values) != 2 {
		t.Errorf("usage-plans: %d plans and %d keys after the run, want the two clients' only", len(plans), len(values))
	}
}

// checkIAM: each call the function made is allowed, as AWS evaluates it (the policy
// simulator, with the role's policies and the resource's policy: paths_test.go); each action
// the role grants is used by a call or listed in tablecheck.Unexercised.
func (r *run) checkIAM(res resolver) {
	t := r.t
	role, _ := r.props["Role"].(map[string]any)
	att, _ := role["Fn::GetAtt"].([]any)
	if len(att) != 2 {
		t.Fatalf("%s: role %v is not a role of the stack", r.folder, r.props["Role"])
	}
	roleID := att[0].(string)
	statements, err := res.roleStatements(roleID)
	if err != nil {
		t.Fatal(err)
	}
	identity, err := res.rolePolicies(roleID)
	if err != nil {
		t.Fatal(err)
	}
	calls := r.standIn.Calls()
	var paths []awsPath
	for _, c := range calls {
		rp, err := res.resourcePolicyOf(c.Resource)
		if err != nil {
			t.Fatal(err)
		}
		paths = append(paths, awsPath{fmt.Sprintf("%s: its call %s on %s", r.folder, c.Action, c.Resource), true,
			simulation("arn:aws:sts::"+standInAccount+":assumed-role/"+roleID+"/"+r.id, c.Action, c.Resource, map[string]any{}, identity, rp)})
	}
	check, err := evaluatePaths(paths)
	if err != nil {
		t.Fatal(err)
	}
	check.report(t, r.folder)
	for _, s := range statements {
		for _, action := range s.actions {
			used := false
			for _, c := range calls {
				used = used || matchesAny([]string{action}, c.Action, true)
			}
			if !used && tablecheck.Unexercised["*"][action] == "" && tablecheck.Unexercised[r.folder][action] == "" {
				t.Errorf("%s: its role grants %s on %v, which its sample does not use and tablecheck.Unexercised does not explain", r.folder, action, s.resources)
			}
		}
	}
	t.Logf("%s calls: %v", r.folder, calls)
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
