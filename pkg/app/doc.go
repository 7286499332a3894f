// Package app wires the functions together from the environment: configuration, AWS
// clients (traced through pkg/obs), the pool, the use cases and the API. It is the one
// place that does so; every functions/<fn>/main.go and the local stack call it.
//
// Each kind of function has its own constructor, in a package that imports only what that
// kind needs, so a bootstrap links no client it never calls: Route here for the plain
// routes, trigger.Route for the admin routes that start a job (the Lambda client),
// authorizer.New for the authorizer and job.Function for the jobs (both with the Secrets
// Manager client of awssecrets); the usage-plans job passes job.WithUsagePlans(usagejob.Build),
// the one package that links the API Gateway client; eventfn.Consumer (the table stream's
// consumer) and eventfn.ReplayRoute, the only ones that link the EventBridge and SQS clients.
//
// What the platform provides comes in through RouteStarting (the job starts of a trigger
// route: Lambda's asynchronous invoke) and authorizer.FromSecret (the token secret's
// reader: Secrets Manager), which Route, trigger.Route and authorizer.New call. The local
// stack calls them too, for every instance of every function, with its own.
package app
