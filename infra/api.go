package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigateway"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awswafv2"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/sandbox-broker/broker/pkg/api"
	"github.com/sandbox-broker/broker/pkg/auth"
)

// stageName is the API Gateway stage; the route paths carry their own /v1.
const stageName = "api"

// authorizerTimeout leaves the authorizer time to answer from the last good tokens after a
// secret read that hit auth.SecretReadTimeout (a stack test keeps it above twice that).
const authorizerTimeout = 5 * time.Second

// addAPI makes the REST API: one method and one function per route of the route table,
// the REQUEST authorizer on every non-public route, gateway responses in the broker's error
// envelope, stage throttling, access logs and, when enabled, a WAF web ACL.
func (s *BrokerStack) addAPI() awsapigateway.RestApi {
	accessLogs := awslogs.NewLogGroup(s.Stack, jsii.String("ApiAccessLogs"), &awslogs.LogGroupProps{
		Retention:     awslogs.RetentionDays_THREE_MONTHS,
		RemovalPolicy: awscdk.RemovalPolicy_DESTROY,
	})
	restAPI := awsapigateway.NewRestApi(s.Stack, jsii.String("Api"), &awsapigateway.RestApiProps{
		RestApiName:    jsii.String("sandbox-broker"),
		Description:    jsii.String("Sandbox Broker track and admin API"),
		CloudWatchRole: jsii.Bool(true),
		// Each request's API key is the one the authorizer names (usageIdentifierKey), so
		// API Gateway meters it by its client's usage plan (the usage-plans job).
		ApiKeySourceType: awsapigateway.ApiKeySourceType_AUTHORIZER,
		DeployOptions: &awsapigateway.StageOptions{
			StageName:            jsii.String(stageName),
			ThrottlingRateLimit:  jsii.Number(s.cfg.APIThrottleRate),
			ThrottlingBurstLimit: jsii.Number(s.cfg.APIThrottleBurst),
			TracingEnabled:       jsii.Bool(true),
			MetricsEnabled:       jsii.Bool(true),
			LoggingLevel:         awsapigateway.MethodLoggingLevel_ERROR,
			AccessLogDestination: awsapigateway.NewLogGroupLogDestination(accessLogs),
			AccessLogFormat: awsapigateway.AccessLogFormat_JsonWithStandardFields(&awsapigateway.JsonWithStandardFieldProps{
				Caller: jsii.Bool(false), HttpMethod: jsii.Bool(true), Ip: jsii.Bool(true), Protocol: jsii.Bool(true),
				RequestTime: jsii.Bool(true), ResourcePath: jsii.Bool(true), ResponseLength: jsii.Bool(true),
				Status: jsii.Bool(true), User: jsii.Bool(false),
			}),
		},
	})

	authorizerFn := s.newFunction(function{
		folder: api.AuthorizerFunction, memoryMB: 256, timeout: awscdk.Duration_Seconds(jsii.Number(authorizerTimeout.Seconds())), access: NoTable,
		environment: map[string]string{"TOKENS_SECRET_ARN": *s.TokenSecret.SecretArn()},
	})
	grantSecretValue(authorizerFn, s.TokenSecret)
	authorizer := awsapigateway.NewRequestAuthorizer(s.Stack, jsii.String("TokenAuthorizer"), &awsapigateway.RequestAuthorizerProps{
		Handler:         authorizerFn,
		IdentitySources: &[]*string{awsapigateway.IdentitySource_Header(jsii.String("Authorization"))},
		ResultsCacheTtl: awscdk.Duration_Seconds(jsii.Number(s.cfg.AuthorizerCacheSecs)),
	})

	var public []constructs.IConstruct
	resources := map[string]awsapigateway.Resource{}
	for _, r := range api.Routes {
		env := map[string]string{"CORS_ALLOWED_ORIGINS": s.cfg.CORSAllowedOrigins}
		if r.Starts != "" {
			env[api.JobFunctionEnv(r.Starts)] = *s.jobFunction(r.Starts).FunctionName()
		}
		fn := s.newFunction(function{
			folder: r.Name, memoryMB: 256, timeout: awscdk.Duration_Seconds(jsii.Number(15)), access: routeAccess(r),
			environment: env,
		})
		if r.Starts != "" {
			// Only admin trigger routes may start a job, and only their own: the function
			// itself, not its versions or aliases (GrantInvoke would add <arn>:*).
			fn.AddToRolePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
				Actions:   jsii.Strings("lambda:InvokeFunction"),
				Resources: jsii.Strings(*s.jobFunction(r.Starts).FunctionArn()),
			}))
		}
		opts := &awsapigateway.MethodOptions{}
		if r.Scope != auth.Public {
			opts.AuthorizationType = awsapigateway.AuthorizationType_CUSTOM
			opts.Authorizer = authorizer
			// A client without a usage plan is refused (403), so every authorized
			// request is metered by its client's plan.
			opts.ApiKeyRequired = jsii.Bool(true)
		}
		resource := restAPI.Root().ResourceForPath(jsii.String(r.Path))
		resources[r.Path] = resource
		method := resource.AddMethod(jsii.String(r.Method), awsapigateway.NewLambdaIntegration(fn, nil), opts)
		if r.Scope == auth.Public {
			public = append(public, method)
		}
	}
	for path, resource := range resources {
		public = append(public, s.addMethodNotAllowed(resource))
		if len(s.cfg.CORSOrigins) > 0 {
			public = append(public, s.addPreflight(resource, api.MethodsOf(path)))
		}
	}
	if len(s.cfg.CORSOrigins) > 1 {
		awscdk.Annotations_Of(restAPI).AddWarningV2(jsii.String("broker:cors-gateway-responses"),
			jsii.String("Several CORS origins: API Gateway's own errors (401, 403, 429 ...) cannot name the caller's origin, so browsers see them as CORS failures. Configure one origin or \"*\" to avoid this."), nil)
	}
	s.addGatewayResponses(restAPI)
	if s.cfg.WAF {
		s.addWAF(restAPI)
	}
	s.suppressFindings(restAPI, public)
	return restAPI
}

