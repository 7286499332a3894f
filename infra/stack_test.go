package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"

	"github.com/sandbox-broker/broker/pkg/api"
	"github.com/sandbox-broker/broker/pkg/auth"
	"github.com/sandbox-broker/broker/pkg/config"
	"github.com/sandbox-broker/broker/pkg/jobs"
	"github.com/sandbox-broker/broker/pkg/obs"
	"github.com/sandbox-broker/broker/pkg/pool"
)

// One synthesis serves every test: the CDK runs in a jsii Node process and a stack takes
// seconds to synthesise.
var (
	stack    *BrokerStack
	template assertions.Template
	tmpl     map[string]any
	// noWAF is the same stack with the waf context flag off.
	noWAF assertions.Template
)

func TestMain(m *testing.M) {
	code := func() int {
		defer jsii.Close()
		defer removeBootstraps()
		defer closeOracle()
		flag.Parse()
		startBootstrapBuild()
		assets, err := placeholderAssets()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(assets)
		flags, err := cdkContext()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		app := awscdk.NewApp(&awscdk.AppProps{Context: &flags})
		cfg := testConfig(assets)
		stack = NewBrokerStack(app, "Test", cfg, nil)
		addNagChecks(app)
		template = assertions.Template_FromStack(stack.Stack, nil)
		plain := awscdk.NewApp(&awscdk.AppProps{Context: &flags})
		plainCfg := cfg
		plainCfg.WAF, plainCfg.AlarmEmail = false, ""
		plainCfg.CORSAllowedOrigins, plainCfg.CORSOrigins = "", nil
		plainCfg.NIOSXaaSEnabled = false
		plainCfg.PeakAllocationsPerSecond = plainPeak
		plainCfg.AccountConcurrency, plainCfg.JobReservedConcurrency = smallestAccountConcurrency, 0
		plainStack := NewBrokerStack(plain, "Plain", plainCfg, nil)
		addNagChecks(plain)
		noWAF = assertions.Template_FromStack(plainStack.Stack, nil)
		if errs := assertions.Annotations_FromStack(plainStack.Stack).FindError(jsii.String("*"),
			assertions.Match_StringLikeRegexp(jsii.String("AwsSolutions-.*"))); len(*errs) > 0 {
			fmt.Fprintf(os.Stderr, "cdk-nag errors in the stack without WAF: %d\n", len(*errs))
			return 1
		}
		tmpl = asJSON(template)
		stacks = []synthesized{synthesizedOf("Test", stack, cfg, tmpl), synthesizedOf("Plain", plainStack, plainCfg, asJSON(noWAF))}
		return m.Run()
	}()
	os.Exit(code)
}

// asJSON is a synthesized template as plain JSON values.
func asJSON(t assertions.Template) map[string]any {
	raw, _ := json.Marshal(t.ToJSON())
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		panic(err)
	}
	return out
}

