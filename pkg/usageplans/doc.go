// Package usageplans keeps API Gateway's usage plans in step with the tokens secret: the
// work of the usage-plans job (jobs.Table). Each client of the secret gets a usage plan on
// the broker's REST API stage, throttled by the client's rate and burst, holding one API
// key per token of the client, whose value is the token's auth.Token.UsageKey on that REST
// API — the usageIdentifierKey the authorizer answers for that token on that API. It is a
// package of its own so that only the job functions link the API Gateway client.
package usageplans
