package app

import (
	"github.com/sandbox-broker/broker/pkg/api"
	"github.com/sandbox-broker/broker/pkg/jobs"
)

// Kind is a kind of function: the constructor its main calls (see the package doc), and so
// what its bootstrap links. Two functions of one kind differ only in the name their main
// passes, so their bootstraps are the same size; testdata/bootstrap-sizes.json records one
// size per kind.
type Kind string

const (
	KindRoute         Kind = "route"           // a route that starts no job (Route)
	KindTriggerRoute  Kind = "trigger route"   // an admin route that starts a job (trigger.Route)
	KindAuthorizer    Kind = "authorizer"      // the Lambda authorizer (authorizer.New)
	KindJob           Kind = "job"             // a job (job.Function)
	KindUsagePlansJob Kind = "usage-plans job" // a job with UsesAPIGateway (job.Function with job.WithUsagePlans)
)

// Kinds lists every kind, in the order the size record and the cold-start table use.
var Kinds = []Kind{KindRoute, KindTriggerRoute, KindAuthorizer, KindJob, KindUsagePlansJob}

// KindOf is the kind of the function in functions/<function>, from the route and job
// tables; false for a name in neither.
func KindOf(function string) (Kind, bool) {
	if function == api.AuthorizerFunction {
		return KindAuthorizer, true
	}
	if r, ok := api.RouteByName(function); ok {
		if r.Starts != "" {
			return KindTriggerRoute, true
		}
		return KindRoute, true
	}
	if j, ok := jobs.Named(function); ok {
		if j.UsesAPIGateway {
			return KindUsagePlansJob, true
		}
		return KindJob, true
	}
	return "", false
}