// cdkContext is the context of cdk.json, feature flags included, so the tests synthesise
// the template `cdk synth` does; the stack's settings come from testConfig instead.
func cdkContext() (map[string]any, error) {
	raw, err := os.ReadFile("../cdk.json")
	if err != nil {
		return nil, err
	}
	var doc struct {
		Context map[string]any `json:"context"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("cdk.json: %w", err)
	}
	return doc.Context, nil
}

const testOrigin = "https://lab.example.com"

func testConfig(assets string) StackConfig {
	return StackConfig{
		AssetDir: assets, LabDurationHours: 48, GracePeriodMinutes: 30, LabExtensionHours: 12, MaxLabDurationHours: 120,
		CSPBaseURL:       "https://csp.example.com/v2",
		PoolLowWaterMark: 20, AlarmEmail: "ops@example.com", WAF: true, WAFRequestsPer5MinIP: 2000,
		APIThrottleRate: 50, APIThrottleBurst: 200, AuthorizerCacheSecs: 300, LogLevel: slog.LevelError,
		CORSAllowedOrigins: testOrigin, CORSOrigins: []string{testOrigin}, PeakAllocationsPerSecond: testPeak,
		NIOSXaaSEnabled: true, NIOSXaaSShadowMode: false, NIOSXaaSBaseURL: "https://nios.example.com", NIOSXaaSServiceName: "Instrqt-SaaS",
		// The jobs opt into reserved concurrency, in an account whose stated quota fits it.
		AccountConcurrency: 1000, JobReservedConcurrency: 1,
	}
}

// The test stack is sized for a peak above what a new on-demand table serves; the plain one
// for the default peak.
const (
	testPeak  = 10_000
	plainPeak = 1_000
)

// placeholderAssets stands in for `make build`: the template does not depend on the
// binaries' content, only on one bootstrap per function folder.
func placeholderAssets() (string, error) {
	dir, err := os.MkdirTemp("", "broker-assets-")
	if err != nil {
		return "", err
	}
	for _, f := range allFunctions() {
		if err := os.MkdirAll(filepath.Join(dir, f), 0o755); err != nil {
			return "", err
		}
		if err := os.WriteFile(filepath.Join(dir, f, "bootstrap"), []byte("placeholder "+f), 0o755); err != nil {
			return "", err
		}
	}
	return dir, nil
}

func allFunctions() []string {
	out := []string{api.AuthorizerFunction}
	for _, r := range api.Routes {
		out = append(out, r.Name)
	}
	for _, j := range jobs.Table {
		out = append(out, j.Name)
	}
	return out
}

// resources returns the template's resources of one type, by logical id.
func resources(kind string) map[string]map[string]any {
	out := map[string]map[string]any{}
	for id, r := range tmpl["Resources"].(map[string]any) {
		res := r.(map[string]any)
		if res["Type"] == kind {
			props, _ := res["Properties"].(map[string]any)
			out[id] = props
		}
	}
	return out
}

func resource(id string) map[string]any {
	return tmpl["Resources"].(map[string]any)[id].(map[string]any)
}

func TestTableMatchesPoolSchema(t *testing.T) {
	tables := resources("AWS::DynamoDB::Table")
	if len(tables) != 1 {
		t.Fatalf("%d tables", len(tables))
	}
	for id, props := range tables {
		if r := resource(id); r["DeletionPolicy"] != "Retain" || r["UpdateReplacePolicy"] != "Retain" {
			t.Fatalf("table is not retained: %v %v", r["DeletionPolicy"], r["UpdateReplacePolicy"])
		}
		want := map[string]any{
			"BillingMode":                      "PAY_PER_REQUEST",
			"PointInTimeRecoverySpecification": map[string]any{"PointInTimeRecoveryEnabled": true},
			"SSESpecification":                 map[string]any{"SSEEnabled": true},
			"TimeToLiveSpecification":          map[string]any{"AttributeName": pool.Schema.TTLAttribute, "Enabled": true},
			"KeySchema":                        keySchema(pool.Schema.Partition, pool.Schema.Sort),
			"AttributeDefinitions":             attributeDefinitions(),
		}
		var gsis []any
		for _, ix := range pool.Schema.Indexes {
			projection := map[string]any{"ProjectionType": "ALL"}
			if len(ix.Include) > 0 {
				projection = map[string]any{"ProjectionType": "INCLUDE", "NonKeyAttributes": ix.Include}
			}
			gsis = append(gsis, map[string]any{
				"IndexName": ix.Name, "KeySchema": keySchema(ix.Partition, ix.Sort), "Projection": projection,
			})
		}
		want["GlobalSecondaryIndexes"] = gsis
		// Warm throughput has its own test (TestWarmThroughputFollowsThePeak).
		var indexes []map[string]any
		raw, _ := json.Marshal(props["GlobalSecondaryIndexes"])
		_ = json.Unmarshal(raw, &indexes)
		for _, ix := range indexes {
			delete(ix, "WarmThroughput")
		}
		props["GlobalSecondaryIndexes"] = indexes
		for k, v := range want {
			if !sameJSON(props[k], v) {
				t.Errorf("table %s = %s, want %s", k, js(props[k]), js(v))
			}
		}
	}
}

func keySchema(partition, sort pool.Key) []any {
	return []any{
		map[string]any{"AttributeName": partition.Name, "KeyType": "HASH"},
		map[string]any{"AttributeName": sort.Name, "KeyType": "RANGE"},
	}
}

func attributeDefinitions() []any {
	var out []any
	for _, k := range pool.Schema.Attributes() {
		out = append(out, map[string]any{"AttributeName": k.Name, "AttributeType": string(k.Type)})
	}
	return out
}

func sameJSON(a, b any) bool { return js(a) == js(b) }

func js(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestOneFunctionPerRouteJobAndAuthorizer(t *testing.T) {
	fns := resources("AWS::Lambda::Function")
	if len(fns) != len(allFunctions()) {
		t.Fatalf("%d functions, want %d (routes + jobs + authorizer)", len(fns), len(allFunctions()))
	}
	for id, props := range fns {
		if !sameJSON(props["Architectures"], []string{"arm64"}) || props["Runtime"] != "provided.al2023" || props["Handler"] != "bootstrap" ||
			!sameJSON(props["TracingConfig"], map[string]string{"Mode": "Active"}) {
			t.Errorf("function %s: %s", id, js(props))
		}
		if _, ok := props["LoggingConfig"].(map[string]any)["LogGroup"]; !ok {
			t.Errorf("function %s has no log group of its own", id)
		}
	}
	for _, job := range jobs.Table {
		props := fnProps(t, job.Name)
		if props["ReservedConcurrentExecutions"] != float64(1) {
			t.Errorf("job %s: reserved concurrency %v, want 1 (jobReservedConcurrency)", job.Name, props["ReservedConcurrentExecutions"])
		}
		if timeout := props["Timeout"].(float64); timeout >= job.Every.Seconds() {
			t.Errorf("job %s: timeout %vs is not under its %v interval", job.Name, timeout, job.Every)
		}
	}
	for _, lg := range resources("AWS::Logs::LogGroup") {
		if lg["RetentionInDays"] == nil {
			t.Errorf("log group without retention: %s", js(lg))
		}
	}
}

// fnProps finds a function's properties by its folder.
func fnProps(t *testing.T, folder string) map[string]any {
	t.Helper()
	id := stack.Stack.GetLogicalId(stack.Functions[folder].Node().DefaultChild().(awscdk.CfnElement))
	return resource(*id)["Properties"].(map[string]any)
}

// apiPaths rebuilds each AWS::ApiGateway::Resource's full path from its PathPart and parent.
func apiPaths() map[string]string {
	res := resources("AWS::ApiGateway::Resource")
	paths := map[string]string{}
	var pathOf func(id string) string
	pathOf = func(id string) string {
		if p, ok := paths[id]; ok {
			return p
		}
		props := res[id]
		parent := ""
		if ref, ok := props["ParentId"].(map[string]any)["Ref"].(string); ok {
			parent = pathOf(ref)
		}
		paths[id] = parent + "/" + props["PathPart"].(string)
		return paths[id]
	}
	for id := range res {
		pathOf(id)
	}
	return paths
}

func TestOneMethodPerRouteWithAuthorizerOnNonPublic(t *testing.T) {
	paths := apiPaths()
	var got, want []string
	notAllowed := map[string]bool{}
	for _, m := range resources("AWS::ApiGateway::Method") {
		ref, _ := m["ResourceId"].(map[string]any)["Ref"].(string)
		integration := m["Integration"].(map[string]any)
		if m["HttpMethod"] == "OPTIONS" {
			continue // TestPreflightAnswersAsTheLocalGateway
		}
		if m["HttpMethod"] == "ANY" {
			// The 405 answer of each resource: a mock, never a function.
			if integration["Type"] != "MOCK" || !strings.Contains(js(integration), `\"code\":\"METHOD_NOT_ALLOWED\"`) {
				t.Errorf("ANY on %s is not the mock 405: %s", paths[ref], js(integration))
			}
			notAllowed[paths[ref]] = true
			continue
		}
		authType := m["AuthorizationType"]
		if authType == "CUSTOM" && m["AuthorizerId"] == nil {
			t.Errorf("method %s %s is CUSTOM without an authorizer", m["HttpMethod"], paths[ref])
		}
		if integration["Type"] != "AWS_PROXY" {
			t.Errorf("method %s %s is not a Lambda proxy integration", m["HttpMethod"], paths[ref])
		}
		got = append(got, fmt.Sprintf("%s %s %s", m["HttpMethod"], paths[ref], authType))
	}
	for _, r := range api.Routes {
		authType := "CUSTOM"
		if r.Scope == auth.Public {
			authType = "NONE"
		}
		want = append(want, fmt.Sprintf("%s %s %s", r.Method, r.Path, authType))
		if !notAllowed[r.Path] {
			t.Errorf("%s has no 405 answer for other methods", r.Path)
		}
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("methods\n got %q\nwant %q", got, want)
	}
	authorizers := resources("AWS::ApiGateway::Authorizer")
	if len(authorizers) != 1 {
		t.Fatalf("%d authorizers", len(authorizers))
	}
	for _, a := range authorizers {
		if a["Type"] != "REQUEST" || a["IdentitySource"] != "method.request.header.Authorization" || a["AuthorizerResultTtlInSeconds"] != float64(300) {
			t.Fatalf("authorizer %s", js(a))
		}
	}
}

