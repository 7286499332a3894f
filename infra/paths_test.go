package main

import (
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/aws/aws-cdk-go/awscdk/v2"

	"github.com/sandbox-broker/broker/pkg/api"
	"github.com/sandbox-broker/broker/pkg/jobs"
	"github.com/sandbox-broker/broker/pkg/pool"
)

// Every cross-service path of the stack, evaluated by the IAM policy simulator with the
// policies AWS would evaluate (policymodel_test.go), both ways: what must be allowed, and
// what must be denied.

// synthesized is one synthesized stack as the fidelity checks read it; a planted defect
// changes a copy of tmpl and keeps the rest.
type synthesized struct {
	name      string
	tmpl      map[string]any
	cfg       StackConfig
	functions map[string]string // function folder → logical id
	secrets   map[string]string // tokens, csp, niosxaas → logical id
}

func synthesizedOf(name string, s *BrokerStack, cfg StackConfig, tpl map[string]any) synthesized {
	id := func(c awscdk.CfnElement) string { return *s.Stack.GetLogicalId(c) }
	out := synthesized{name: name, tmpl: tpl, cfg: cfg, functions: map[string]string{}, secrets: map[string]string{
		"tokens":   id(s.TokenSecret.Node().DefaultChild().(awscdk.CfnElement)),
		"csp":      id(s.CSPSecret.Node().DefaultChild().(awscdk.CfnElement)),
		"niosxaas": id(s.NIOSXaaSSecret.Node().DefaultChild().(awscdk.CfnElement)),
	}}
	for folder, fn := range s.Functions {
		out.functions[folder] = id(fn.Node().DefaultChild().(awscdk.CfnElement))
	}
	return out
}

// with is the same stack with another template (a planted defect).
func (s synthesized) with(tpl map[string]any) synthesized {
	s.tmpl = tpl
	return s
}

// awsPath is one request AWS would evaluate, and whether it must be allowed.
type awsPath struct {
	name  string
	allow bool
	sim   map[string]any
}

const (
	otherAccount  = "210987654321"
	otherRestAPI  = "zz9y8x7w6v"
	sampleID      = "3000004" // a path parameter's value in a request
	sourceAccount = "aws:SourceAccount"
	sourceARN     = "aws:SourceArn"
)

func simulation(principal, action, resource string, context map[string]any, identity []map[string]any, resourcePolicy policy) map[string]any {
	sim := map[string]any{
		"request": map[string]any{
			"principal": principal, "action": action,
			"resource":         map[string]any{"resource": resource, "accountId": standInAccount},
			"contextVariables": context,
		},
		"identityPolicies": identity, "serviceControlPolicies": []any{}, "resourceControlPolicies": []any{},
	}
	if identity == nil {
		sim["identityPolicies"] = []any{}
	}
	if resourcePolicy != nil {
		sim["resourcePolicy"] = resourcePolicy
	}
	return sim
}

// onBehalfOf is the context a service sends when it acts for a resource of account.
func onBehalfOf(account, arn string) map[string]any {
	return map[string]any{sourceAccount: account, sourceARN: arn}
}

func arnIn(service, account, resource string) string {
	return "arn:aws:" + service + ":" + standInRegion + ":" + account + ":" + resource
}

// paths are every path of the stack, and what the model could not read.
func (s synthesized) paths() ([]awsPath, []string) {
	r := resolver{resources: s.tmpl["Resources"].(map[string]any)}
	var out []awsPath
	var problems []string
	for _, build := range []func(resolver) ([]awsPath, error){alarmPaths, apiGatewayPaths, schedulePaths, trustPaths, s.rolePaths} {
		p, err := build(r)
		if err != nil {
			problems = append(problems, err.Error())
		}
		out = append(out, p...)
	}
	return out, problems
}

