package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/jsii-runtime-go"
	"github.com/sandbox-broker/broker/pkg/jobs"
)

// TestOnlyCleanupReadsTheNIOSXaaSSecret: of every IAM policy in the template, only the
// cleanup function's names the NIOSXaaS secret; cleanup gets the step's settings from the
// context values and the secret's ARN, never a credential; with the step off (the plain
// stack) no role may read the secret at all.
func TestOnlyCleanupReadsTheNIOSXaaSSecret(t *testing.T) {
	secretID := *stack.Stack.GetLogicalId(stack.NIOSXaaSSecret.Node().DefaultChild().(awscdk.CfnElement))
	var readers []string
	for folder, fn := range stack.Functions {
		roleID := *stack.Stack.GetLogicalId(fn.Role().Node().DefaultChild().(awscdk.CfnElement))
		for _, p := range resources("AWS::IAM::Policy") {
			if strings.Contains(js(p["PolicyDocument"]), `"`+secretID+`"`) && strings.Contains(js(p["Roles"]), `"`+roleID+`"`) {
				readers = append(readers, folder)
			}
		}
	}
	if len(readers) != 1 || readers[0] != "cleanup" {
		t.Fatalf("functions whose policies name the NIOSXaaS secret: %v, want [cleanup]", readers)
	}
	// No policy of any other role (or a role's inline policy) names it either.
	cleanupRole := *stack.Stack.GetLogicalId(stack.Functions["cleanup"].Role().Node().DefaultChild().(awscdk.CfnElement))
	for id, p := range resources("AWS::IAM::Policy") {
		if strings.Contains(js(p["PolicyDocument"]), `"`+secretID+`"`) && js(p["Roles"]) != `[{"Ref":"`+cleanupRole+`"}]` {
			t.Errorf("policy %s attached to %s names the NIOSXaaS secret", id, js(p["Roles"]))
		}
	}
	for id, r := range resources("AWS::IAM::Role") {
		if strings.Contains(js(r["Policies"]), `"`+secretID+`"`) {
			t.Errorf("role %s has an inline policy on the NIOSXaaS secret", id)
		}
	}

	for _, job := range jobs.Table {
		env := functionEnv(t, job.Name)
		_, has := env["NIOSXAAS_ENABLED"]
		if has != job.UsesNIOSXaaS {
			t.Errorf("%s: NIOSXAAS_ENABLED present %v, want %v", job.Name, has, job.UsesNIOSXaaS)
		}
	}
	env := functionEnv(t, "cleanup")
	want := map[string]string{"NIOSXAAS_ENABLED": "true", "NIOSXAAS_SHADOW_MODE": "false", "NIOSXAAS_BASE_URL": "https://nios.example.com", "NIOSXAAS_SERVICE_NAME": "Instrqt-SaaS"}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("cleanup %s = %v, want %q", k, env[k], v)
		}
	}
	if !strings.Contains(js(env["NIOSXAAS_CREDENTIALS_SECRET_ARN"]), secretID) {
		t.Errorf("cleanup NIOSXAAS_CREDENTIALS_SECRET_ARN = %s, want the secret's ARN", js(env["NIOSXAAS_CREDENTIALS_SECRET_ARN"]))
	}
	raw, _ := json.Marshal(tmpl)
	for _, name := range []string{"NIOSXAAS_EMAIL", "NIOSXAAS_PASSWORD"} {
		if strings.Contains(string(raw), name) {
			t.Errorf("the template holds %s", name)
		}
	}
	if props, _ := resource(secretID)["Properties"].(map[string]any); props["SecretString"] != nil {
		t.Error("the template carries the NIOSXaaS secret's value")
	}
	// The plain stack has the step off: no policy there names the secret.
	if plain := js(*noWAF.FindResources(jsii.String("AWS::IAM::Policy"), nil)); strings.Contains(plain, "NIOSXaaSCredentials") {
		t.Error("with the step off, a policy still names the NIOSXaaS secret")
	}
}

// functionEnv is the environment variables of a function, from the template.
func functionEnv(t *testing.T, folder string) map[string]any {
	t.Helper()
	id := *stack.Stack.GetLogicalId(stack.Functions[folder].Node().DefaultChild().(awscdk.CfnElement))
	props := resource(id)["Properties"].(map[string]any)
	return props["Environment"].(map[string]any)["Variables"].(map[string]any)
}
