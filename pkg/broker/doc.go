// Package broker holds the use cases: allocate, read and release a sandbox for a student,
// and (in later files) the admin operations and the jobs' logic. It decides; pkg/pool
// stores.
package broker