// alarmPaths: CloudWatch publishes each alarm's notification to its topic and uses the
// topic's key, for this account's alarms only; nobody publishes without TLS.
func alarmPaths(r resolver) ([]awsPath, error) {
	var out []awsPath
	negated := map[string]bool{}
	for _, alarm := range r.ofType("AWS::CloudWatch::Alarm") {
		for _, action := range list1(r.props(alarm)["AlarmActions"]) {
			topic := refTarget(action)
			if r.typeOf(topic) != "AWS::SNS::Topic" {
				continue
			}
			topicARN, _ := r.ref(topic)
			topicPolicy, err := r.topicPolicy(topic)
			if err != nil {
				return out, err
			}
			keyARN, keyPolicy, err := r.topicKey(topic)
			if err != nil {
				return out, err
			}
			publish := func(name string, allow bool, ctx map[string]any) {
				ctx["aws:SourceOwner"], ctx["aws:SecureTransport"] = ctx[sourceAccount], "true"
				out = append(out, awsPath{name + ": sns:Publish on the topic " + topic, allow,
					simulation("cloudwatch.amazonaws.com", "sns:Publish", topicARN, ctx, nil, topicPolicy)})
				if keyARN == "" {
					return
				}
				for _, a := range []string{"kms:GenerateDataKey", "kms:Decrypt"} {
					out = append(out, awsPath{name + ": " + a + " on the topic's key", allow,
						simulation("cloudwatch.amazonaws.com", a, keyARN, ctx, nil, keyPolicy)})
				}
			}
			publish("CloudWatch for the alarm "+alarm, true, onBehalfOf(standInAccount, arnIn("cloudwatch", standInAccount, "alarm:"+alarm)))
			if negated[topic] {
				continue
			}
			negated[topic] = true
			publish("CloudWatch for another account's alarm", false, onBehalfOf(otherAccount, arnIn("cloudwatch", otherAccount, "alarm:"+alarm)))
			publish("CloudWatch claiming this account for another account's alarm", false, onBehalfOf(standInAccount, arnIn("cloudwatch", otherAccount, "alarm:"+alarm)))
			anyPublish := []map[string]any{{"name": "publishes", "policy": document(map[string]any{"Effect": "Allow", "Action": "sns:Publish", "Resource": "*"})}}
			out = append(out, awsPath{"a principal of the account allowed to publish, without TLS: sns:Publish on the topic " + topic, false,
				simulation("arn:aws:sts::"+standInAccount+":assumed-role/Publisher/session", "sns:Publish", topicARN,
					map[string]any{"aws:SecureTransport": "false"}, anyPublish, topicPolicy)})
		}
	}
	return out, nil
}

// resourcePath is the path of an AWS::ApiGateway::Resource (or the root).
func (r resolver) resourcePath(v any) string {
	id := refTarget(v)
	if r.typeOf(id) != "AWS::ApiGateway::Resource" {
		return "" // the API's root
	}
	props := r.props(id)
	return r.resourcePath(props["ParentId"]) + "/" + fmt.Sprint(props["PathPart"])
}

// samplePath is a request's path on resource path p: each {parameter} gets a value.
func samplePath(p string) string {
	segs := strings.Split(p, "/")
	for i, seg := range segs {
		if strings.HasPrefix(seg, "{") {
			segs[i] = sampleID
		}
	}
	return strings.Join(segs, "/")
}

