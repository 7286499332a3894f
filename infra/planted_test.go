package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/sandbox-broker/broker/pkg/api"
)

// A planted defect per rule of the fidelity checks: each changes a copy of the synthesized
// template in memory as a mistake in the stack would, and the check must report it.

type plantedDefect struct {
	name   string
	check  func(synthesized) (*templateCheck, error)
	plant  func(p planting)
	report string // a finding of the check contains this
}

// planting is a copy of the Test stack's template being given a defect.
type planting struct {
	s   synthesized
	tpl map[string]any
}

func (p planting) resource(id string) map[string]any {
	return p.tpl["Resources"].(map[string]any)[id].(map[string]any)
}
func (p planting) props(id string) map[string]any {
	return p.resource(id)["Properties"].(map[string]any)
}

// function is the logical id of a function by its folder.
func (p planting) function(folder string) string { return p.s.functions[folder] }

// ofType is the logical ids of a type, sorted.
func (p planting) ofType(typ string) []string {
	return resolver{resources: p.tpl["Resources"].(map[string]any)}.ofType(typ)
}

// policyOf is the PolicyDocument of the AWS::IAM::Policy of a function's role.
func (p planting) policyOf(folder string) map[string]any {
	role := refTarget(p.props(p.function(folder))["Role"])
	for _, id := range p.ofType("AWS::IAM::Policy") {
		for _, r := range list1(p.props(id)["Roles"]) {
			if refTarget(r) == role {
				return p.props(id)["PolicyDocument"].(map[string]any)
			}
		}
	}
	panic("no policy for " + folder)
}

func (p planting) addStatement(folder string, st map[string]any) {
	doc := p.policyOf(folder)
	doc["Statement"] = append(doc["Statement"].([]any), st)
}

// statements are the statements of a policy document.
func statementsOf(doc map[string]any) []any { return doc["Statement"].([]any) }

// permissionsOf are the Lambda permissions of a function, by the principal they name.
func (p planting) permissionsOf(folder, principal string) []string {
	var out []string
	for _, id := range p.ofType("AWS::Lambda::Permission") {
		props := p.props(id)
		if refTarget(props["FunctionName"]) == p.function(folder) && props["Principal"] == principal {
			out = append(out, id)
		}
	}
	return out
}

func (p planting) remove(ids ...string) {
	for _, id := range ids {
		delete(p.tpl["Resources"].(map[string]any), id)
	}
}

func (p planting) topicPolicy() map[string]any {
	return p.props(p.ofType("AWS::SNS::TopicPolicy")[0])["PolicyDocument"].(map[string]any)
}

// dropStatements removes the statements of doc for which drop is true.
func dropStatements(doc map[string]any, drop func(st map[string]any) bool) {
	var kept []any
	for _, st := range statementsOf(doc) {
		if !drop(st.(map[string]any)) {
			kept = append(kept, st)
		}
	}
	doc["Statement"] = kept
}

func fromEventBridge(st map[string]any) bool {
	return strings.Contains(js(st["Principal"]), "events.amazonaws.com")
}

func fromCloudWatch(st map[string]any) bool {
	return js(st["Principal"]) == `{"Service":"cloudwatch.amazonaws.com"}`
}

func schemasCheck(s synthesized) (*templateCheck, error) {
	schemas, err := loadSchemas(s.tmpl)
	if err != nil {
		return nil, err
	}
	return checkSchemas(s.tmpl, schemas), nil
}

func actionsCheck(s synthesized) (*templateCheck, error) { return checkActions(s.tmpl) }
func quotasCheck(s synthesized) (*templateCheck, error)  { return checkQuotas(s), nil }

func pathsCheck(s synthesized) (*templateCheck, error) {
	paths, problems := s.paths()
	c, err := evaluatePaths(paths)
	if err != nil {
		return nil, err
	}
	for _, p := range problems {
		c.fail("the model cannot read the template: %s", p)
	}
	return c, nil
}

