package main

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsdynamodb"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssecretsmanager"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/sandbox-broker/broker/pkg/obs"
	"github.com/sandbox-broker/broker/pkg/pool"
)

// BrokerStack is the whole broker: table, secrets, one function per route and per job,
// the REST API with its authorizer, the schedules, alarms and a dashboard.
type BrokerStack struct {
	awscdk.Stack
	cfg         StackConfig
	Table       awsdynamodb.Table
	TokenSecret awssecretsmanager.Secret
	CSPSecret   awssecretsmanager.Secret
	// NIOSXaaSSecret holds the NIOSXaaS step's {"email","password"}; only the functions
	// of jobs with UsesNIOSXaaS (cleanup) may read it, and only while the step is on.
	NIOSXaaSSecret awssecretsmanager.Secret
	Functions      map[string]awslambda.Function // by route or job name, its folder under functions/
	// AlarmTopic is where the alarms (and the sample events rule) notify.
	AlarmTopic awssns.Topic
}

// NewBrokerStack builds the stack.
func NewBrokerStack(scope constructs.Construct, id string, cfg StackConfig, props *awscdk.StackProps) *BrokerStack {
	s := &BrokerStack{
		Stack:     awscdk.NewStack(scope, jsii.String(id), props),
		cfg:       cfg,
		Functions: map[string]awslambda.Function{},
	}
	s.Table = newTable(s.Stack, s.cfg.PeakAllocationsPerSecond)
	s.TokenSecret = awssecretsmanager.NewSecret(s.Stack, jsii.String("TokenDigests"), &awssecretsmanager.SecretProps{
		Description: jsii.String(`SHA-256 digests of the broker's bearer tokens: {"tokens":[{"name":"instruqt","scope":"track","sha256":"<hex>"}]}`),
	})
	s.CSPSecret = awssecretsmanager.NewSecret(s.Stack, jsii.String("CSPToken"), &awssecretsmanager.SecretProps{
		Description: jsii.String("ENG CSP API token (plain text) used by the sync and cleanup jobs"),
	})
	s.NIOSXaaSSecret = awssecretsmanager.NewSecret(s.Stack, jsii.String("NIOSXaaSCredentials"), &awssecretsmanager.SecretProps{
		Description: jsii.String(`NIOSXaaS credentials of the cleanup job's pre-delete step: {"email":"...","password":"..."}`),
	})
	s.addJobs()
	api := s.addAPI()
	s.addUsagePlansAccess(api)
	s.addOperations(api)
	s.addEvents()
	for name, value := range map[string]*string{
		"ApiUrl": api.Url(), "TableName": s.Table.TableName(),
		"TokenSecretArn": s.TokenSecret.SecretArn(), "CSPTokenSecretArn": s.CSPSecret.SecretArn(),
		"NIOSXaaSCredentialsSecretArn": s.NIOSXaaSSecret.SecretArn(),
	} {
		awscdk.NewCfnOutput(s.Stack, jsii.String(name), &awscdk.CfnOutputProps{Value: value})
	}
	return s
}

// newTable builds the table from pool.Schema, warm for peak allocations per second.
func newTable(scope constructs.Construct, peak int) awsdynamodb.Table {
	table := awsdynamodb.NewTable(scope, jsii.String("Pool"), &awsdynamodb.TableProps{
		PartitionKey: tableKey(pool.Schema.Partition),
		Stream:       awsdynamodb.StreamViewType(pool.Schema.StreamView),
		SortKey:      tableKey(pool.Schema.Sort),
		BillingMode:  awsdynamodb.BillingMode_PAY_PER_REQUEST,
		PointInTimeRecoverySpecification: &awsdynamodb.PointInTimeRecoverySpecification{
			PointInTimeRecoveryEnabled: jsii.Bool(true),
		},
		Encryption:          awsdynamodb.TableEncryption_AWS_MANAGED,
		TimeToLiveAttribute: jsii.String(pool.Schema.TTLAttribute),
		DeletionProtection:  jsii.Bool(true),
		// The pool outlives the stack: deleting the stack must never orphan live CSP accounts.
		RemovalPolicy:  awscdk.RemovalPolicy_RETAIN,
		WarmThroughput: warmThroughput(peak, ""),
	})
	for _, ix := range pool.Schema.Indexes {
		props := &awsdynamodb.GlobalSecondaryIndexProps{
			IndexName:      jsii.String(ix.Name),
			PartitionKey:   tableKey(ix.Partition),
			SortKey:        tableKey(ix.Sort),
			ProjectionType: awsdynamodb.ProjectionType_ALL,
			WarmThroughput: warmThroughput(peak, ix.Name),
		}
		if len(ix.Include) > 0 {
			props.ProjectionType = awsdynamodb.ProjectionType_INCLUDE
			props.NonKeyAttributes = jsii.Strings(ix.Include...)
		}
		table.AddGlobalSecondaryIndex(props)
	}
	return table
}

func tableKey(k pool.Key) *awsdynamodb.Attribute {
	t := awsdynamodb.AttributeType_STRING
	if k.Type == pool.Number {
		t = awsdynamodb.AttributeType_NUMBER
	}
	return &awsdynamodb.Attribute{Name: jsii.String(k.Name), Type: t}
}