// apiPaths: API Gateway invokes each route's function for that route of this API only, and
// the authorizer for this API's authorizer only.
func apiGatewayPaths(r resolver) ([]awsPath, error) {
	var out []awsPath
	stage := "prod"
	for _, id := range r.ofType("AWS::ApiGateway::Stage") {
		stage = fmt.Sprint(r.props(id)["StageName"])
	}
	type route struct{ fn, method, path, api string }
	var routes []route
	for _, id := range r.ofType("AWS::ApiGateway::Method") {
		props := r.props(id)
		integration, _ := props["Integration"].(map[string]any)
		if integration["Type"] != "AWS_PROXY" {
			continue
		}
		fn := r.functionIn(integration["Uri"])
		if fn == "" {
			return out, fmt.Errorf("method %s: its integration names no function of the stack", id)
		}
		apiID, err := r.value(props["RestApiId"])
		if err != nil {
			return out, err
		}
		routes = append(routes, route{fn, fmt.Sprint(props["HttpMethod"]), samplePath(r.resourcePath(props["ResourceId"])), apiID})
	}
	invoke := func(name string, allow bool, fn, account, source string) error {
		p, err := r.serviceInvokes("apigateway.amazonaws.com", name, allow, fn, account, source)
		if err == nil {
			out = append(out, p)
		}
		return err
	}
	execute := func(account, api, rest string) string { return arnIn("execute-api", account, api+"/"+rest) }
	for i, rt := range routes {
		rest := stage + "/" + rt.method + rt.path
		for _, p := range []struct {
			name         string
			allow        bool
			account, api string
			rest         string
		}{
			{"API Gateway for " + rt.method + " " + rt.path, true, standInAccount, rt.api, rest},
			{"API Gateway for another API's " + rt.method + " " + rt.path, false, standInAccount, otherRestAPI, rest},
			{"API Gateway for another account's API", false, otherAccount, rt.api, rest},
		} {
			if err := invoke(p.name, p.allow, rt.fn, p.account, execute(p.account, p.api, p.rest)); err != nil {
				return out, err
			}
		}
		// Another route of this API, served by another function, must not reach this one.
		for j := 1; j < len(routes); j++ {
			other := routes[(i+j)%len(routes)]
			if other.fn != rt.fn {
				if err := invoke("API Gateway for the route "+other.method+" "+other.path, false, rt.fn, standInAccount,
					execute(standInAccount, rt.api, stage+"/"+other.method+other.path)); err != nil {
					return out, err
				}
				break
			}
		}
	}
	for _, id := range r.ofType("AWS::ApiGateway::Authorizer") {
		props := r.props(id)
		fn := r.functionIn(props["AuthorizerUri"])
		apiID, err := r.value(props["RestApiId"])
		if fn == "" || err != nil {
			return out, fmt.Errorf("authorizer %s: no function or API: %v", id, err)
		}
		authorizerID, _ := r.ref(id)
		for _, p := range []struct {
			name         string
			allow        bool
			account, api string
		}{
			{"API Gateway for its authorizer " + id, true, standInAccount, apiID},
			{"API Gateway for another API's authorizer", false, standInAccount, otherRestAPI},
			{"API Gateway for another account's authorizer", false, otherAccount, apiID},
		} {
			if err := invoke(p.name, p.allow, fn, p.account, execute(p.account, p.api, "authorizers/"+authorizerID)); err != nil {
				return out, err
			}
		}
	}
	return out, nil
}

// serviceInvokes is the path of service invoking the function fn for source, a resource of
// account, evaluated with the function's resource policy.
func (r resolver) serviceInvokes(service, name string, allow bool, fn, account, source string) (awsPath, error) {
	fnPolicy, err := r.functionPolicy(fn)
	fnARN, _ := r.getAtt(fn, "Arn")
	return awsPath{name + ": lambda:InvokeFunction on " + fn, allow,
		simulation(service, "lambda:InvokeFunction", fnARN, onBehalfOf(account, source), nil, fnPolicy)}, err
}

