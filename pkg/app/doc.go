// Package app wires the functions together from the environment: configuration, AWS
// clients (traced through pkg/obs), the pool, the use cases and the API. It is the one
// place that does so; every functions/<fn>/main.go and the local stack call it.
package app
