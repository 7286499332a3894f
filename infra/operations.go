package main

import (
	"fmt"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigateway"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatchactions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssnssubscriptions"
	"github.com/aws/jsii-runtime-go"

	"github.com/sandbox-broker/broker/pkg/config"
	"github.com/sandbox-broker/broker/pkg/jobs"
	"github.com/sandbox-broker/broker/pkg/obs"
	"github.com/sandbox-broker/broker/pkg/pool"
)

// brokerMetric is a metric the functions publish in CloudWatch Embedded Metric Format
// (pkg/obs), under obs's default namespace.
func brokerMetric(name string, stat string, dims map[string]*string) awscloudwatch.Metric {
	return awscloudwatch.NewMetric(&awscloudwatch.MetricProps{
		Namespace: jsii.String(config.DefaultMetricsNamespace), MetricName: jsii.String(name), Statistic: jsii.String(stat),
		Period: awscdk.Duration_Minutes(jsii.Number(5)), DimensionsMap: &dims,
	})
}

func poolMetric(status pool.Status, stat string) awscloudwatch.Metric {
	return brokerMetric(obs.PoolMetric(string(status)), stat, nil)
}

func outcome(o obs.AllocationOutcome) map[string]*string {
	return map[string]*string{"Outcome": jsii.String(string(o))}
}

func jobCount(job, count string) awscloudwatch.Metric {
	return brokerMetric(obs.JobCountMetric(count), "Sum", map[string]*string{"Job": jsii.String(job)})
}

// addOperations adds the alarms (to an SNS topic, optionally mailed) and the dashboard.
func (s *BrokerStack) addOperations(restAPI awsapigateway.RestApi) {
	topic := awssns.NewTopic(s.Stack, jsii.String("Alarms"), &awssns.TopicProps{
		DisplayName: jsii.String("Sandbox Broker alarms"),
		EnforceSSL:  jsii.Bool(true),
		MasterKey:   s.newAlarmsKey(),
	})
	// EnforceSSL gives the topic a topic policy (its TLS-only Deny), and a topic policy
	// replaces SNS's default one: without this statement nothing would allow CloudWatch to
	// publish, and every alarm would notify nobody.
	topic.AddToResourcePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:        jsii.String("CloudWatchAlarmsOfThisAccountPublish"),
		Principals: &[]awsiam.IPrincipal{awsiam.NewServicePrincipal(jsii.String("cloudwatch.amazonaws.com"), nil)},
		Actions:    jsii.Strings("sns:Publish"),
		Resources:  jsii.Strings(*topic.TopicArn()),
		Conditions: s.alarmsOfThisAccount(),
	}))
	if s.cfg.AlarmEmail != "" {
		topic.AddSubscription(awssnssubscriptions.NewEmailSubscription(jsii.String(s.cfg.AlarmEmail), nil))
	}
	alarm := func(id, description string, metric awscloudwatch.IMetric, op awscloudwatch.ComparisonOperator, threshold float64, periods int, missing awscloudwatch.TreatMissingData) {
		a := awscloudwatch.NewAlarm(s.Stack, jsii.String(id), &awscloudwatch.AlarmProps{
			AlarmDescription:   jsii.String(description),
			Metric:             metric,
			ComparisonOperator: op,
			Threshold:          jsii.Number(threshold),
			EvaluationPeriods:  jsii.Number(periods),
			TreatMissingData:   missing,
		})
		a.AddAlarmAction(awscloudwatchactions.NewSnsAction(topic))
	}

	alarm("PoolLow", fmt.Sprintf("Fewer than %d sandboxes available: allocations will soon get 409. Add sandboxes in the CSP tenant; check the sync job.", s.cfg.PoolLowWaterMark),
		poolMetric(pool.Available, "Minimum"), awscloudwatch.ComparisonOperator_LESS_THAN_THRESHOLD, float64(s.cfg.PoolLowWaterMark), 2,
		awscloudwatch.TreatMissingData_BREACHING)
	alarm("DeletionFailed", "Sandboxes gave up on CSP deletion (deletion_failed). Check last_error, then POST /v1/admin/sandboxes/{id}/retry-deletion.",
		poolMetric(pool.DeletionFailed, "Maximum"), awscloudwatch.ComparisonOperator_GREATER_THAN_THRESHOLD, 0, 1,
		awscloudwatch.TreatMissingData_NOT_BREACHING)
	for _, job := range jobs.Table {
		alarm(camel(job.Name)+"Errors", "The "+job.Name+" job failed: read its JSON summary line in the function's log group.",
			s.Functions[job.Name].MetricErrors(&awscloudwatch.MetricOptions{Period: awscdk.Duration_Minutes(jsii.Number(15)), Statistic: jsii.String("Sum")}),
			awscloudwatch.ComparisonOperator_GREATER_THAN_THRESHOLD, 0, 1, awscloudwatch.TreatMissingData_NOT_BREACHING)
	}
	for _, name := range jobs.Alarms {
		alarm("JobAlarm"+camel(name), "A job raised the "+name+" alarm: read the job run's JSON summary line (its alarm and reason fields) in the job function's log group.",
			brokerMetric(obs.MetricJobAlarm, "Sum", map[string]*string{"Alarm": jsii.String(name)}),
			awscloudwatch.ComparisonOperator_GREATER_THAN_THRESHOLD, 0, 1, awscloudwatch.TreatMissingData_NOT_BREACHING)
	}
	serverErrorRate := awscloudwatch.NewMathExpression(&awscloudwatch.MathExpressionProps{
		Expression: jsii.String("IF(requests >= 20, 100 * errors / requests, 0)"),
		UsingMetrics: &map[string]awscloudwatch.IMetric{
			"errors":   restAPI.MetricServerError(&awscloudwatch.MetricOptions{Statistic: jsii.String("Sum")}),
			"requests": restAPI.MetricCount(&awscloudwatch.MetricOptions{Statistic: jsii.String("Sum")}),
		},
		Period: awscdk.Duration_Minutes(jsii.Number(5)),
		Label:  jsii.String("5xx %"),
	})
	alarm("Api5xxRate", "More than 5 % of API requests answered 5xx: check DynamoDB throttling and function errors.",
		serverErrorRate, awscloudwatch.ComparisonOperator_GREATER_THAN_THRESHOLD, 5, 2, awscloudwatch.TreatMissingData_NOT_BREACHING)
	alarm("AllocateLatencyP99", "Allocation p99 above 2 s: contention or DynamoDB latency.",
		brokerMetric(obs.MetricAllocationLatency, "p99", outcome(obs.AllocationCreated)), awscloudwatch.ComparisonOperator_GREATER_THAN_THRESHOLD, 2000, 3,
		awscloudwatch.TreatMissingData_NOT_BREACHING)

	s.addDashboard(restAPI)
}