// schedulePaths: EventBridge invokes each job's function for its own schedule only, and no
// other function.
func schedulePaths(r resolver) ([]awsPath, error) {
	var out []awsPath
	type schedule struct{ rule, fn string }
	var schedules []schedule
	targeted := map[string]bool{}
	for _, rule := range r.ofType("AWS::Events::Rule") {
		for _, target := range list1(r.props(rule)["Targets"]) {
			target, _ := target.(map[string]any)
			if fn := r.functionIn(target["Arn"]); fn != "" {
				schedules = append(schedules, schedule{rule, fn})
				targeted[fn] = true
			}
		}
	}
	invoke := func(name string, allow bool, fn, account, rule string) error {
		p, err := r.serviceInvokes("events.amazonaws.com", name, allow, fn, account, arnIn("events", account, "rule/"+rule))
		if err == nil {
			out = append(out, p)
		}
		return err
	}
	for i, sc := range schedules {
		other := schedules[(i+1)%len(schedules)]
		for _, p := range []struct {
			name          string
			allow         bool
			account, rule string
		}{
			{"EventBridge for the schedule " + sc.rule, true, standInAccount, sc.rule},
			{"EventBridge for another account's rule of that name", false, otherAccount, sc.rule},
			{"EventBridge for the schedule " + other.rule, other.fn == sc.fn, standInAccount, other.rule},
		} {
			if err := invoke(p.name, p.allow, sc.fn, p.account, p.rule); err != nil {
				return out, err
			}
		}
	}
	for _, fn := range r.ofType("AWS::Lambda::Function") {
		if !targeted[fn] && len(schedules) > 0 {
			if err := invoke("EventBridge for the schedule "+schedules[0].rule, false, fn, standInAccount, schedules[0].rule); err != nil {
				return out, err
			}
		}
	}
	return out, nil
}

// trustPaths: Lambda, and no other service, assumes each function's role.
func trustPaths(r resolver) ([]awsPath, error) {
	var out []awsPath
	for _, fn := range r.ofType("AWS::Lambda::Function") {
		role := refTarget(r.props(fn)["Role"])
		if r.typeOf(role) != "AWS::IAM::Role" {
			return out, fmt.Errorf("function %s: its role is no role of the stack", fn)
		}
		trust, err := r.resolveDeep(r.props(role)["AssumeRolePolicyDocument"])
		if err != nil {
			return out, err
		}
		roleARN, _ := r.getAtt(role, "Arn")
		for _, p := range []struct {
			service string
			allow   bool
		}{{"lambda.amazonaws.com", true}, {"events.amazonaws.com", false}} {
			out = append(out, awsPath{p.service + ": sts:AssumeRole on the role of " + fn, p.allow,
				simulation(p.service, "sts:AssumeRole", roleARN, map[string]any{}, nil, trust.(policy))})
		}
	}
	return out, nil
}

// call is one request a function's code makes, or must never be able to make.
type call struct{ action, resource string }

// rolePaths: each function's role allows exactly the calls its code makes (the route and
// job tables say which; TestTemplateRunsEveryFunction holds them to the calls the real
// bootstraps make) and none it must not: other secrets, other tables, table deletion,
// other functions, the alarm topic and key, API Gateway's management for all but
// usage-plans.
func (s synthesized) rolePaths(r resolver) ([]awsPath, error) {
	var out []awsPath
	for _, folder := range sortedIDs(s.functions) {
		fn := s.functions[folder]
		role := refTarget(r.props(fn)["Role"])
		identity, err := r.rolePolicies(role)
		if err != nil {
			return out, err
		}
		allowed, denied, err := s.calls(r, folder)
		if err != nil {
			return out, err
		}
		principal := "arn:aws:sts::" + standInAccount + ":assumed-role/" + role + "/" + fn
		for _, c := range append(allowed, denied...) {
			rp, err := r.resourcePolicyOf(c.resource)
			if err != nil {
				return out, err
			}
			must := slices.Contains(allowed, c)
			out = append(out, awsPath{fmt.Sprintf("the role of %s: %s on %s", folder, c.action, c.resource), must,
				simulation(principal, c.action, c.resource, map[string]any{}, identity, rp)})
		}
	}
	return out, nil
}

