package main

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigateway"
	"github.com/aws/jsii-runtime-go"

	"github.com/sandbox-broker/broker/pkg/api"
)

// The stack answers browsers as the handlers and the local gateway do (api.CORS): the same
// allowed origins (corsAllowedOrigins), headers, methods and max-age.

// corsOriginVTL is VTL that sets $allowOrigin to the Access-Control-Allow-Origin value for
// the request's Origin, or "" when that origin is not allowed. Origins are validated by
// pkg/config (scheme://host[:port] or "*"), so they are safe inside a VTL string.
func (s *BrokerStack) corsOriginVTL() string {
	vtl := `#set($origin = "$!input.params().header.get('Origin')")` + "\n" + `#set($allowOrigin = "")` + "\n"
	var match []string
	for _, o := range s.cfg.CORSOrigins {
		if o == "*" {
			return vtl + `#if($origin != "")#set($allowOrigin = "*")#end` + "\n"
		}
		match = append(match, `$origin == "`+o+`"`)
	}
	if len(match) == 0 {
		return vtl
	}
	return vtl + "#if(" + strings.Join(match, " || ") + `)#set($allowOrigin = $origin)#end` + "\n"
}

// corsHeadersVTL adds the CORS headers of an ordinary answer (api.CORS.Headers) to a mock
// integration's response, for an allowed origin.
func (s *BrokerStack) corsHeadersVTL() string {
	return s.corsOriginVTL() + `#if($allowOrigin != "")` +
		`#set($context.responseOverride.header.Access-Control-Allow-Origin = $allowOrigin)` +
		`#set($context.responseOverride.header.Access-Control-Expose-Headers = "` + api.CORSExposeHeaders + `")` +
		`#set($context.responseOverride.header.Vary = "Origin")#end` + "\n"
}

// corsResponseHeaders are the headers a mock's method response declares so the CORS
// response overrides reach the caller.
var corsResponseHeaders = []string{
	"Access-Control-Allow-Origin", "Access-Control-Expose-Headers", "Access-Control-Allow-Methods",
	"Access-Control-Allow-Headers", "Access-Control-Max-Age", "Vary",
}

// addPreflight answers OPTIONS on a resource as the local gateway does: 204 with the
// preflight headers (api.CORS.Preflight) for a preflight from an allowed origin, and the
// 405 envelope otherwise. Added only when origins are configured; without them OPTIONS is
// the 405 of addMethodNotAllowed, as locally.
func (s *BrokerStack) addPreflight(resource awsapigateway.Resource, methods []string) awsapigateway.Method {
	requestTemplate := s.corsOriginVTL() +
		`#if($allowOrigin != "" && "$!input.params().header.get('Access-Control-Request-Method')" != "")` +
		`{"statusCode": 204}#else{"statusCode": 405}#end`
	requestID := "#set($context.responseOverride.header." + api.HeaderRequestID + " = $context.requestId)\n"
	allowed := s.corsOriginVTL() + "#set($context.responseOverride.header.Access-Control-Allow-Origin = $allowOrigin)\n"
	preflight := map[string]*string{
		"method.response.header.Access-Control-Allow-Methods": jsii.String("'" + strings.Join(methods, ", ") + "'"),
		"method.response.header.Access-Control-Allow-Headers": jsii.String("'" + api.CORSAllowHeaders + "'"),
		"method.response.header.Access-Control-Max-Age":       jsii.String("'" + api.CORSMaxAge + "'"),
		"method.response.header.Vary":                         jsii.String("'Origin'"),
	}
	notAllowed := map[string]*string{}
	for name, value := range responseHeaders() {
		preflight["method.response.header."+name] = jsii.String("'" + value + "'")
		notAllowed["method.response.header."+name] = jsii.String("'" + value + "'")
	}
	e := api.MethodNotAllowed
	status := strconv.Itoa(e.Status)
	return resource.AddMethod(jsii.String(http.MethodOptions), awsapigateway.NewMockIntegration(&awsapigateway.IntegrationOptions{
		RequestTemplates: &map[string]*string{"application/json": jsii.String(requestTemplate)},
		IntegrationResponses: &[]*awsapigateway.IntegrationResponse{
			{
				StatusCode: jsii.String("204"), SelectionPattern: jsii.String("204"),
				ResponseTemplates:  &map[string]*string{"application/json": jsii.String(requestID + allowed)},
				ResponseParameters: &preflight,
			},
			{
				StatusCode:         jsii.String(status),
				ResponseTemplates:  &map[string]*string{"application/json": jsii.String(requestID + s.corsHeadersVTL() + string(api.Envelope("$context.requestId", e)))},
				ResponseParameters: &notAllowed,
			},
		},
		PassthroughBehavior: awsapigateway.PassthroughBehavior_WHEN_NO_TEMPLATES,
	}), &awsapigateway.MethodOptions{
		MethodResponses: &[]*awsapigateway.MethodResponse{
			{StatusCode: jsii.String("204"), ResponseParameters: declared(preflight)},
			{StatusCode: jsii.String(status), ResponseParameters: declared(notAllowed)},
		},
	})
}

// declared lists a mock's response headers, the static ones and the overrides, for its
// method response.
func declared(static map[string]*string) *map[string]*bool {
	out := map[string]*bool{"method.response.header." + api.HeaderRequestID: jsii.Bool(true)}
	for name := range static {
		out[name] = jsii.Bool(true)
	}
	for _, name := range corsResponseHeaders {
		out["method.response.header."+name] = jsii.Bool(true)
	}
	return &out
}

// gatewayCORSHeaders are the CORS headers of API Gateway's own errors. A gateway response
// maps only literals and request parameters into headers, so it cannot pick one of several
// origins: it carries them for "*" or a single configured origin, and with several origins
// none (the stack warns; browsers then see such errors as CORS failures).
func (s *BrokerStack) gatewayCORSHeaders() map[string]string {
	if len(s.cfg.CORSOrigins) != 1 {
		return nil
	}
	return map[string]string{
		"Access-Control-Allow-Origin":   s.cfg.CORSOrigins[0],
		"Access-Control-Expose-Headers": api.CORSExposeHeaders,
		"Vary":                          "Origin",
	}
}
