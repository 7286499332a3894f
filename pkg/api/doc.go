// Package api is the broker's HTTP API as API Gateway (REST, Lambda proxy integration)
// delivers it: the route table, the adapters between API Gateway events and the use cases
// of pkg/broker, strict header parsing, the one error envelope, and the authorizer's
// Lambda adapter. It and pkg/local are the only packages that know Lambda event types.
package api