func TestGatewayErrorsUseTheEnvelope(t *testing.T) {
	seen := map[string]bool{}
	for _, g := range resources("AWS::ApiGateway::GatewayResponse") {
		seen[g["ResponseType"].(string)] = true
		body := g["ResponseTemplates"].(map[string]any)["application/json"].(string)
		var envelope struct {
			Detail struct {
				Code      string `json:"code"`
				Message   string `json:"message"`
				RequestID string `json:"request_id"`
			} `json:"detail"`
		}
		if err := json.Unmarshal([]byte(strings.ReplaceAll(body, "$context.requestId", "id")), &envelope); err != nil ||
			envelope.Detail.Code == "" || envelope.Detail.RequestID != "id" {
			t.Errorf("%s body %q is not the envelope", g["ResponseType"], body)
		}
		headers := g["ResponseParameters"].(map[string]any)
		if headers["gatewayresponse.header.X-Content-Type-Options"] != "'nosniff'" || headers["gatewayresponse.header.Cache-Control"] != "'no-store'" {
			t.Errorf("%s lacks the security headers: %s", g["ResponseType"], js(headers))
		}
	}
	for _, g := range api.GatewayErrors {
		if kind := g.ResponseType; !seen[kind] {
			t.Errorf("no gateway response for %s", kind)
		}
	}
}