var plantedDefects = []plantedDefect{
	// The registry schemas.
	{"a resource type CloudFormation does not have", schemasCheck, func(p planting) {
		p.resource(p.ofType("AWS::SNS::Topic")[0])["Type"] = "AWS::SNS::Topics"
	}, `"AWS::SNS::Topics" is not a CloudFormation resource type`},
	{"a property the type does not have", schemasCheck, func(p planting) { p.props(p.function("allocate"))["Timeoutt"] = 15 }, "unknown property Timeoutt"},
	{"a nested property the type definition does not have", schemasCheck, func(p planting) {
		env := p.props(p.function("allocate"))["Environment"].(map[string]any)
		env["Variabels"] = env["Variables"]
	}, "Environment: unknown property Variabels"},
	{"a value of the wrong type", schemasCheck, func(p planting) { p.props(p.function("allocate"))["MemorySize"] = "lots" }, `MemorySize: "lots" is not of type integer`},
	{"a value the schema does not allow", schemasCheck, func(p planting) {
		p.props(p.function("allocate"))["TracingConfig"] = map[string]any{"Mode": "Always"}
	}, `TracingConfig.Mode: "Always" is none of`},
	{"a required property missing", schemasCheck, func(p planting) { delete(p.props(p.function("allocate")), "Role") }, "required property Role is missing"},
	{"a Ref to nothing", schemasCheck, func(p planting) {
		p.props(p.function("allocate"))["Environment"].(map[string]any)["Variables"].(map[string]any)["TABLE_NAME"] = map[string]any{"Ref": "PoolGone"}
	}, "Ref PoolGone names nothing"},
	{"a Fn::GetAtt of an attribute the type does not have", schemasCheck, func(p planting) {
		p.props(p.function("allocate"))["Role"] = map[string]any{"Fn::GetAtt": []any{refTarget(p.props(p.function("allocate"))["Role"]), "Arnn"}}
	}, "has no attribute Arnn"},
	{"a DependsOn of nothing", schemasCheck, func(p planting) { p.resource(p.function("allocate"))["DependsOn"] = []any{"Nothing"} }, "DependsOn Nothing"},

	// The service authorization reference.
	{"an action AWS does not have", actionsCheck, func(p planting) {
		p.addStatement("allocate", map[string]any{"Effect": "Allow", "Action": "dynamodb:GetItems", "Resource": "*"})
	}, "dynamodb:GetItems is no action"},
	{"an action on a resource it cannot act on", actionsCheck, func(p planting) {
		p.addStatement("allocate", map[string]any{"Effect": "Allow", "Action": "sns:Publish", "Resource": map[string]any{"Fn::GetAtt": []any{p.ofType("AWS::DynamoDB::Table")[0], "Arn"}}})
	}, "sns:Publish cannot act on"},
	{"a condition key that applies to none of the actions", actionsCheck, func(p planting) {
		p.addStatement("allocate", map[string]any{"Effect": "Allow", "Action": "dynamodb:Query", "Resource": "*",
			"Condition": map[string]any{"StringEquals": map[string]any{"s3:prefix": "x"}}})
	}, "condition key s3:prefix applies to none"},

	// The quotas of a first deploy.
	{"an environment over 4 KB", quotasCheck, func(p planting) {
		p.props(p.function("allocate"))["Environment"].(map[string]any)["Variables"].(map[string]any)["BIG"] = strings.Repeat("x", 4096)
	}, "environment bytes"},
	{"inline policies over IAM's 10 240 characters", quotasCheck, func(p planting) {
		var arns []any
		for i := range 300 {
			arns = append(arns, fmt.Sprintf("arn:aws:dynamodb:us-east-1:123456789012:table/t%d", i))
		}
		p.addStatement("allocate", map[string]any{"Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": arns})
	}, "inline policy characters"},
	{"more than 300 resources in the REST API", quotasCheck, func(p planting) {
		first := p.resource(p.ofType("AWS::ApiGateway::Resource")[0])
		for i := range apiResourcesPerAPI {
			p.tpl["Resources"].(map[string]any)[fmt.Sprintf("Extra%d", i)] = first
		}
	}, "resources: 3"},
	{"reservations that leave fewer than 100 unreserved", quotasCheck, func(p planting) {
		p.props(p.function("allocate"))["ReservedConcurrentExecutions"] = float64(p.s.cfg.AccountConcurrency - 100)
	}, "reserved concurrency"},
	{"more than 500 resources in the template", quotasCheck, func(p planting) {
		for i := range templateResourcesMax {
			p.tpl["Resources"].(map[string]any)[fmt.Sprintf("Extra%d", i)] = map[string]any{"Type": "AWS::Logs::LogGroup"}
		}
	}, "template resources"},

	// The paths, evaluated.
	{"the topic policy without CloudWatch's Allow (the template before this fix)", pathsCheck, func(p planting) {
		dropStatements(p.topicPolicy(), fromCloudWatch)
	}, ": sns:Publish on the topic %topic%: AWS answers ImplicitlyDenied, want Allowed"},
	{"the topic open to every account's alarms", pathsCheck, func(p planting) {
		for _, st := range statementsOf(p.topicPolicy()) {
			if fromCloudWatch(st.(map[string]any)) {
				delete(st.(map[string]any), "Condition")
			}
		}
	}, "CloudWatch for another account's alarm of that name: sns:Publish on the topic %topic%: AWS answers Allowed, want denied"},
	{"the TLS-only Deny dropped", pathsCheck, func(p planting) {
		dropStatements(p.topicPolicy(), func(st map[string]any) bool { return st["Effect"] == "Deny" })
	}, "without TLS: sns:Publish on the topic %topic%: AWS answers Allowed, want denied"},
	{"no topic policy: SNS's default policy", pathsCheck, func(p planting) { p.remove(p.ofType("AWS::SNS::TopicPolicy")...) },
		"CloudWatch claiming this account for another account's alarm of that name: sns:Publish on the topic %topic%: AWS answers Allowed"},
	{"the key policy without CloudWatch", pathsCheck, func(p planting) {
		dropStatements(p.props(p.ofType("AWS::KMS::Key")[0])["KeyPolicy"].(map[string]any), fromCloudWatch)
	}, ": kms:GenerateDataKey on the topic's key: AWS answers ImplicitlyDenied, want Allowed"},
	{"the topic on the AWS-managed alias/aws/sns key", pathsCheck, func(p planting) {
		p.props(p.ofType("AWS::SNS::Topic")[0])["KmsMasterKeyId"] = "alias/aws/sns"
	}, ": kms:Decrypt on the topic's key: AWS answers ImplicitlyDenied, want Allowed"},
	{"a route's permission for any API", pathsCheck, func(p planting) {
		for _, id := range p.permissionsOf("allocate", "apigateway.amazonaws.com") {
			p.props(id)["SourceArn"] = "arn:aws:execute-api:*:*:*"
		}
	}, "API Gateway for another API's POST /v1/allocate: lambda:InvokeFunction on %allocate%: AWS answers Allowed"},
	{"a route's permission removed", pathsCheck, func(p planting) { p.remove(p.permissionsOf("allocate", "apigateway.amazonaws.com")...) },
		"API Gateway for POST /v1/allocate: lambda:InvokeFunction on %allocate%: AWS answers ImplicitlyDenied, want Allowed"},
	{"the authorizer's permission for every API's authorizers", pathsCheck, func(p planting) {
		for _, id := range p.permissionsOf("authorizer", "apigateway.amazonaws.com") {
			p.props(id)["SourceArn"] = map[string]any{"Fn::Sub": "arn:aws:execute-api:${AWS::Region}:${AWS::AccountId}:*/authorizers/*"}
		}
	}, "API Gateway for another API's authorizer: lambda:InvokeFunction on %authorizer%: AWS answers Allowed"},
	{"a schedule's permission removed", pathsCheck, func(p planting) { p.remove(p.permissionsOf("sync", "events.amazonaws.com")...) },
		": lambda:InvokeFunction on %sync%: AWS answers ImplicitlyDenied, want Allowed"},
	{"a schedule's permission for any rule", pathsCheck, func(p planting) {
		for _, id := range p.permissionsOf("sync", "events.amazonaws.com") {
			delete(p.props(id), "SourceArn")
		}
	}, "EventBridge for another account's rule of that name: lambda:InvokeFunction on %sync%: AWS answers Allowed"},
	{"a role that EventBridge may assume", pathsCheck, func(p planting) {
		trust := p.props(refTarget(p.props(p.function("allocate"))["Role"]))["AssumeRolePolicyDocument"].(map[string]any)
		statementsOf(trust)[0].(map[string]any)["Principal"] = map[string]any{"Service": []any{"lambda.amazonaws.com", "events.amazonaws.com"}}
	}, "events.amazonaws.com: sts:AssumeRole on the role of %allocate%: AWS answers Allowed"},
	{"a role that may delete the table", pathsCheck, func(p planting) {
		p.addStatement("allocate", map[string]any{"Effect": "Allow", "Action": "dynamodb:*", "Resource": "*"})
	}, "the role of allocate: dynamodb:DeleteTable on"},
	{"a route that may read the CSP token", pathsCheck, func(p planting) {
		p.addStatement("allocate", map[string]any{"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": map[string]any{"Ref": p.s.secrets["csp"]}})
	}, "the role of allocate: secretsmanager:GetSecretValue on %csp%: AWS answers Allowed"},
	{"a route that may invoke every function", pathsCheck, func(p planting) {
		p.addStatement("allocate", map[string]any{"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": "*"})
	}, "the role of allocate: lambda:InvokeFunction on arn:aws:lambda:us-east-1:123456789012:function:%sync%: AWS answers Allowed"},
	{"a grant the code needs missing", pathsCheck, func(p planting) {
		dropStatements(p.policyOf("allocate"), func(st map[string]any) bool { return strings.Contains(js(st["Action"]), "dynamodb:PutItem") })
	}, "the role of allocate: dynamodb:PutItem on"},
	{"the alarm topic open to every rule's events", pathsCheck, func(p planting) {
		for _, st := range statementsOf(p.topicPolicy()) {
			if fromEventBridge(st.(map[string]any)) {
				delete(st.(map[string]any), "Condition")
			}
		}
	}, "EventBridge for another rule on the stack's bus: sns:Publish on the topic %topic%: AWS answers Allowed, want denied"},
	{"the key policy without the sample rule's EventBridge", pathsCheck, func(p planting) {
		dropStatements(p.props(p.ofType("AWS::KMS::Key")[0])["KeyPolicy"].(map[string]any), fromEventBridge)
	}, "EventBridge for the rule DeletionFailedToAlarms: kms:GenerateDataKey on the topic's key: AWS answers ImplicitlyDenied, want Allowed"},
	{"publish-events without its dead-letter grant", pathsCheck, func(p planting) {
		dropStatements(p.policyOf(api.EventConsumerFunction), func(st map[string]any) bool { return strings.Contains(js(st["Action"]), "sqs:SendMessage") })
	}, "the role of publish-events: sqs:SendMessage on arn:aws:sqs:"},
	{"a route that may put events on any bus", pathsCheck, func(p planting) {
		p.addStatement("allocate", map[string]any{"Effect": "Allow", "Action": "events:PutEvents", "Resource": "*"})
	}, "the role of allocate: events:PutEvents on arn:aws:events:us-east-1:123456789012:event-bus/"},
	{"the dead-letter queue without its TLS-only Deny", pathsCheck, func(p planting) { p.remove(p.ofType("AWS::SQS::QueuePolicy")...) },
		"TLS false: sqs:SendMessage on the queue"},
	{"a permission field the model does not know", pathsCheck, func(p planting) {
		p.props(p.permissionsOf("sync", "events.amazonaws.com")[0])["EventSourceToken"] = "x"
	}, "does not know the permission field EventSourceToken"},
}