// routeAccess is what a route's function may do to the table: what the route table says
// its code does (api.Route.Table).
func routeAccess(r api.Route) Access {
	switch r.Table {
	case api.NoTable:
		return NoTable
	case api.PingsTable:
		return PingTable
	case api.ReadsTable:
		return ReadTable
	case api.WritesTable:
		return WriteTable
	}
	panic("infra: route " + r.Name + " does not say what it does to the table (api.Route.Table)")
}

// addMethodNotAllowed answers a method the table does not define on a resource with 405
// in the envelope, as the handlers and the local emulator do; API Gateway would otherwise
// answer 403 MISSING_AUTHENTICATION_TOKEN. The table's own methods take precedence over ANY.
func (s *BrokerStack) addMethodNotAllowed(resource awsapigateway.Resource) awsapigateway.Method {
	e := api.MethodNotAllowed
	// A mock integration's response template runs VTL, so unlike a gateway response it can
	// set X-Request-ID to the request id, and the CORS headers for the caller's origin.
	template := "#set($context.responseOverride.header." + api.HeaderRequestID + " = $context.requestId)\n" +
		s.corsHeadersVTL() + string(api.Envelope("$context.requestId", e))
	headers := map[string]*string{}
	for name, value := range responseHeaders() {
		headers["method.response.header."+name] = jsii.String("'" + value + "'")
	}
	status := jsii.String(strconv.Itoa(e.Status))
	return resource.AddMethod(jsii.String("ANY"), awsapigateway.NewMockIntegration(&awsapigateway.IntegrationOptions{
		RequestTemplates: &map[string]*string{"application/json": jsii.String(`{"statusCode": 405}`)},
		IntegrationResponses: &[]*awsapigateway.IntegrationResponse{{
			StatusCode:         status,
			ResponseTemplates:  &map[string]*string{"application/json": jsii.String(template)},
			ResponseParameters: &headers,
		}},
		PassthroughBehavior: awsapigateway.PassthroughBehavior_WHEN_NO_TEMPLATES,
	}), &awsapigateway.MethodOptions{
		MethodResponses: &[]*awsapigateway.MethodResponse{{StatusCode: status, ResponseParameters: declared(headers)}},
	})
}

// responseHeaders are the static headers of every answer: JSON and the security headers.
func responseHeaders() map[string]string {
	h := map[string]string{"Content-Type": "application/json"}
	for name, value := range api.SecurityHeaders {
		h[name] = value
	}
	return h
}