func TestStageThrottlingAccessLogsAndWAF(t *testing.T) {
	for _, st := range resources("AWS::ApiGateway::Stage") {
		ms := st["MethodSettings"].([]any)[0].(map[string]any)
		if ms["ThrottlingRateLimit"] != float64(50) || ms["ThrottlingBurstLimit"] != float64(200) {
			t.Errorf("stage throttling %s", js(ms))
		}
		if st["AccessLogSetting"] == nil || st["TracingEnabled"] != true {
			t.Errorf("stage without access logs or tracing: %s", js(st))
		}
	}
	acls := resources("AWS::WAFv2::WebACL")
	if len(acls) != 1 || len(resources("AWS::WAFv2::WebACLAssociation")) != 1 {
		t.Fatalf("waf=true: %d web ACLs", len(acls))
	}
	for _, acl := range acls {
		rule := acl["Rules"].([]any)[0].(map[string]any)
		rate := rule["Statement"].(map[string]any)["RateBasedStatement"].(map[string]any)
		if rate["AggregateKeyType"] != "IP" || rate["Limit"] != float64(2000) {
			t.Fatalf("rate rule %s", js(rule))
		}
	}
}

func TestWAFAndMailAreOptional(t *testing.T) {
	noWAF.ResourceCountIs(jsii.String("AWS::WAFv2::WebACL"), jsii.Number(0))
	noWAF.ResourceCountIs(jsii.String("AWS::WAFv2::WebACLAssociation"), jsii.Number(0))
	noWAF.ResourceCountIs(jsii.String("AWS::SNS::Subscription"), jsii.Number(0))
	noWAF.ResourceCountIs(jsii.String("AWS::CloudWatch::Alarm"), jsii.Number(4+len(jobs.Table)+len(jobs.Alarms)))
}

// Warm throughput is peak × the measured cost per allocation (pool.AllocationCost) for the
// table and each index, and never below a new on-demand table's 12 000 reads and 4 000
// writes per second.
func TestWarmThroughputFollowsThePeak(t *testing.T) {
	want := func(peak int, index string) map[string]any {
		c := pool.AllocationCost[index]
		return map[string]any{
			"ReadUnitsPerSecond":  math.Max(12_000, math.Ceil(float64(peak)*c.Read)),
			"WriteUnitsPerSecond": math.Max(4_000, math.Ceil(float64(peak)*c.Write)),
		}
	}
	for name, tc := range map[string]struct {
		tmpl assertions.Template
		peak int
	}{"sized": {template, testPeak}, "default": {noWAF, plainPeak}} {
		raw, _ := json.Marshal(tc.tmpl.FindResources(jsii.String("AWS::DynamoDB::Table"), nil))
		var tables map[string]struct {
			Properties struct {
				WarmThroughput         map[string]any
				GlobalSecondaryIndexes []struct {
					IndexName      string
					WarmThroughput map[string]any
				}
			}
		}
		if err := json.Unmarshal(raw, &tables); err != nil || len(tables) != 1 {
			t.Fatalf("%s: tables %s: %v", name, raw, err)
		}
		for _, table := range tables {
			if !sameJSON(table.Properties.WarmThroughput, want(tc.peak, "")) {
				t.Errorf("%s: table warm throughput %v, want %v", name, table.Properties.WarmThroughput, want(tc.peak, ""))
			}
			if len(table.Properties.GlobalSecondaryIndexes) != len(pool.Schema.Indexes) {
				t.Fatalf("%s: %d indexes", name, len(table.Properties.GlobalSecondaryIndexes))
			}
			for _, ix := range table.Properties.GlobalSecondaryIndexes {
				if !sameJSON(ix.WarmThroughput, want(tc.peak, ix.IndexName)) {
					t.Errorf("%s: %s warm throughput %v, want %v", name, ix.IndexName, ix.WarmThroughput, want(tc.peak, ix.IndexName))
				}
			}
		}
	}
	// At the test peak every figure is above the on-demand floor but the table's reads.
	if got := want(testPeak, pool.StatusIndex)["WriteUnitsPerSecond"]; got.(float64) <= 4_000 {
		t.Fatalf("test peak %d does not exercise the formula", testPeak)
	}
}

func TestConfigFromContext(t *testing.T) {
	app := awscdk.NewApp(&awscdk.AppProps{Context: &map[string]any{
		"labDurationHours": "24", "waf": "true", "poolLowWaterMark": 5.0, "cspBaseUrl": "https://csp.example.com/v2",
	}})
	cfg, err := configFromContext(app.Node())
	if err != nil || cfg.LabDurationHours != 24 || !cfg.WAF || cfg.PoolLowWaterMark != 5 || cfg.GracePeriodMinutes != 30 || cfg.LogLevel != slog.LevelInfo ||
		cfg.PeakAllocationsPerSecond != 1000 ||
		cfg.APIThrottleRate != api.StageThrottle.Rate || cfg.APIThrottleBurst != api.StageThrottle.Burst {
		t.Fatalf("config %+v, %v", cfg, err)
	}
	bad := awscdk.NewApp(&awscdk.AppProps{Context: &map[string]any{
		"labDurationHours": "forever", "waf": "maybe", "cspBaseUrl": "http://insecure", "logLevel": "loud",
	}})
	if _, err := configFromContext(bad.Node()); err == nil || !strings.Contains(err.Error(), "logLevel") ||
		!strings.Contains(err.Error(), "labDurationHours") || !strings.Contains(err.Error(), "waf") || !strings.Contains(err.Error(), "cspBaseUrl") {
		t.Fatalf("bad context accepted or not named: %v", err)
	}
}

