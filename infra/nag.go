package main

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigateway"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"
)

// addNagChecks runs cdk-nag's AwsSolutions pack over the app at synthesis. A finding that
// is not suppressed (suppressFindings, with its reason) is an error annotation, which makes
// `cdk synth` and `cdk deploy` print it and fail: an unreviewed finding never ships. Verbose
// prints each rule's explanation next to its finding.
func addNagChecks(app awscdk.App) {
	awscdk.Aspects_Of(app).Add(cdknag.NewAwsSolutionsChecks(&cdknag.NagPackProps{Verbose: jsii.Bool(true)}), nil)
}

// suppress records why a cdk-nag AwsSolutions finding does not apply; the reason is part of
// the template's metadata for reviewers.
func suppress(scope constructs.IConstruct, id, reason string, appliesTo ...string) {
	s := &cdknag.NagPackSuppression{Id: jsii.String(id), Reason: jsii.String(reason)}
	if len(appliesTo) > 0 {
		var applies []any
		for _, a := range appliesTo {
			applies = append(applies, a)
		}
		s.AppliesTo = &applies
	}
	cdknag.NagSuppressions_AddResourceSuppressions(scope, &[]*cdknag.NagPackSuppression{s}, jsii.Bool(true))
}

func (s *BrokerStack) suppressFindings(restAPI awsapigateway.RestApi, public []constructs.IConstruct) {
	rotation := "Static values set by operators (token digests, the CSP token, the NIOSXaaS credentials); Secrets Manager has no rotation function for them. Rotation is a put-secret-value, documented in the README."
	suppress(s.TokenSecret, "AwsSolutions-SMG4", rotation)
	suppress(s.CSPSecret, "AwsSolutions-SMG4", rotation)
	suppress(s.NIOSXaaSSecret, "AwsSolutions-SMG4", rotation)
	for _, fn := range s.Functions {
		suppress(fn.Role(), "AwsSolutions-IAM5",
			"X-Ray's PutTraceSegments and PutTelemetryRecords support no resource-level permissions (active tracing).",
			"Resource::*")
	}
	suppress(restAPI, "AwsSolutions-APIG2",
		"Requests are validated by the handlers (strict, fuzz-tested header parsing) so every rejection uses the broker's error envelope; routes take no request body.")
	suppress(restAPI, "AwsSolutions-IAM4",
		"The account-level API Gateway logging role needs AmazonAPIGatewayPushToCloudWatchLogs for access logs.",
		"Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs")
	suppress(restAPI, "AwsSolutions-COG4",
		"Callers are machines (lab platforms, operators), authorised by a Lambda REQUEST authorizer on SHA-256 token digests with scopes; there are no Cognito users.")
	if !s.cfg.WAF {
		suppress(restAPI, "AwsSolutions-APIG3", "WAF is off by the waf context flag; stage throttling still limits traffic. Set -c waf=true in production.")
	}
	for _, m := range public {
		suppress(m, "AwsSolutions-APIG4", "Public by contract (docs/architecture.md §3): the liveness and readiness probes and the mock 405 answers carry no data.")
	}
}