// calls are what folder's code calls and what it must never be able to call.
func (s synthesized) calls(r resolver, folder string) (allowed, denied []call, err error) {
	tables := r.ofType("AWS::DynamoDB::Table")
	topics := r.ofType("AWS::SNS::Topic")
	apis := r.ofType("AWS::ApiGateway::RestApi")
	if len(tables) != 1 || len(topics) != 1 || len(apis) != 1 {
		return nil, nil, fmt.Errorf("%s: want one table, topic and REST API, have %v %v %v", s.name, tables, topics, apis)
	}
	table := tableARN(r.tableName(tables[0]), "")
	access, starts, secrets := NoTable, "", []string{}
	route, isRoute := api.RouteByName(folder)
	job, isJob := jobs.Named(folder)
	switch {
	case isRoute:
		access, starts = routeAccess(route), route.Starts
	case isJob:
		access = WriteTable
		if job.UsesCSP {
			secrets = append(secrets, "csp")
		}
		if job.UsesNIOSXaaS && s.cfg.NIOSXaaSEnabled {
			secrets = append(secrets, "niosxaas")
		}
		if job.UsesAPIGateway {
			secrets = append(secrets, "tokens")
		}
	case folder == api.AuthorizerFunction:
		secrets = append(secrets, "tokens")
	default:
		return nil, nil, fmt.Errorf("functions/%s is neither a route, a job nor the authorizer", folder)
	}
	on := func(resource string, actions ...string) []call {
		var out []call
		for _, a := range actions {
			out = append(out, call{a, resource})
		}
		return out
	}
	// Logs and traces, which the Lambda service sends with the role.
	logGroup := r.logGroupOf(s.functions[folder])
	stream := func(group string) string {
		return arnIn("logs", standInAccount, "log-group:"+group+":log-stream:2026/12/06/[$LATEST]0123")
	}
	allowed = append(allowed, on(stream(logGroup), "logs:CreateLogStream", "logs:PutLogEvents")...)
	allowed = append(allowed, on("*", "xray:PutTraceSegments", "xray:PutTelemetryRecords")...)
	for _, other := range sortedIDs(s.functions) {
		if other != folder {
			denied = append(denied, on(stream(r.logGroupOf(s.functions[other])), "logs:PutLogEvents")...)
			break
		}
	}
	// The table, as the route or job table says.
	writes := []string{"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"}
	switch access {
	case NoTable:
		denied = append(denied, on(table, append(slices.Clone(pool.ReadActions), pool.PingActions...)...)...)
	case PingTable:
		allowed = append(allowed, on(table, pool.PingActions...)...)
		denied = append(denied, on(table, append(slices.Clone(pool.ReadActions), writes...)...)...)
	case ReadTable, WriteTable:
		allowed = append(allowed, on(table, pool.ReadActions...)...)
		for _, ix := range pool.Schema.Indexes {
			allowed = append(allowed, on(tableARN(r.tableName(tables[0]), ix.Name), "dynamodb:Query")...)
		}
		if access == WriteTable {
			allowed = append(allowed, on(table, writes...)...)
		} else {
			denied = append(denied, on(table, writes...)...)
		}
	}
	denied = append(denied, on(table, "dynamodb:DeleteTable", "dynamodb:UpdateTable")...)
	denied = append(denied, on(tableARN("AnotherTable", ""), "dynamodb:GetItem", "dynamodb:PutItem")...)
	// Secrets: its own, read only; no other.
	for _, name := range sortedIDs(s.secrets) {
		arn := secretARN(s.secrets[name])
		if slices.Contains(secrets, name) {
			allowed = append(allowed, on(arn, "secretsmanager:GetSecretValue")...)
		} else {
			denied = append(denied, on(arn, "secretsmanager:GetSecretValue")...)
		}
		denied = append(denied, on(arn, "secretsmanager:PutSecretValue")...)
	}
	denied = append(denied, on(secretARN("AnotherSecret"), "secretsmanager:GetSecretValue")...)
	// Functions: only the job a trigger route starts.
	for _, other := range sortedIDs(s.functions) {
		_, otherIsJob := jobs.Named(other)
		arn := lambdaARN(s.functions[other])
		switch {
		case other == starts:
			allowed = append(allowed, on(arn, "lambda:InvokeFunction")...)
		case otherIsJob || other == api.AuthorizerFunction || other == folder:
			denied = append(denied, on(arn, "lambda:InvokeFunction")...)
		}
	}
	// The alarm topic and its key are CloudWatch's.
	topicARN, _ := r.ref(topics[0])
	denied = append(denied, on(topicARN, "sns:Publish")...)
	if keyARN, _, err := r.topicKey(topics[0]); err == nil && keyARN != "" {
		denied = append(denied, on(keyARN, "kms:Decrypt", "kms:GenerateDataKey")...)
	}
	// API Gateway's management API: the usage-plans job's calls (usageplans.Reconcile's,
	// as API Gateway's REST paths), on keys and plans only.
	restAPI, _ := r.ref(apis[0])
	apigw := func(path string) string { return "arn:aws:apigateway:" + standInRegion + "::" + path }
	if isJob && job.UsesAPIGateway {
		for action, paths := range map[string][]string{
			"apigateway:GET":    {"/restapis/" + restAPI + "/stages/" + stageName, "/apikeys", "/usageplans", "/usageplans/up1/keys"},
			"apigateway:POST":   {"/apikeys", "/usageplans", "/usageplans/up1/keys"},
			"apigateway:PATCH":  {"/usageplans/up1"},
			"apigateway:DELETE": {"/apikeys/k1", "/usageplans/up1", "/usageplans/up1/keys/k1"},
		} {
			for _, path := range paths {
				allowed = append(allowed, on(apigw(path), action)...)
			}
		}
		denied = append(denied, on(apigw("/restapis/"+restAPI), "apigateway:DELETE")...)
		denied = append(denied, on(apigw("/restapis/"+restAPI+"/stages/"+stageName), "apigateway:PATCH")...)
	} else {
		denied = append(denied, on(apigw("/apikeys"), "apigateway:GET", "apigateway:POST")...)
	}
	return allowed, denied, nil
}