// addGatewayResponses makes every error API Gateway produces itself (api.GatewayErrors)
// use the broker's envelope, security headers and CORS headers (gatewayCORSHeaders). The body's request_id is API Gateway's
// request id, the value it also sends as x-amzn-RequestId: a gateway response can map
// only request parameters and literals into headers, so it cannot add X-Request-ID.
func (s *BrokerStack) addGatewayResponses(restAPI awsapigateway.RestApi) {
	for _, g := range api.GatewayErrors {
		headers := map[string]*string{}
		for name, value := range responseHeaders() {
			headers[name] = jsii.String("'" + value + "'")
		}
		for name, value := range s.gatewayCORSHeaders() {
			headers[name] = jsii.String("'" + value + "'")
		}
		if g.RetryAfter > 0 {
			headers["Retry-After"] = jsii.String(fmt.Sprintf("'%d'", g.RetryAfter))
		}
		opts := &awsapigateway.GatewayResponseOptions{
			Type:            awsapigateway.ResponseType_Of(jsii.String(g.ResponseType)),
			ResponseHeaders: &headers,
			Templates:       &map[string]*string{"application/json": jsii.String(string(api.Envelope("$context.requestId", g.Error)))},
		}
		if g.Status != 0 {
			opts.StatusCode = jsii.String(strconv.Itoa(g.Status))
		}
		restAPI.AddGatewayResponse(jsii.String(camel(strings.ToLower(strings.ReplaceAll(g.ResponseType, "_", "-")))), opts)
	}
}

// addWAF attaches a regional web ACL with a per-IP rate rule and AWS's managed common and
// known-bad-input rules to the stage.
func (s *BrokerStack) addWAF(restAPI awsapigateway.RestApi) {
	visibility := func(name string) *awswafv2.CfnWebACL_VisibilityConfigProperty {
		return &awswafv2.CfnWebACL_VisibilityConfigProperty{
			CloudWatchMetricsEnabled: jsii.Bool(true), MetricName: jsii.String(name), SampledRequestsEnabled: jsii.Bool(true),
		}
	}
	managed := func(priority int, name string) *awswafv2.CfnWebACL_RuleProperty {
		return &awswafv2.CfnWebACL_RuleProperty{
			Name: jsii.String(name), Priority: jsii.Number(priority),
			OverrideAction:   &awswafv2.CfnWebACL_OverrideActionProperty{None: map[string]any{}},
			Statement:        &awswafv2.CfnWebACL_StatementProperty{ManagedRuleGroupStatement: &awswafv2.CfnWebACL_ManagedRuleGroupStatementProperty{VendorName: jsii.String("AWS"), Name: jsii.String(name)}},
			VisibilityConfig: visibility(name),
		}
	}
	acl := awswafv2.NewCfnWebACL(s.Stack, jsii.String("WebAcl"), &awswafv2.CfnWebACLProps{
		Scope:            jsii.String("REGIONAL"),
		DefaultAction:    &awswafv2.CfnWebACL_DefaultActionProperty{Allow: map[string]any{}},
		VisibilityConfig: visibility("sandbox-broker"),
		Rules: &[]*awswafv2.CfnWebACL_RuleProperty{
			{
				Name: jsii.String("RatePerIp"), Priority: jsii.Number(0),
				Action: &awswafv2.CfnWebACL_RuleActionProperty{Block: map[string]any{}},
				Statement: &awswafv2.CfnWebACL_StatementProperty{RateBasedStatement: &awswafv2.CfnWebACL_RateBasedStatementProperty{
					Limit: jsii.Number(s.cfg.WAFRequestsPer5MinIP), AggregateKeyType: jsii.String("IP"),
				}},
				VisibilityConfig: visibility("RatePerIp"),
			},
			managed(1, "AWSManagedRulesCommonRuleSet"),
			managed(2, "AWSManagedRulesKnownBadInputsRuleSet"),
		},
	})
	awswafv2.NewCfnWebACLAssociation(s.Stack, jsii.String("WebAclAssociation"), &awswafv2.CfnWebACLAssociationProps{
		ResourceArn: restAPI.DeploymentStage().StageArn(),
		WebAclArn:   acl.AttrArn(),
	})
}
