package main

import (
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"

	eventschema "github.com/sandbox-broker/broker/api/events"
	"github.com/sandbox-broker/broker/pkg/api"
	"github.com/sandbox-broker/broker/pkg/events"
	"github.com/sandbox-broker/broker/pkg/pool"
)

// logicalID is the template id of a construct's resource.
func logicalID(c awscdk.CfnElement) string { return *stack.Stack.GetLogicalId(c) }

func only(t *testing.T, kind string) (string, map[string]any) {
	t.Helper()
	rs := resources(kind)
	if len(rs) != 1 {
		t.Fatalf("%d resources of type %s, want 1", len(rs), kind)
	}
	for id, r := range rs {
		return id, r
	}
	return "", nil
}

// TestEventsFlowFromTheStreamToTheBus: the table streams both images; one event source
// mapping hands its batches to publish-events in order, with partial failures, bisection,
// an hour's retries and the dead-letter queue as its on-failure destination; the queue is
// encrypted and TLS-only; the registry holds one schema per event type, each the one
// api/events defines.
func TestEventsFlowFromTheStreamToTheBus(t *testing.T) {
	_, table := only(t, "AWS::DynamoDB::Table")
	if spec, _ := table["StreamSpecification"].(map[string]any); spec["StreamViewType"] != pool.StreamNewAndOldImages {
		t.Errorf("table stream %v", table["StreamSpecification"])
	}
	busID, _ := only(t, "AWS::Events::EventBus")
	queueID, queue := only(t, "AWS::SQS::Queue")
	if queue["SqsManagedSseEnabled"] != true {
		t.Errorf("the dead-letter queue is not encrypted: %s", js(queue))
	}
	_, m := only(t, "AWS::Lambda::EventSourceMapping")
	consumer := logicalID(stack.Functions[api.EventConsumerFunction].Node().DefaultChild().(awscdk.CfnElement))
	want := map[string]any{
		"FunctionName": map[string]any{"Ref": consumer}, "StartingPosition": "TRIM_HORIZON", "BatchSize": 100.0,
		"BisectBatchOnFunctionError": true, "FunctionResponseTypes": []any{"ReportBatchItemFailures"},
		"MaximumRecordAgeInSeconds": 3600.0, "MaximumRetryAttempts": 10000.0,
		"DestinationConfig": map[string]any{"OnFailure": map[string]any{"Destination": map[string]any{"Fn::GetAtt": []any{queueID, "Arn"}}}},
	}
	for k, v := range want {
		if !sameJSON(m[k], v) {
			t.Errorf("event source mapping %s: %s, want %s", k, js(m[k]), js(v))
		}
	}
	if !strings.Contains(js(m["EventSourceArn"]), "StreamArn") {
		t.Errorf("the mapping reads %s, not the table's stream", js(m["EventSourceArn"]))
	}
	env := fnProps(t, api.EventConsumerFunction)["Environment"].(map[string]any)["Variables"].(map[string]any)
	if !sameJSON(env["EVENT_BUS_NAME"], map[string]any{"Ref": busID}) || !sameJSON(env["EVENTS_DLQ_URL"], map[string]any{"Ref": queueID}) {
		t.Errorf("publish-events environment %s", js(env))
	}

	types, err := eventschema.Types()
	if err != nil {
		t.Fatal(err)
	}
	schemas := resources("AWS::EventSchemas::Schema")
	if len(schemas) != len(types) || len(types) != len(events.Types) {
		t.Errorf("%d schemas registered, %d in api/events, %d event types", len(schemas), len(types), len(events.Types))
	}
	for _, s := range schemas {
		name, _ := s["SchemaName"].(string)
		ty, _ := strings.CutPrefix(name, events.Source+"@")
		content, err := eventschema.For(ty)
		if err != nil || s["Type"] != "JSONSchemaDraft4" || s["Content"] != string(content) || !slices.Contains(events.Types, events.Type(ty)) {
			t.Errorf("schema %s: type %v, %v", name, s["Type"], err)
		}
	}
}

