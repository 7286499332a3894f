package main

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/sandbox-broker/broker/pkg/jobs"
)

// TestAPIKeysComeFromTheAuthorizer: the REST API takes each request's API key from the
// authorizer's usageIdentifierKey, and every method behind the authorizer requires one, so
// each authorized request is metered by its client's usage plan; the public methods (health
// checks, the 405 and preflight answers) require none.
func TestAPIKeysComeFromTheAuthorizer(t *testing.T) {
	apis := resources("AWS::ApiGateway::RestApi")
	if len(apis) != 1 {
		t.Fatalf("%d REST APIs", len(apis))
	}
	for id, a := range apis {
		if a["ApiKeySourceType"] != "AUTHORIZER" {
			t.Fatalf("REST API %s: ApiKeySourceType %v, want AUTHORIZER", id, a["ApiKeySourceType"])
		}
	}
	authorized := 0
	for id, m := range resources("AWS::ApiGateway::Method") {
		required := m["ApiKeyRequired"] == true
		if custom := m["AuthorizationType"] == "CUSTOM"; custom != required {
			t.Errorf("method %s (%s %v): ApiKeyRequired %v", id, m["HttpMethod"], m["AuthorizationType"], m["ApiKeyRequired"])
		} else if custom {
			authorized++
		}
	}
	if authorized == 0 {
		t.Fatal("no authorized method")
	}
}

// TestUsagePlansJobHasItsAccess: the usage-plans job's function gets the REST API's id and
// stage and the tokens secret, and its role grants exactly the API Gateway actions the
// reconciler calls on this region's API keys, usage plans and the API's stage; no other
// function may manage API Gateway (TestLeastPrivilege).
func TestUsagePlansJobHasItsAccess(t *testing.T) {
	var users []string
	for _, j := range jobs.Table {
		if j.UsesAPIGateway {
			users = append(users, j.Name)
		}
	}
	if !slices.Equal(users, []string{"usage-plans"}) {
		t.Fatalf("jobs using API Gateway: %v", users)
	}
	if tmpl["Outputs"].(map[string]any)["UsagePlansFunctionName"] == nil {
		t.Error("no output names the usage-plans function")
	}
	apiID := ""
	for id := range resources("AWS::ApiGateway::RestApi") {
		apiID = id
	}
	tokens := *stack.Stack.GetLogicalId(stack.TokenSecret.Node().DefaultChild().(awscdk.CfnElement))
	env := fnProps(t, "usage-plans")["Environment"].(map[string]any)["Variables"].(map[string]any)
	if js(env["REST_API_ID"]) != js(map[string]any{"Ref": apiID}) || env["REST_API_STAGE"] != stageName ||
		js(env["TOKENS_SECRET_ARN"]) != js(map[string]any{"Ref": tokens}) {
		t.Fatalf("usage-plans environment %s", js(env))
	}

	arn := func(path string) string {
		return js(map[string]any{"Fn::Join": []any{"", []any{"arn:", map[string]any{"Ref": "AWS::Partition"}, ":apigateway:",
			map[string]any{"Ref": "AWS::Region"}, "::" + path}}})
	}
	stageARN := js(map[string]any{"Fn::Join": []any{"", []any{"arn:", map[string]any{"Ref": "AWS::Partition"}, ":apigateway:",
		map[string]any{"Ref": "AWS::Region"}, "::/restapis/", map[string]any{"Ref": apiID}, "/stages/" + stageName}}})
	want := []string{
		"apigateway:DELETE " + arn("/apikeys/*"), "apigateway:DELETE " + arn("/usageplans/*"),
		"apigateway:GET " + arn("/apikeys"), "apigateway:GET " + arn("/usageplans"), "apigateway:GET " + arn("/usageplans/*"),
		"apigateway:GET " + stageARN,
		"apigateway:PATCH " + arn("/usageplans/*"),
		"apigateway:POST " + arn("/apikeys"), "apigateway:POST " + arn("/usageplans"), "apigateway:POST " + arn("/usageplans/*"),
		"secretsmanager:GetSecretValue " + js(map[string]any{"Ref": tokens}),
	}
	var got []string
	for _, st := range policyStatements(t)["usage-plans"] {
		resources, ok := st["Resource"].([]any)
		if !ok {
			resources = []any{st["Resource"]}
		}
		for _, a := range actionsOf(st) {
			if !strings.HasPrefix(a, "apigateway:") && !strings.HasPrefix(a, "secretsmanager:") {
				continue
			}
			if st["Effect"] != "Allow" || st["Condition"] != nil {
				t.Errorf("statement %s", js(st))
			}
			for _, r := range resources {
				got = append(got, fmt.Sprintf("%s %s", a, js(r)))
			}
		}
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("usage-plans grants\n got %q\nwant %q", got, want)
	}
}

// TestExtendSettingsComeFromTheContext: every function gets LAB_EXTENSION_HOURS and
// MAX_LAB_DURATION_HOURS from the context values, beside LAB_DURATION_HOURS, and the
// context is checked by pkg/config's rule (the maximum is at least the lab duration).
func TestExtendSettingsComeFromTheContext(t *testing.T) {
	for _, f := range allFunctions() {
		env := fnProps(t, f)["Environment"].(map[string]any)["Variables"].(map[string]any)
		if env["LAB_EXTENSION_HOURS"] != "12" || env["MAX_LAB_DURATION_HOURS"] != "120" || env["LAB_DURATION_HOURS"] != "48" {
			t.Errorf("%s: LAB_EXTENSION_HOURS %v, MAX_LAB_DURATION_HOURS %v, LAB_DURATION_HOURS %v", f,
				env["LAB_EXTENSION_HOURS"], env["MAX_LAB_DURATION_HOURS"], env["LAB_DURATION_HOURS"])
		}
	}
	app := awscdk.NewApp(&awscdk.AppProps{Context: &map[string]any{"labExtensionHours": "6", "maxLabDurationHours": 72.0}})
	cfg, err := configFromContext(app.Node())
	if err != nil || cfg.LabExtensionHours != 6 || cfg.MaxLabDurationHours != 72 {
		t.Fatalf("config %+v, %v", cfg, err)
	}
	if cfg, err := configFromContext(awscdk.NewApp(nil).Node()); err != nil || cfg.LabExtensionHours != 24 || cfg.MaxLabDurationHours != 96 {
		t.Fatalf("defaults %+v, %v", cfg, err)
	}
	short := awscdk.NewApp(&awscdk.AppProps{Context: &map[string]any{"labDurationHours": "48", "maxLabDurationHours": "24"}})
	if _, err := configFromContext(short.Node()); err == nil || !strings.Contains(err.Error(), "MAX_LAB_DURATION_HOURS: must be at least LAB_DURATION_HOURS") {
		t.Fatalf("a maximum below the lab duration: %v", err)
	}
	bad := awscdk.NewApp(&awscdk.AppProps{Context: &map[string]any{"labExtensionHours": "0"}})
	if _, err := configFromContext(bad.Node()); err == nil || !strings.Contains(err.Error(), "labExtensionHours") {
		t.Fatalf("labExtensionHours 0: %v", err)
	}
}
