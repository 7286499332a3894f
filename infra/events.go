package main

import (
	"fmt"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatchactions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsevents"
	"github.com/aws/aws-cdk-go/awscdk/v2/awseventschemas"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssqs"
	"github.com/aws/jsii-runtime-go"

	eventschema "github.com/sandbox-broker/broker/api/events"
	"github.com/sandbox-broker/broker/pkg/api"
	"github.com/sandbox-broker/broker/pkg/config"
	"github.com/sandbox-broker/broker/pkg/events"
	"github.com/sandbox-broker/broker/pkg/pool"
)

// Event source mapping settings of the stream's consumer (docs/events.md). A batch is one
// shard's records in order; a failure names the record to retry from; a batch the
// function fails on as a whole is halved until the failing record stands alone. Records
// are retried until they are config.EventsMaxRecordAge old (the function dead-letters an
// event in full before that, after EVENTS_DEAD_LETTER_AFTER_SECONDS); the mapping then
// sends the batch's description to the dead-letter queue, which the replay reads back
// from the stream (kept 24 hours).
const (
	eventsBatchSize     = 100
	eventsRetryAttempts = 10000 // the most Lambda allows: the record age is the bound
)

// addEvents publishes the domain events: the stack's own bus, the function that
// consumes the table's stream (its event source mapping), the dead-letter queue with its
// alarm and the replay route's access to it, the schema registry with one schema per
// event type, and the sample rule that sends sandbox.deletion_failed to the alarm topic.
func (s *BrokerStack) addEvents() {
	bus := awsevents.NewEventBus(s.Stack, jsii.String("Events"), &awsevents.EventBusProps{
		Description: jsii.String("Sandbox Broker domain events (source " + events.Source + ", detail-type per event type: docs/events.md)"),
	})
	dlq := awssqs.NewQueue(s.Stack, jsii.String("EventsDeadLetters"), &awssqs.QueueProps{
		Encryption:        awssqs.QueueEncryption_SQS_MANAGED,
		EnforceSSL:        jsii.Bool(true),
		RetentionPeriod:   awscdk.Duration_Days(jsii.Number(14)),
		VisibilityTimeout: awscdk.Duration_Minutes(jsii.Number(2)),
	})
	suppress(dlq, "AwsSolutions-SQS3", "It is the dead-letter queue of the domain events; what it holds is replayed by POST /v1/admin/events/replay.")
	streamARN := *s.Table.TableStreamArn()
	env := map[string]string{"EVENT_BUS_NAME": *bus.EventBusName(), "EVENTS_DLQ_URL": *dlq.QueueUrl()}

	consumer := s.newFunction(function{folder: api.EventConsumerFunction, memoryMB: 256,
		timeout: awscdk.Duration_Seconds(jsii.Number(60)), access: NoTable, environment: env})
	suppress(consumer.Role(), "AwsSolutions-IAM5",
		"X-Ray's PutTraceSegments and PutTelemetryRecords (active tracing) and DynamoDB's ListStreams (the event source mapping's) support no resource-level permissions.",
		"Resource::*")
	putEvents := awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions: jsii.Strings("events:PutEvents"), Resources: jsii.Strings(*bus.EventBusArn())})
	consumer.AddToRolePolicy(putEvents)
	// Its own dead letters, and the event source mapping's on-failure records, which
	// Lambda sends with the function's role.
	consumer.AddToRolePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions: jsii.Strings("sqs:SendMessage"), Resources: jsii.Strings(*dlq.QueueArn())}))
	// What the event source mapping reads with the function's role.
	consumer.AddToRolePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions: jsii.Strings(pool.StreamReadActions...), Resources: jsii.Strings(streamARN)}))
	consumer.AddToRolePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions: jsii.Strings(pool.StreamListAction), Resources: jsii.Strings("*")}))
	mapping := awslambda.NewCfnEventSourceMapping(s.Stack, jsii.String("EventsStream"), &awslambda.CfnEventSourceMappingProps{
		FunctionName:               consumer.FunctionName(),
		EventSourceArn:             jsii.String(streamARN),
		StartingPosition:           jsii.String("TRIM_HORIZON"),
		BatchSize:                  jsii.Number(eventsBatchSize),
		BisectBatchOnFunctionError: jsii.Bool(true),
		FunctionResponseTypes:      jsii.Strings("ReportBatchItemFailures"),
		MaximumRecordAgeInSeconds:  jsii.Number(config.EventsMaxRecordAge.Seconds()),
		MaximumRetryAttempts:       jsii.Number(eventsRetryAttempts),
		DestinationConfig: &awslambda.CfnEventSourceMapping_DestinationConfigProperty{
			OnFailure: &awslambda.CfnEventSourceMapping_OnFailureProperty{Destination: dlq.QueueArn()},
		},
	})
	// The mapping reads the stream with the role: its policy must exist first.
	mapping.Node().AddDependency(consumer.Role())

	replay := s.Functions[replayRoute()]
	for k, v := range env {
		replay.AddEnvironment(jsii.String(k), jsii.String(v), nil)
	}
	replay.AddToRolePolicy(putEvents)
	replay.AddToRolePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions: jsii.Strings("sqs:ReceiveMessage", "sqs:DeleteMessage"), Resources: jsii.Strings(*dlq.QueueArn())}))
	replay.AddToRolePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions: jsii.Strings("dynamodb:GetShardIterator", "dynamodb:GetRecords"), Resources: jsii.Strings(streamARN)}))

	s.addEventAlarms(consumer, dlq)
	s.addEventSchemas()
	s.addDeletionFailedRule(bus)
	awscdk.NewCfnOutput(s.Stack, jsii.String("EventBusName"), &awscdk.CfnOutputProps{Value: bus.EventBusName()})
	awscdk.NewCfnOutput(s.Stack, jsii.String("EventsDeadLetterQueueUrl"), &awscdk.CfnOutputProps{Value: dlq.QueueUrl()})
}