// TestEveryFidelityCheckCatchesItsPlantedDefect: the checks of fidelity_test.go find nothing
// in the stacks, and each one reports the defect planted for each of its rules.
func TestEveryFidelityCheckCatchesItsPlantedDefect(t *testing.T) {
	for _, d := range plantedDefects {
		t.Run(d.name, func(t *testing.T) {
			p := planting{s: stacks[0], tpl: copyTemplate(stacks[0].tmpl)}
			topic := p.ofType("AWS::SNS::Topic")[0]
			d.plant(p)
			c, err := d.check(p.s.with(p.tpl))
			if err != nil {
				t.Fatal(err)
			}
			want := d.report
			for _, folder := range []string{"allocate", "authorizer", "sync"} {
				want = strings.ReplaceAll(want, "%"+folder+"%", p.function(folder))
			}
			want = strings.ReplaceAll(want, "%csp%", secretARN(p.s.secrets["csp"]))
			want = strings.ReplaceAll(want, "%topic%", topic)
			for _, f := range c.findings {
				if strings.Contains(f, want) {
					t.Logf("caught: %s", f)
					return
				}
			}
			t.Errorf("no finding contains %q; the check found %d:\n  %s", want, len(c.findings), strings.Join(c.findings, "\n  "))
		})
	}
}