// TestEventRolesGrantExactlyWhatTheyCall: publish-events may put events on the stack's bus,
// send to the dead-letter queue and read the stream (for its mapping), and nothing of the
// table; the replay route may put events, receive and delete dead letters and read a
// shard; no other function may do any of it.
func TestEventRolesGrantExactlyWhatTheyCall(t *testing.T) {
	busID, _ := only(t, "AWS::Events::EventBus")
	queueID, _ := only(t, "AWS::SQS::Queue")
	bus := map[string]any{"Fn::GetAtt": []any{busID, "Arn"}}
	queue := map[string]any{"Fn::GetAtt": []any{queueID, "Arn"}}
	want := map[string]map[string]string{
		api.EventConsumerFunction: {"events:PutEvents": js(bus), "sqs:SendMessage": js(queue)},
		replayRoute():             {"events:PutEvents": js(bus), "sqs:ReceiveMessage": js(queue), "sqs:DeleteMessage": js(queue)},
	}
	for _, a := range pool.StreamReadActions {
		want[api.EventConsumerFunction][a] = "stream"
	}
	want[api.EventConsumerFunction][pool.StreamListAction] = `"*"`
	want[replayRoute()]["dynamodb:GetShardIterator"], want[replayRoute()]["dynamodb:GetRecords"] = "stream", "stream"
	for folder, sts := range policyStatements(t) {
		granted := map[string]bool{}
		for _, st := range sts {
			for _, a := range actionsOf(st) {
				wantOn, ok := want[folder][a]
				switch {
				case strings.HasPrefix(a, "events:") || strings.HasPrefix(a, "sqs:") || slices.Contains(pool.StreamReadActions, a) || a == pool.StreamListAction:
					if !ok {
						t.Errorf("%s may %s", folder, a)
					} else if res := js(st["Resource"]); (wantOn == "stream" && !strings.Contains(res, "StreamArn")) || (wantOn != "stream" && res != wantOn) {
						t.Errorf("%s may %s on %s, want %s", folder, a, res, wantOn)
					}
					granted[a] = true
				case folder == api.EventConsumerFunction && strings.HasPrefix(a, "dynamodb:"):
					t.Errorf("publish-events may %s", a)
				}
			}
		}
		for a := range want[folder] {
			if !granted[a] {
				t.Errorf("%s lacks %s", folder, a)
			}
		}
	}
}

// TestDeletionFailedRuleMayPublishToTheAlarmTopicOnly: the sample rule on the stack's bus
// matches sandbox.deletion_failed and targets the alarm topic; the topic's policy and its
// key's policy let events.amazonaws.com in only for that rule's ARN.
func TestDeletionFailedRuleMayPublishToTheAlarmTopicOnly(t *testing.T) {
	busID, _ := only(t, "AWS::Events::EventBus")
	topic := logicalID(stack.AlarmTopic.Node().DefaultChild().(awscdk.CfnElement))
	var rule map[string]any
	for _, r := range resources("AWS::Events::Rule") {
		if r["EventBusName"] != nil {
			rule = r
		}
	}
	if rule == nil {
		t.Fatal("no rule on the events' bus")
	}
	if !sameJSON(rule["EventBusName"], map[string]any{"Ref": busID}) ||
		!sameJSON(rule["EventPattern"], map[string]any{"source": []any{events.Source}, "detail-type": []any{string(events.DeletionFailed)}}) ||
		len(rule["Targets"].([]any)) != 1 || !sameJSON(rule["Targets"].([]any)[0].(map[string]any)["Arn"], map[string]any{"Ref": topic}) {
		t.Errorf("rule %s", js(rule))
	}
	name := rule["Name"].(string)
	fromRule := func(st map[string]any) bool {
		p, _ := st["Principal"].(map[string]any)
		cond := js(st["Condition"])
		return p["Service"] == "events.amazonaws.com" && strings.Contains(cond, "ArnEquals") && strings.Contains(cond, "aws:SourceArn") &&
			strings.Contains(cond, "rule/") && strings.Contains(cond, name) && strings.Contains(cond, busID)
	}
	found := 0
	for _, p := range resources("AWS::SNS::TopicPolicy") {
		for _, st := range p["PolicyDocument"].(map[string]any)["Statement"].([]any) {
			st := st.(map[string]any)
			if p, _ := st["Principal"].(map[string]any); p["Service"] == "events.amazonaws.com" {
				if !fromRule(st) || st["Action"] != "sns:Publish" {
					t.Errorf("topic statement for EventBridge %s", js(st))
				}
				found++
			}
		}
	}
	for _, k := range resources("AWS::KMS::Key") {
		for _, st := range k["KeyPolicy"].(map[string]any)["Statement"].([]any) {
			st := st.(map[string]any)
			if p, _ := st["Principal"].(map[string]any); p["Service"] == "events.amazonaws.com" {
				if !fromRule(st) || !sameJSON(st["Action"], []any{"kms:Decrypt", "kms:GenerateDataKey*"}) {
					t.Errorf("key statement for EventBridge %s", js(st))
				}
				found++
			}
		}
	}
	if found != 2 {
		t.Errorf("%d statements for EventBridge, want one in the topic's policy and one in its key's", found)
	}
}