// replayRoute is the route with ReplaysEvents.
func replayRoute() string {
	for _, r := range api.Routes {
		if r.ReplaysEvents {
			return r.Name
		}
	}
	panic("infra: no route replays the events")
}

// eventAlarms are the alarms of the events (addEventAlarms).
var eventAlarms = []string{"EventsDeadLettered", "EventsBehind"}

// addEventAlarms: a dead letter waiting (an event is not on the bus until it is
// replayed), and the consumer falling behind the stream.
func (s *BrokerStack) addEventAlarms(consumer awslambda.Function, dlq awssqs.Queue) {
	for _, a := range []struct {
		id, description string
		metric          awscloudwatch.IMetric
		threshold       float64
	}{
		{eventAlarms[0], "Domain events or stream records are in the events' dead-letter queue: they are not on the bus. Fix the cause (the consumer's log says it), then POST /v1/admin/events/replay (brokerctl replay-events) within 24 hours for batches the event source mapping gave up on.",
			dlq.MetricApproximateNumberOfMessagesVisible(&awscloudwatch.MetricOptions{Statistic: jsii.String("Maximum"), Period: awscdk.Duration_Minutes(jsii.Number(5))}), 0},
		{eventAlarms[1], "The publish-events function is more than 5 minutes behind the table's stream: events are late, and records older than an hour are given up on (dead-lettered). Check its errors and the bus.",
			consumer.Metric(jsii.String("IteratorAge"), &awscloudwatch.MetricOptions{Statistic: jsii.String("Maximum"), Period: awscdk.Duration_Minutes(jsii.Number(5))}), 5 * 60 * 1000},
	} {
		alarm := awscloudwatch.NewAlarm(s.Stack, jsii.String(a.id), &awscloudwatch.AlarmProps{
			AlarmDescription: jsii.String(a.description), Metric: a.metric, Threshold: jsii.Number(a.threshold),
			ComparisonOperator: awscloudwatch.ComparisonOperator_GREATER_THAN_THRESHOLD, EvaluationPeriods: jsii.Number(1),
			TreatMissingData: awscloudwatch.TreatMissingData_NOT_BREACHING,
		})
		alarm.AddAlarmAction(awscloudwatchactions.NewSnsAction(s.AlarmTopic))
	}
}