func TestOneSchedulePerJob(t *testing.T) {
	rules := resources("AWS::Events::Rule")
	if len(rules) != len(jobs.Table) {
		t.Fatalf("%d rules for %d jobs", len(rules), len(jobs.Table))
	}
	for _, job := range jobs.Table {
		fnID := *stack.Stack.GetLogicalId(stack.Functions[job.Name].Node().DefaultChild().(awscdk.CfnElement))
		found := false
		for _, r := range rules {
			target := r["Targets"].([]any)[0].(map[string]any)
			arn, _ := target["Arn"].(map[string]any)["Fn::GetAtt"].([]any)
			if r["ScheduleExpression"] == job.Schedule() && len(arn) > 0 && arn[0] == fnID && r["State"] != "DISABLED" {
				found = true
			}
		}
		if !found {
			t.Errorf("no enabled %s schedule targeting the %s function", job.Schedule(), job.Name)
		}
	}
}

// policyStatements maps each function folder to the statements of its role's policies.
func policyStatements(t *testing.T) map[string][]map[string]any {
	t.Helper()
	roleOf := map[string]string{}
	for folder, fn := range stack.Functions {
		roleOf[*stack.Stack.GetLogicalId(fn.Role().Node().DefaultChild().(awscdk.CfnElement))] = folder
	}
	out := map[string][]map[string]any{}
	for id, p := range resources("AWS::IAM::Policy") {
		for _, role := range p["Roles"].([]any) {
			folder, ok := roleOf[role.(map[string]any)["Ref"].(string)]
			if !ok {
				continue
			}
			for _, st := range p["PolicyDocument"].(map[string]any)["Statement"].([]any) {
				out[folder] = append(out[folder], st.(map[string]any))
			}
		}
		_ = id
	}
	return out
}

func actionsOf(st map[string]any) []string {
	switch a := st["Action"].(type) {
	case string:
		return []string{a}
	case []any:
		var out []string
		for _, x := range a {
			out = append(out, x.(string))
		}
		return out
	}
	return nil
}

func TestLeastPrivilege(t *testing.T) {
	statements := policyStatements(t)
	writes := map[string]bool{"dynamodb:PutItem": true, "dynamodb:UpdateItem": true, "dynamodb:DeleteItem": true, "dynamodb:BatchWriteItem": true}
	readOnly, starts := map[string]bool{}, map[string]string{}
	for _, r := range api.Routes {
		if r.Method == "GET" || r.Starts != "" {
			readOnly[r.Name] = true
		}
		starts[r.Name] = r.Starts
	}
	for folder, sts := range statements {
		for _, st := range sts {
			for _, a := range actionsOf(st) {
				if a == "*" || strings.HasSuffix(a, ":*") {
					t.Errorf("%s: wildcard action %q", folder, a)
				}
				if readOnly[folder] && writes[a] {
					t.Errorf("read-only function %s may %s", folder, a)
				}
				if strings.HasPrefix(a, "secretsmanager:") && folder != api.AuthorizerFunction && !usesCSP(folder) && !usesNIOSXaaS(folder) && !usesAPIGateway(folder) {
					t.Errorf("%s may read secrets (%s)", folder, a)
				}
				if a == "lambda:InvokeFunction" && !invokesOnly(st, starts[folder]) {
					t.Errorf("%s may invoke functions other than its job's: %s", folder, js(st["Resource"]))
				}
				if strings.HasPrefix(a, "apigateway:") && !usesAPIGateway(folder) {
					t.Errorf("%s may manage API Gateway (%s)", folder, a)
				}
				if folder == api.AuthorizerFunction && strings.HasPrefix(a, "dynamodb:") {
					t.Errorf("the authorizer may touch the table (%s)", a)
				}
			}
		}
	}
	if len(statements[api.AuthorizerFunction]) == 0 {
		t.Fatal("no policy found for the authorizer")
	}
}

// invokesOnly reports whether a statement's resources are the function of job (and its
// versions) and nothing else.
func invokesOnly(st map[string]any, job string) bool {
	if job == "" {
		return false
	}
	want := *stack.Stack.GetLogicalId(stack.jobFunction(job).Node().DefaultChild().(awscdk.CfnElement))
	resources, ok := st["Resource"].([]any)
	if !ok {
		resources = []any{st["Resource"]}
	}
	for _, r := range resources {
		if !strings.Contains(js(r), `"`+want+`"`) {
			return false
		}
	}
	return len(resources) > 0
}

func usesNIOSXaaS(folder string) bool {
	j, ok := jobs.Named(folder)
	return ok && j.UsesNIOSXaaS
}

func usesAPIGateway(folder string) bool {
	j, ok := jobs.Named(folder)
	return ok && j.UsesAPIGateway
}

func usesCSP(folder string) bool {
	j, ok := jobs.Named(folder)
	return ok && j.UsesCSP
}