// Access is what a function may do to the table.
type Access int

const (
	NoTable Access = iota
	PingTable
	ReadTable
	WriteTable
)

// function describes one Lambda: its folder, size, environment and table access.
type function struct {
	folder      string
	memoryMB    int
	timeout     awscdk.Duration
	reserved    int  // reserved concurrency; 0 for none
	noRetries   bool // no retry of a failed asynchronous invocation
	access      Access
	environment map[string]string
}

// newFunction builds an arm64 provided.al2023 function from <AssetDir>/<folder>/bootstrap,
// with its own role (logs to its own group only, the table actions its access allows) and
// log group with a retention.
func (s *BrokerStack) newFunction(f function) awslambda.Function {
	id := camel(f.folder)
	logs := awslogs.NewLogGroup(s.Stack, jsii.String(id+"Logs"), &awslogs.LogGroupProps{
		Retention:     awslogs.RetentionDays_ONE_MONTH,
		RemovalPolicy: awscdk.RemovalPolicy_DESTROY,
	})
	role := awsiam.NewRole(s.Stack, jsii.String(id+"Role"), &awsiam.RoleProps{
		AssumedBy:   awsiam.NewServicePrincipal(jsii.String("lambda.amazonaws.com"), nil),
		Description: jsii.String(fmt.Sprintf("Sandbox Broker %s function", f.folder)),
	})
	role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions:   jsii.Strings("logs:CreateLogStream", "logs:PutLogEvents"),
		Resources: jsii.Strings(*logs.LogGroupArn()),
	}))
	env := map[string]*string{
		"TABLE_NAME":             s.Table.TableName(),
		"LAB_DURATION_HOURS":     jsii.String(fmt.Sprint(s.cfg.LabDurationHours)),
		"GRACE_PERIOD_MINUTES":   jsii.String(fmt.Sprint(s.cfg.GracePeriodMinutes)),
		"LAB_EXTENSION_HOURS":    jsii.String(fmt.Sprint(s.cfg.LabExtensionHours)),
		"MAX_LAB_DURATION_HOURS": jsii.String(fmt.Sprint(s.cfg.MaxLabDurationHours)),
		"LOG_LEVEL":              jsii.String(s.cfg.LogLevel.String()),
	}
	for k, v := range f.environment {
		env[k] = jsii.String(v)
	}
	props := &awslambda.FunctionProps{
		Runtime:      awslambda.Runtime_PROVIDED_AL2023(),
		Architecture: awslambda.Architecture_ARM_64(),
		Handler:      jsii.String("bootstrap"),
		Code:         awslambda.Code_FromAsset(jsii.String(filepath.Join(s.cfg.AssetDir, f.folder)), nil),
		MemorySize:   jsii.Number(f.memoryMB),
		Timeout:      f.timeout,
		Tracing:      awslambda.Tracing_ACTIVE,
		Environment:  &env,
		LogGroup:     logs,
		Role:         role,
		// Lambda's JSON log format: its own lines (START, REPORT with duration, memory and
		// init time) become JSON too, and it filters the function's lines by their level, at
		// a level that never drops an EMF line (obs.LambdaApplicationLogLevel).
		LoggingFormat:         awslambda.LoggingFormat_JSON,
		ApplicationLogLevelV2: awslambda.ApplicationLogLevel(obs.LambdaApplicationLogLevel(s.cfg.LogLevel)),
		SystemLogLevelV2:      awslambda.SystemLogLevel_INFO,
	}
	if f.reserved > 0 {
		props.ReservedConcurrentExecutions = jsii.Number(f.reserved)
	}
	if f.noRetries {
		props.RetryAttempts = jsii.Number(0)
	}
	fn := awslambda.NewFunction(s.Stack, jsii.String(id), props)
	if f.access != NoTable {
		actions, resources := pool.PingActions, []string{*s.Table.TableArn()}
		if f.access != PingTable {
			actions = pool.ReadActions
			if f.access == WriteTable {
				actions = pool.WriteActions
			}
			for _, ix := range pool.Schema.Indexes {
				resources = append(resources, *s.Table.TableArn()+"/index/"+ix.Name)
			}
		}
		role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Actions:   jsii.Strings(actions...),
			Resources: jsii.Strings(resources...),
		}))
	}
	s.Functions[f.folder] = fn
	return fn
}

// camel turns a folder name like stale-cleanup into a construct id like StaleCleanup.
func camel(folder string) string {
	var b strings.Builder
	for _, part := range strings.FieldsFunc(folder, func(r rune) bool { return r == '-' || r == '_' }) {
		b.WriteString(strings.ToUpper(part[:1]) + part[1:])
	}
	return b.String()
}

// grantSecretValue lets fn read the value of secret and nothing else: GrantRead would add
// secretsmanager:DescribeSecret, which no function calls (the template-run test checks
// every granted action is used).
func grantSecretValue(fn awslambda.Function, secret awssecretsmanager.Secret) {
	fn.AddToRolePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions:   jsii.Strings("secretsmanager:GetSecretValue"),
		Resources: jsii.Strings(*secret.SecretArn()),
	}))
}