// addEventSchemas registers one JSON Schema (draft 4) per event type, read from
// api/events at synthesis, in the stack's own registry.
func (s *BrokerStack) addEventSchemas() {
	registry := awseventschemas.NewCfnRegistry(s.Stack, jsii.String("EventSchemas"), &awseventschemas.CfnRegistryProps{
		Description: jsii.String("Sandbox Broker domain events, one schema per detail-type (api/events in the repository)"),
	})
	types, err := eventschema.Types()
	if err != nil {
		panic(err)
	}
	for _, t := range types {
		content, err := eventschema.For(t)
		if err != nil {
			panic(err)
		}
		awseventschemas.NewCfnSchema(s.Stack, jsii.String("EventSchema"+camel(strings.NewReplacer(".", "-", "_", "-").Replace(t))), &awseventschemas.CfnSchemaProps{
			RegistryName: registry.AttrRegistryName(),
			SchemaName:   jsii.String(events.Source + "@" + t),
			Type:         jsii.String("JSONSchemaDraft4"),
			Content:      jsii.String(string(content)),
			Description:  jsii.String(fmt.Sprintf("%s, version %s (docs/events.md)", t, eventschema.Version)),
		})
	}
}

// addDeletionFailedRule is the sample rule of docs/events.md: sandbox.deletion_failed on
// the stack's bus goes to the alarm topic. EventBridge publishes as events.amazonaws.com,
// which the topic's policy and its key's policy let in for this rule only.
func (s *BrokerStack) addDeletionFailedRule(bus awsevents.EventBus) {
	// The rule's ARN is spelled out rather than read from the rule: the topic's key must
	// name it, and the rule names the topic, whose key it is.
	name := *s.Stack.StackName() + "-deletion-failed-to-alarms"
	awsevents.NewCfnRule(s.Stack, jsii.String("DeletionFailedToAlarms"), &awsevents.CfnRuleProps{
		Name:         jsii.String(name),
		Description:  jsii.String("Sample: each sandbox.deletion_failed event to the alarm topic"),
		EventBusName: bus.EventBusName(),
		EventPattern: map[string]any{"source": []string{events.Source}, "detail-type": []string{string(events.DeletionFailed)}},
		State:        jsii.String("ENABLED"),
		// An L1 target: awseventstargets.SnsTopic would add its own topic policy statement,
		// without the condition on this rule.
		Targets: []any{&awsevents.CfnRule_TargetProperty{Id: jsii.String("AlarmTopic"), Arn: s.AlarmTopic.TopicArn()}},
	})
	ruleARN := awscdk.Arn_Format(&awscdk.ArnComponents{Service: jsii.String("events"), Resource: jsii.String("rule"),
		ResourceName: jsii.String(*bus.EventBusName() + "/" + name)}, s.Stack)
	fromRule := &map[string]any{"ArnEquals": map[string]any{"aws:SourceArn": ruleARN}}
	s.AlarmTopic.AddToResourcePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:        jsii.String("DeletionFailedRulePublishes"),
		Principals: &[]awsiam.IPrincipal{awsiam.NewServicePrincipal(jsii.String("events.amazonaws.com"), nil)},
		Actions:    jsii.Strings("sns:Publish"),
		Resources:  jsii.Strings(*s.AlarmTopic.TopicArn()),
		Conditions: fromRule,
	}))
	s.AlarmTopic.MasterKey().AddToResourcePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:        jsii.String("DeletionFailedRulePublishes"),
		Principals: &[]awsiam.IPrincipal{awsiam.NewServicePrincipal(jsii.String("events.amazonaws.com"), nil)},
		Actions:    jsii.Strings("kms:Decrypt", "kms:GenerateDataKey*"),
		Resources:  jsii.Strings("*"), // in a key policy, * is this key
		Conditions: fromRule,
	}), jsii.Bool(true))
}