func TestAlarmsTopicAndOutputs(t *testing.T) {
	alarms := resources("AWS::CloudWatch::Alarm")
	want := []string{"PoolLow", "DeletionFailed", "Api5xxRate", "AllocateLatencyP99"}
	for _, j := range jobs.Table {
		want = append(want, camel(j.Name)+"Errors")
	}
	for _, name := range jobs.Alarms {
		want = append(want, "JobAlarm"+camel(name))
	}
	if len(alarms) != len(want) {
		t.Errorf("%d alarms, want %d", len(alarms), len(want))
	}
	for _, id := range want {
		found := false
		for logical, a := range alarms {
			if strings.HasPrefix(logical, id) {
				found = len(a["AlarmActions"].([]any)) == 1
			}
		}
		if !found {
			t.Errorf("alarm %s missing or not wired to the topic", id)
		}
	}
	if len(resources("AWS::SNS::Subscription")) != 1 {
		t.Error("alarm e-mail subscription missing")
	}
	if len(resources("AWS::CloudWatch::Dashboard")) != 1 {
		t.Error("dashboard missing")
	}
	for _, secret := range resources("AWS::SecretsManager::Secret") {
		if secret["SecretString"] != nil {
			t.Errorf("a secret value is in the template: %s", js(secret))
		}
	}
	outputs := tmpl["Outputs"].(map[string]any)
	for _, name := range []string{"ApiUrl", "TableName", "TokenSecretArn", "CSPTokenSecretArn"} {
		if outputs[name] == nil {
			t.Errorf("output %s missing", name)
		}
	}
}

func TestCDKNagAwsSolutionsHasNoUnsuppressedErrors(t *testing.T) {
	annotations := assertions.Annotations_FromStack(stack.Stack)
	errs := annotations.FindError(jsii.String("*"), assertions.Match_StringLikeRegexp(jsii.String("AwsSolutions-.*")))
	for _, e := range *errs {
		//lint:ignore SA1019 FindError still returns cxapi.SynthesisMessage in this CDK version
		t.Errorf("%s: %v", *e.Id, e.Entry.Data)
	}
}

