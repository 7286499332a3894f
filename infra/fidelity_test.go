package main

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
)

// The template evaluated as AWS evaluates it (docs/architecture.md, "Where the local stack
// and AWS still differ"): each test runs one check over both synthesized stacks (stacks,
// from TestMain) and reports every finding in one message;
// TestEveryFidelityCheckCatchesItsPlantedDefect proves each check able to fail.

// stacks are the two synthesized stacks: every option on (Test), and the defaults (Plain).
var stacks []synthesized

func logCounts(t *testing.T, stack string, c *templateCheck) {
	t.Helper()
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(c.counts)) {
		parts = append(parts, fmt.Sprintf("%d %s", c.counts[k], k))
	}
	t.Logf("%s: checked %s", stack, strings.Join(parts, ", "))
}

// TestTemplateMatchesTheRegistrySchemas: every resource type, property and value is what the
// CloudFormation registry schemas define, and every Ref, Fn::GetAtt, Fn::Sub variable and
// DependsOn names something the template defines, with an attribute its type has.
func TestTemplateMatchesTheRegistrySchemas(t *testing.T) {
	for _, s := range stacks {
		schemas, err := loadSchemas(s.tmpl)
		if err != nil {
			t.Fatal(err)
		}
		c := checkSchemas(s.tmpl, schemas)
		c.report(t, s.name)
		logCounts(t, s.name, c)
	}
}

// TestEveryIAMActionIsInTheServiceReference: every action of every policy (identity, trust,
// key, topic, Lambda permission) is an action of AWS's service authorization reference, can
// act on a resource its statement names, and is conditioned only on keys that apply to it.
func TestEveryIAMActionIsInTheServiceReference(t *testing.T) {
	for _, s := range stacks {
		c, err := checkActions(s.tmpl)
		if err != nil {
			t.Fatal(err)
		}
		c.report(t, s.name)
		logCounts(t, s.name, c)
	}
}

// TestTemplateFitsTheQuotasOfAFirstDeploy: Lambda's environment and policy sizes, IAM's
// policy sizes, the key and topic policies, API Gateway's resources per API, CloudFormation's
// template limits, and the reserved concurrency against the account quota the operator
// stated.
func TestTemplateFitsTheQuotasOfAFirstDeploy(t *testing.T) {
	for _, s := range stacks {
		c := checkQuotas(s)
		c.report(t, s.name)
		logCounts(t, s.name, c)
	}
}

// TestCrossServicePathsEvaluateAsInAWS: every path between the stack's services, evaluated
// by the IAM policy simulator with the services' own rules modelled (policymodel_test.go):
// CloudWatch → the alarm topic and its key (each alarm, the events' dead-letter alarm among
// them), API Gateway → each route's function and the authorizer, EventBridge → each job,
// EventBridge → the alarm topic for the sample deletion_failed rule only, anyone → the
// dead-letter queue over TLS only, Lambda → each role, each role → what its code calls
// (publish-events and the replay route: the bus, the queue and the stream, each its part).
// Both ways: each path that must be allowed is, each that must be denied is.
func TestCrossServicePathsEvaluateAsInAWS(t *testing.T) {
	for _, s := range stacks {
		paths, problems := s.paths()
		c, err := evaluatePaths(paths)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range problems {
			c.fail("the model cannot read the template: %s", p)
		}
		c.report(t, s.name)
		logCounts(t, s.name, c)
	}
}

// TestCloudWatchAlarmsCanPublish: every alarm's notification reaches its topic, as AWS
// evaluates it: the topic policy (which replaced SNS's default policy) allows CloudWatch to
// publish for this account's alarms, the key policy lets CloudWatch use the topic's key, and
// another account's alarm, or a publisher without TLS, is refused.
func TestCloudWatchAlarmsCanPublish(t *testing.T) {
	for _, s := range stacks {
		paths, err := alarmPaths(resolver{resources: s.tmpl["Resources"].(map[string]any)})
		if err != nil {
			t.Fatal(err)
		}
		if alarms := len(resources("AWS::CloudWatch::Alarm")); s.name == "Test" && len(paths) < alarms {
			t.Fatalf("%d paths for %d alarms", len(paths), alarms)
		}
		c, err := evaluatePaths(paths)
		if err != nil {
			t.Fatal(err)
		}
		c.report(t, s.name)
		logCounts(t, s.name, c)
	}
}
