// Package broker holds the use cases: allocate, read, extend and release a sandbox for a
// student, and the admin operations (listing, bulk retirement, drains). It decides;
// pkg/pool stores. The background jobs that call it are in pkg/jobs.
package broker