// logGroupOf is the log group a function logs to (its LoggingConfig).
func (r resolver) logGroupOf(fn string) string {
	logging, _ := r.props(fn)["LoggingConfig"].(map[string]any)
	return refTarget(logging["LogGroup"])
}

type simulated struct {
	Result string
	Errors any
}

// simulatedBefore remembers each simulation's answer by its request: the simulator is a pure
// function of it, so a planted defect's check asks only about the paths the defect changed.
var (
	simulatedMu     sync.Mutex
	simulatedBefore = map[string]simulated{}
)

// evaluatePaths asks the simulator for every path at once and reports each path whose
// answer is not the one it must be.
func evaluatePaths(paths []awsPath) (*templateCheck, error) {
	c := newCheck()
	simulatedMu.Lock()
	defer simulatedMu.Unlock()
	keys := make([]string, len(paths))
	var asked []map[string]any
	var askedKeys []string
	seen := map[string]bool{}
	for i, p := range paths {
		keys[i] = js(p.sim)
		if _, ok := simulatedBefore[keys[i]]; !ok && !seen[keys[i]] {
			seen[keys[i]] = true
			asked, askedKeys = append(asked, p.sim), append(askedKeys, keys[i])
		}
	}
	if len(asked) > 0 {
		var answer struct{ Results []simulated }
		if err := askOracle(map[string]any{"op": "simulate", "simulations": asked}, &answer); err != nil {
			return nil, err
		}
		if len(answer.Results) != len(asked) {
			return nil, fmt.Errorf("the simulator answered %d of %d paths", len(answer.Results), len(asked))
		}
		for i, k := range askedKeys {
			simulatedBefore[k] = answer.Results[i]
		}
	}
	for i, p := range paths {
		res := simulatedBefore[keys[i]]
		want := map[bool]string{true: "Allowed", false: "denied"}[p.allow]
		switch {
		case res.Errors != nil:
			c.fail("%s: the simulator refuses the request: %s", p.name, js(res.Errors))
		case (res.Result == "Allowed") != p.allow:
			c.fail("%s: AWS answers %s, want %s", p.name, res.Result, want)
		default:
			c.counts["paths "+strings.ToLower(want)]++
		}
	}
	return c, nil
}