// TestCDKJSONBuildsAndSetsTheRecommendedFlags: a plain `cdk deploy` or `cdk watch` builds
// the bootstraps first, and cdk.json sets every feature flag the pinned CLI recommends for a
// new app with its recommended value (set before the first deploy, they never change
// logical ids of a deployed stack). Upgrading aws-cdk fails here until cdk.json follows.
func TestCDKJSONBuildsAndSetsTheRecommendedFlags(t *testing.T) {
	raw, err := os.ReadFile("../cdk.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Build   string         `json:"build"`
		Context map[string]any `json:"context"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Build != "make build" {
		t.Errorf("cdk.json build step %q, want \"make build\"", doc.Build)
	}
	raw, err = os.ReadFile("../node_modules/aws-cdk/lib/init-templates/.recommended-feature-flags.json")
	if err != nil {
		t.Fatal(err)
	}
	var recommended map[string]any
	if err := json.Unmarshal(raw, &recommended); err != nil || len(recommended) == 0 {
		t.Fatalf("the CLI's recommended flags: %v", err)
	}
	for flag, value := range recommended {
		if got, ok := doc.Context[flag]; !ok || !sameJSON(got, value) {
			t.Errorf("cdk.json %s = %s, the pinned CLI recommends %s", flag, js(got), js(value))
		}
	}
}

// TestEveryJobAlarmHasACloudWatchAlarm ties the alarms the jobs raise (jobs.Alarms) to the
// template both ways: each name has an alarm on the JobAlarm metric with that Alarm
// dimension, wired to the topic, and every JobAlarm alarm watches a name the code raises.
func TestEveryJobAlarmHasACloudWatchAlarm(t *testing.T) {
	watched := map[string]int{}
	for id, a := range resources("AWS::CloudWatch::Alarm") {
		if a["MetricName"] != obs.MetricJobAlarm {
			continue
		}
		dims, _ := a["Dimensions"].([]any)
		if a["Namespace"] != config.DefaultMetricsNamespace || len(dims) != 1 || dims[0].(map[string]any)["Name"] != "Alarm" ||
			a["Statistic"] != "Sum" || a["ComparisonOperator"] != "GreaterThanThreshold" || a["Threshold"] != 0.0 ||
			len(a["AlarmActions"].([]any)) != 1 {
			t.Errorf("alarm %s: %s", id, js(a))
			continue
		}
		watched[dims[0].(map[string]any)["Value"].(string)]++
	}
	for _, name := range jobs.Alarms {
		if watched[name] != 1 {
			t.Errorf("%d CloudWatch alarms watch the job alarm %s, want 1", watched[name], name)
		}
	}
	for name := range watched {
		if !slices.Contains(jobs.Alarms, name) {
			t.Errorf("a CloudWatch alarm watches %s, which no job raises", name)
		}
	}
}

// TestAlarmTopicIsEncryptedWithItsOwnKey: the topic is encrypted with the stack's rotated
// customer-managed key, never alias/aws/sns (which CloudWatch cannot use). That CloudWatch
// may publish with it is evaluated, not read off a statement: TestCloudWatchAlarmsCanPublish.
func TestAlarmTopicIsEncryptedWithItsOwnKey(t *testing.T) {
	topics := resources("AWS::SNS::Topic")
	keys := resources("AWS::KMS::Key")
	if len(topics) != 1 || len(keys) != 1 {
		t.Fatalf("%d topics, %d keys", len(topics), len(keys))
	}
	for keyID, key := range keys {
		for _, topic := range topics {
			if !sameJSON(topic["KmsMasterKeyId"], map[string]any{"Fn::GetAtt": []string{keyID, "Arn"}}) {
				t.Errorf("topic key %s, want the stack's key %s", js(topic["KmsMasterKeyId"]), keyID)
			}
		}
		if key["EnableKeyRotation"] != true {
			t.Error("the alarm key does not rotate")
		}
	}
	if strings.Contains(js(tmpl), "alias/aws/sns") {
		t.Error("the template still names alias/aws/sns")
	}
}

// TestAuthorizerOutlivesASlowSecretRead: a secret read that hangs ends at
// auth.SecretReadTimeout with more than as long again left in the function, so the
// authorizer answers from the last good tokens instead of being killed mid-read.
func TestAuthorizerOutlivesASlowSecretRead(t *testing.T) {
	timeout := time.Duration(fnProps(t, api.AuthorizerFunction)["Timeout"].(float64)) * time.Second
	if timeout <= 2*auth.SecretReadTimeout {
		t.Fatalf("authorizer timeout %v, secret read timeout %v: no time left to fall back", timeout, auth.SecretReadTimeout)
	}
}

// TestEveryFunctionLogsJSONAtTheContextLevel: every function uses Lambda's JSON log format,
// LOG_LEVEL is the logLevel context (ERROR here), and Lambda's own filter sits at the level
// that keeps EMF lines (INFO: a line without a level counts as INFO), so no metric is lost.
func TestEveryFunctionLogsJSONAtTheContextLevel(t *testing.T) {
	for id, props := range resources("AWS::Lambda::Function") {
		logging := props["LoggingConfig"].(map[string]any)
		env := props["Environment"].(map[string]any)["Variables"].(map[string]any)
		if logging["LogFormat"] != "JSON" || logging["ApplicationLogLevel"] != "INFO" || logging["SystemLogLevel"] != "INFO" ||
			env["LOG_LEVEL"] != "ERROR" {
			t.Errorf("function %s: logging %s, LOG_LEVEL %v", id, js(logging), env["LOG_LEVEL"])
		}
	}
}

// TestPreflightAnswersAsTheLocalGateway: with an origin configured, every resource answers
// OPTIONS with a mock, without the authorizer, that returns 204 with exactly the headers
// api.CORS.Preflight gives (the local gateway's answer) for a preflight from that origin,
// and the 405 envelope otherwise; without origins there is no OPTIONS method (405, as
// locally).
func TestPreflightAnswersAsTheLocalGateway(t *testing.T) {
	paths := apiPaths()
	seen := map[string]bool{}
	for _, m := range resources("AWS::ApiGateway::Method") {
		if m["HttpMethod"] != "OPTIONS" {
			continue
		}
		path := paths[m["ResourceId"].(map[string]any)["Ref"].(string)]
		seen[path] = true
		integration := m["Integration"].(map[string]any)
		request := integration["RequestTemplates"].(map[string]any)["application/json"].(string)
		if m["AuthorizationType"] != "NONE" || integration["Type"] != "MOCK" ||
			!strings.Contains(request, `$origin == "`+testOrigin+`"`) || !strings.Contains(request, "Access-Control-Request-Method") {
			t.Errorf("OPTIONS %s: %s", path, js(m))
			continue
		}
		want := map[string]string{}
		if !api.NewCORS([]string{testOrigin}).Preflight(want, testOrigin, api.MethodsOf(path)) {
			t.Fatal("the test origin is not allowed")
		}
		var ok204, ok405 bool
		for _, r := range integration["IntegrationResponses"].([]any) {
			r := r.(map[string]any)
			params, _ := r["ResponseParameters"].(map[string]any)
			template := r["ResponseTemplates"].(map[string]any)["application/json"].(string)
			switch r["StatusCode"] {
			case "204":
				ok204 = r["SelectionPattern"] == "204" && strings.Contains(template, "header.Access-Control-Allow-Origin = $allowOrigin")
				for name, value := range want {
					if name == "Access-Control-Allow-Origin" {
						continue // from the request's origin, in the template
					}
					if params["method.response.header."+name] != "'"+value+"'" {
						t.Errorf("OPTIONS %s: %s = %v, the local gateway sends %q", path, name, params["method.response.header."+name], value)
					}
				}
			case "405":
				ok405 = r["SelectionPattern"] == nil && strings.Contains(template, `"code":"METHOD_NOT_ALLOWED"`) &&
					strings.Contains(template, "header.Access-Control-Allow-Origin = $allowOrigin")
			}
		}
		if !ok204 || !ok405 {
			t.Errorf("OPTIONS %s: 204 %v, 405 %v: %s", path, ok204, ok405, js(integration["IntegrationResponses"]))
		}
	}
	for _, r := range api.Routes {
		if !seen[r.Path] {
			t.Errorf("%s answers no preflight", r.Path)
		}
	}
	noWAF.ResourcePropertiesCountIs(jsii.String("AWS::ApiGateway::Method"),
		&map[string]any{"HttpMethod": "OPTIONS"}, jsii.Number(0))
}

// TestErrorsOfTheGatewayCarryCORSHeaders: API Gateway's own errors and the 405 mock carry
// the headers api.CORS.Headers adds to any answer for an allowed origin, so a browser can
// read them as it can locally.
func TestErrorsOfTheGatewayCarryCORSHeaders(t *testing.T) {
	want := map[string]string{}
	api.NewCORS([]string{testOrigin}).Headers(want, testOrigin)
	if len(want) == 0 {
		t.Fatal("api.CORS adds no headers for the test origin")
	}
	for _, g := range resources("AWS::ApiGateway::GatewayResponse") {
		headers := g["ResponseParameters"].(map[string]any)
		for name, value := range want {
			if headers["gatewayresponse.header."+name] != "'"+value+"'" {
				t.Errorf("%s: %s = %v, want %q", g["ResponseType"], name, headers["gatewayresponse.header."+name], value)
			}
		}
	}
	for _, m := range resources("AWS::ApiGateway::Method") {
		if m["HttpMethod"] != "ANY" {
			continue
		}
		response := m["Integration"].(map[string]any)["IntegrationResponses"].([]any)[0].(map[string]any)
		template := response["ResponseTemplates"].(map[string]any)["application/json"].(string)
		for _, part := range []string{`$origin == "` + testOrigin + `"`, "header.Access-Control-Allow-Origin = $allowOrigin",
			`header.Access-Control-Expose-Headers = "` + api.CORSExposeHeaders + `"`, `header.Vary = "Origin"`} {
			if !strings.Contains(template, part) {
				t.Errorf("the 405 mock lacks %q: %s", part, template)
			}
		}
	}
}

// TestReservedConcurrencyIsOptInAndFitsTheStatedQuota: by default no function reserves
// concurrency, so the template deploys into an account with the smallest quota (10); a
// reservation is asked for with jobReservedConcurrency, and synth refuses one that would
// leave Lambda fewer than 100 unreserved executions of the quota the operator states. The
// lease keeps a job's runs apart without it (pkg/jobs TestOverlappingRunIsSkipped, pkg/pool
// TestLeaseConcurrentAcquireHasOneWinner).
func TestReservedConcurrencyIsOptInAndFitsTheStatedQuota(t *testing.T) {
	for id, fn := range templateResources(stacks[1].tmpl) {
		if props, _ := fn["Properties"].(map[string]any); fn["Type"] == "AWS::Lambda::Function" && props["ReservedConcurrentExecutions"] != nil {
			t.Errorf("default stack: %s reserves %v", id, props["ReservedConcurrentExecutions"])
		}
	}
	cfg, err := configFromContext(awscdk.NewApp(nil).Node())
	if err != nil || cfg.AccountConcurrency != 10 || cfg.JobReservedConcurrency != 0 {
		t.Fatalf("defaults %d, %d, %v", cfg.AccountConcurrency, cfg.JobReservedConcurrency, err)
	}
	fits := 100 + len(jobs.Table)
	for _, c := range []struct {
		context map[string]any
		refused bool
	}{
		{map[string]any{"jobReservedConcurrency": "1"}, true},
		{map[string]any{"jobReservedConcurrency": "1", "accountConcurrency": fmt.Sprint(fits - 1)}, true},
		{map[string]any{"jobReservedConcurrency": "1", "accountConcurrency": fmt.Sprint(fits)}, false},
		{map[string]any{"jobReservedConcurrency": "2", "accountConcurrency": "1000"}, false},
		{map[string]any{"accountConcurrency": "10"}, false},
		{map[string]any{"accountConcurrency": "5"}, true},
	} {
		_, err := configFromContext(awscdk.NewApp(&awscdk.AppProps{Context: &c.context}).Node())
		if refused := err != nil; refused != c.refused {
			t.Errorf("context %v: error %v, want refused %v", c.context, err, c.refused)
		}
		if err != nil && c.context["jobReservedConcurrency"] != nil && c.context["accountConcurrency"] != "5" &&
			!strings.Contains(err.Error(), fmt.Sprintf("accountConcurrency=%d or more", fits)) {
			t.Errorf("context %v: the error does not say what fits: %v", c.context, err)
		}
	}
}

// TestDashboardIsNamedAfterItsStack: two stacks in one account and region get dashboards of
// their own names.
func TestDashboardIsNamedAfterItsStack(t *testing.T) {
	names := map[string]any{}
	for _, s := range stacks {
		for _, d := range templateResources(s.tmpl) {
			if d["Type"] == "AWS::CloudWatch::Dashboard" {
				names[s.name] = d["Properties"].(map[string]any)["DashboardName"]
			}
		}
	}
	if names["Test"] != "Test" || names["Plain"] != "Plain" {
		t.Fatalf("dashboard names %v, want each stack's name", names)
	}
}