// newAlarmsKey is the alarm topic's customer-managed key. CloudWatch can publish to an
// encrypted topic only when the key's policy lets cloudwatch.amazonaws.com use it, which the
// AWS-managed alias/aws/sns key cannot: with it every alarm would notify nobody. The grant
// is limited to this account's alarms, as the topic policy's is.
func (s *BrokerStack) newAlarmsKey() awskms.Key {
	key := awskms.NewKey(s.Stack, jsii.String("AlarmsKey"), &awskms.KeyProps{
		Description:       jsii.String("Sandbox Broker alarm topic: CloudWatch alarms of this account publish with it"),
		EnableKeyRotation: jsii.Bool(true),
	})
	key.AddToResourcePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:        jsii.String("CloudWatchAlarmsOfThisAccountPublish"),
		Principals: &[]awsiam.IPrincipal{awsiam.NewServicePrincipal(jsii.String("cloudwatch.amazonaws.com"), nil)},
		Actions:    jsii.Strings("kms:Decrypt", "kms:GenerateDataKey*"),
		Resources:  jsii.Strings("*"), // in a key policy, * is this key
		Conditions: s.alarmsOfThisAccount(),
	}), jsii.Bool(true))
	return key
}

// alarmsOfThisAccount is the condition of a request CloudWatch makes for an alarm of this
// account (aws:SourceAccount and aws:SourceArn, which CloudWatch sends), so no other
// account's alarm can use the topic or its key.
func (s *BrokerStack) alarmsOfThisAccount() *map[string]any {
	return &map[string]any{
		"StringEquals": map[string]any{"aws:SourceAccount": s.Stack.Account()},
		"ArnLike": map[string]any{"aws:SourceArn": awscdk.Arn_Format(&awscdk.ArnComponents{
			Service: jsii.String("cloudwatch"), Resource: jsii.String("alarm"), ResourceName: jsii.String("*"),
			ArnFormat: awscdk.ArnFormat_COLON_RESOURCE_NAME,
		}, s.Stack)},
	}
}

