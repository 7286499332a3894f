package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode"
)

// The quotas a first deploy of the template can hit, as each service documents them. Names
// CloudFormation generates are measured at the longest their type allows (resolver.longest).
const (
	lambdaEnvironmentBytes = 4 * 1024  // Lambda: all environment variables of a function, keys and values
	lambdaPolicyBytes      = 20 * 1024 // Lambda: a function's resource-based policy
	roleInlinePolicyChars  = 10_240    // IAM: a role's inline policies together, whitespace not counted
	roleTrustPolicyChars   = 2_048     // IAM: a role trust policy (the default quota)
	keyPolicyBytes         = 32 * 1024 // KMS: a key policy
	topicPolicyBytes       = 30 * 1024 // SNS: a topic policy
	apiResourcesPerAPI     = 300       // API Gateway: resources per REST API, the root included
	templateResourcesMax   = 500       // CloudFormation: resources in a template
	templateOutputsMax     = 200       // CloudFormation: outputs in a template
	templateBodyBytes      = 1 << 20   // CloudFormation: a template body uploaded to S3 (as cdk deploy does)
)

func checkQuotas(s synthesized) *templateCheck {
	c := newCheck()
	tpl := s.tmpl
	res := templateResources(tpl)
	r := resolver{resources: tpl["Resources"].(map[string]any), longest: true}
	size := func(at string, v any) int {
		resolved, err := r.resolveDeep(v)
		if err != nil {
			c.fail("%s: %v", at, err)
		}
		raw, _ := json.Marshal(resolved)
		return len(raw)
	}
	limit := func(what string, got, max int) {
		c.counts["quotas"]++
		if got > max {
			c.fail("%s: %d, over the quota of %d", what, got, max)
		}
	}
	limit("template resources", len(res), templateResourcesMax)
	outputs, _ := tpl["Outputs"].(map[string]any)
	limit("template outputs", len(outputs), templateOutputsMax)
	raw, _ := json.Marshal(tpl)
	limit("template bytes", len(raw), templateBodyBytes)

	reserved := 0
	for _, fn := range r.ofType("AWS::Lambda::Function") {
		props := r.props(fn)
		env, _ := props["Environment"].(map[string]any)
		vars, _ := env["Variables"].(map[string]any)
		bytes := 0
		for k, v := range vars {
			value, err := r.value(v)
			if err != nil {
				c.fail("%s: variable %s: %v", fn, k, err)
			}
			bytes += len(k) + len(value)
		}
		limit(fn+" environment bytes", bytes, lambdaEnvironmentBytes)
		if p, err := r.functionPolicy(fn); err != nil {
			c.fail("%s: %v", fn, err)
		} else if p != nil {
			limit(fn+" resource policy bytes", size(fn, p), lambdaPolicyBytes)
		}
		if n, ok := props["ReservedConcurrentExecutions"].(float64); ok {
			reserved += int(n)
		}
	}
	c.counts["quotas"]++
	if unreserved := s.cfg.AccountConcurrency - reserved; reserved > 0 && unreserved < lambdaMinUnreserved {
		c.fail("reserved concurrency: the functions reserve %d of the stated account quota of %d, leaving %d unreserved; Lambda refuses a reservation that leaves fewer than %d",
			reserved, s.cfg.AccountConcurrency, unreserved, lambdaMinUnreserved)
	}
	for _, role := range r.ofType("AWS::IAM::Role") {
		// json.Marshal writes no whitespace of its own: its length is IAM's count.
		limit(role+" trust policy characters", size(role, r.props(role)["AssumeRolePolicyDocument"]), roleTrustPolicyChars)
		policies, err := r.rolePolicies(role)
		if err != nil && !strings.Contains(err.Error(), "managed policies") {
			c.fail("%v", err)
		}
		chars := 0
		for _, p := range policies {
			b, _ := json.Marshal(p["policy"])
			chars += countNonSpace(string(b))
		}
		limit(role+" inline policy characters", chars, roleInlinePolicyChars)
	}
	for _, key := range r.ofType("AWS::KMS::Key") {
		limit(key+" key policy bytes", size(key, r.props(key)["KeyPolicy"]), keyPolicyBytes)
	}
	for _, p := range r.ofType("AWS::SNS::TopicPolicy") {
		limit(p+" topic policy bytes", size(p, r.props(p)["PolicyDocument"]), topicPolicyBytes)
	}
	perAPI := map[string]int{}
	for _, id := range r.ofType("AWS::ApiGateway::RestApi") {
		perAPI[id] = 1 // the root resource
	}
	for _, id := range r.ofType("AWS::ApiGateway::Resource") {
		perAPI[refTarget(r.props(id)["RestApiId"])]++
	}
	for id, n := range perAPI {
		limit(fmt.Sprintf("REST API %s resources", id), n, apiResourcesPerAPI)
	}
	return c
}

func countNonSpace(s string) int {
	n := 0
	for _, r := range s {
		if !unicode.IsSpace(r) {
			n++
		}
	}
	return n
}
