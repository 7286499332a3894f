// Package tablecheck holds the route table (pkg/api.Routes) and the job table
// (pkg/jobs.Table) to the repository. Its test, run by `make check` (go test
// ./internal/tablecheck), reads the tables and the tree and names, under each route and
// job, every piece that is missing, wrong or left over: the table line, the handler or
// work method, functions/<name>/main.go, events/<name>.json, the route's operation in
// api/openapi.yaml with the answers every route of its kind gives, the bootstrap size of
// its kind of function, and its entry in Unexercised. It starts no DynamoDB Local, no
// CDK synthesis and no bootstrap: it is the quick loop of the README's checklists, and
// `make test` runs the behaviour behind each piece.
package tablecheck