func (s *BrokerStack) addDashboard(restAPI awsapigateway.RestApi) {
	var poolByStatus []awscloudwatch.IMetric
	for _, status := range pool.Statuses {
		poolByStatus = append(poolByStatus, poolMetric(status, "Average"))
	}
	var outcomes []awscloudwatch.IMetric
	for _, o := range []obs.AllocationOutcome{obs.AllocationCreated, obs.AllocationReplay, obs.AllocationNoSandbox, obs.AllocationBusy, obs.AllocationLimit, obs.AllocationError} {
		outcomes = append(outcomes, brokerMetric(obs.MetricAllocations, "Sum", outcome(o)))
	}
	var jobRuns []awscloudwatch.IMetric
	for _, job := range jobs.Table {
		fn := s.Functions[job.Name]
		jobRuns = append(jobRuns,
			fn.MetricInvocations(&awscloudwatch.MetricOptions{Label: jsii.String(job.Name + " runs")}),
			fn.MetricErrors(&awscloudwatch.MetricOptions{Label: jsii.String(job.Name + " errors")}))
	}
	graph := func(title string, left []awscloudwatch.IMetric) awscloudwatch.IWidget {
		return awscloudwatch.NewGraphWidget(&awscloudwatch.GraphWidgetProps{Title: jsii.String(title), Left: &left, Width: jsii.Number(12)})
	}
	dashboard := awscloudwatch.NewDashboard(s.Stack, jsii.String("Dashboard"), &awscloudwatch.DashboardProps{
		// Named after the stack: two stacks in one account and region get two dashboards.
		DashboardName: s.Stack.StackName(),
	})
	dashboard.AddWidgets(
		graph("Pool by status", poolByStatus),
		graph("Allocation outcomes", outcomes),
	)
	dashboard.AddWidgets(
		graph("Allocation latency of new allocations (ms)", []awscloudwatch.IMetric{
			brokerMetric(obs.MetricAllocationLatency, "p50", outcome(obs.AllocationCreated)),
			brokerMetric(obs.MetricAllocationLatency, "p99", outcome(obs.AllocationCreated)),
		}),
		graph("CSP deletes and failures", []awscloudwatch.IMetric{
			jobCount("cleanup", "deleted"), jobCount("cleanup", "failed"), jobCount("cleanup", "deletion_failed"), jobCount("cleanup", "rate_limited"),
		}),
	)
	cleanupJob := map[string]*string{"Job": jsii.String("cleanup")}
	dashboard.AddWidgets(
		// From release (mark-for-deletion or expiry) to the CSP's confirmed delete.
		graph("Time to delete (s)", []awscloudwatch.IMetric{
			brokerMetric(obs.MetricTimeToDelete, "p50", cleanupJob), brokerMetric(obs.MetricTimeToDelete, "p99", cleanupJob),
		}),
		// The backlog cleanup has to drain, beside what it drained per 5 minutes.
		graph("Pending deletions and deletes per 5 min", []awscloudwatch.IMetric{
			poolMetric(pool.PendingDeletion, "Maximum"), jobCount("cleanup", "deleted"),
		}),
	)
	dashboard.AddWidgets(
		graph("NIOSXaaS pre-delete step", []awscloudwatch.IMetric{
			jobCount("cleanup", "niosxaas_cleaned"), jobCount("cleanup", "niosxaas_none"),
			jobCount("cleanup", "niosxaas_shadow"), jobCount("cleanup", "niosxaas_failed"),
		}),
	)
	dashboard.AddWidgets(
		graph("Job runs", jobRuns),
		graph("API requests and 5xx", []awscloudwatch.IMetric{restAPI.MetricCount(nil), restAPI.MetricServerError(nil), restAPI.MetricClientError(nil)}),
	)
}
