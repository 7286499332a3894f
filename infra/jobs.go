package main

import (
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigateway"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsevents"
	"github.com/aws/aws-cdk-go/awscdk/v2/awseventstargets"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/jsii-runtime-go"

	"github.com/sandbox-broker/broker/pkg/config"
	"github.com/sandbox-broker/broker/pkg/jobs"
	"github.com/sandbox-broker/broker/pkg/usageplans"
)

// addJobs makes one function and one EventBridge schedule per entry of the job table. The
// job lease keeps a job to one run at a time (jobs.Runner), so a job function reserves
// concurrency only when the operator asks (jobReservedConcurrency); the timeout
// (Job.Timeout) stays under the schedule's interval, so a run ends before the next one is
// due.
func (s *BrokerStack) addJobs() {
	for _, job := range jobs.Table {
		env := map[string]string{}
		if job.UsesCSP {
			env["CSP_BASE_URL"] = s.cfg.CSPBaseURL
			env["CSP_TOKEN_SECRET_ARN"] = *s.CSPSecret.SecretArn()
		}
		if job.UsesNIOSXaaS {
			maps.Copy(env, s.niosxaasEnvironment())
		}
		fn := s.newFunction(function{
			folder:      job.Name,
			memoryMB:    512,
			timeout:     awscdk.Duration_Seconds(jsii.Number(job.Timeout().Seconds())),
			reserved:    s.cfg.JobReservedConcurrency,
			access:      WriteTable,
			environment: env,
			// A failed run is not repeated at once: the next scheduled run does the work.
			noRetries: true,
		})
		if job.UsesCSP {
			grantSecretValue(fn, s.CSPSecret)
		}
		if job.UsesNIOSXaaS && s.cfg.NIOSXaaSEnabled {
			grantSecretValue(fn, s.NIOSXaaSSecret)
		}
		awsevents.NewRule(s.Stack, jsii.String(camel(job.Name)+"Schedule"), &awsevents.RuleProps{
			Description: jsii.String("Runs the " + job.Name + " job"),
			Schedule:    awsevents.Schedule_Expression(jsii.String(job.Schedule())),
			Targets:     &[]awsevents.IRuleTarget{awseventstargets.NewLambdaFunction(fn, nil)},
		})
	}
}

// addUsagePlansAccess gives each job with UsesAPIGateway (usage-plans) what it needs once
// the REST API exists: the API's id and stage, the tokens secret to read, and exactly the
// API Gateway actions of usageplans.Permissions on this region's API keys and usage plans
// and on the stage.
func (s *BrokerStack) addUsagePlansAccess(restAPI awsapigateway.RestApi) {
	for _, job := range jobs.Table {
		if !job.UsesAPIGateway {
			continue
		}
		fn := s.Functions[job.Name]
		fn.AddEnvironment(jsii.String("TOKENS_SECRET_ARN"), s.TokenSecret.SecretArn(), nil)
		fn.AddEnvironment(jsii.String("REST_API_ID"), restAPI.RestApiId(), nil)
		fn.AddEnvironment(jsii.String("REST_API_STAGE"), jsii.String(stageName), nil)
		grantSecretValue(fn, s.TokenSecret)
		// Operators invoke it by this name after editing the tokens secret (docs/operations.md).
		awscdk.NewCfnOutput(s.Stack, jsii.String(camel(job.Name)+"FunctionName"), &awscdk.CfnOutputProps{Value: fn.FunctionName()})
		var wildcards []string
		for _, p := range usageplans.Permissions(*restAPI.RestApiId(), stageName) {
			var arns []string
			for _, path := range p.Paths {
				arns = append(arns, "arn:"+*s.Partition()+":apigateway:"+*s.Region()+"::"+path)
				if strings.HasSuffix(path, "/*") && !slices.Contains(wildcards, path) {
					wildcards = append(wildcards, path)
				}
			}
			fn.AddToRolePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
				Actions: jsii.Strings(p.Action), Resources: jsii.Strings(arns...),
			}))
		}
		var applies []string
		for _, w := range wildcards {
			applies = append(applies, "Resource::arn:<AWS::Partition>:apigateway:<AWS::Region>::"+w)
		}
		suppress(fn.Role(), "AwsSolutions-IAM5",
			"The job creates and deletes API keys and usage plans whose ids API Gateway assigns at run time; IAM cannot name them by the job's name prefix, so it may act on any key and plan of the region (GET, POST, PATCH, DELETE only, as it calls them).",
			applies...)
	}
}

// niosxaasEnvironment is the NIOSXAAS_* settings of the cleanup step from the context
// values; the credentials stay in the secret, named by its ARN.
func (s *BrokerStack) niosxaasEnvironment() map[string]string {
	if !s.cfg.NIOSXaaSEnabled {
		return map[string]string{"NIOSXAAS_ENABLED": "false"}
	}
	service := s.cfg.NIOSXaaSServiceName
	if service == "" {
		service = config.AllServices
	}
	return map[string]string{
		"NIOSXAAS_ENABLED": "true", "NIOSXAAS_SHADOW_MODE": strconv.FormatBool(s.cfg.NIOSXaaSShadowMode),
		"NIOSXAAS_BASE_URL": s.cfg.NIOSXaaSBaseURL, "NIOSXAAS_SERVICE_NAME": service,
		"NIOSXAAS_CREDENTIALS_SECRET_ARN": *s.NIOSXaaSSecret.SecretArn(),
	}
}

// jobFunction is the function of the job named name.
func (s *BrokerStack) jobFunction(name string) awslambda.Function {
	if _, ok := jobs.Named(name); !ok {
		panic("infra: a route starts the unknown job " + name)
	}
	return s.Functions[name]
}
