// Package jobs holds the background jobs: the job table (Table, one Job a line, as
// pkg/api's route table holds the routes), the Runner every trigger goes through (an
// EventBridge schedule, the admin API's "run now", the local stack's scheduler), and the
// six jobs' work.
//
// The words, each for one thing:
//
//   - a Job is a line of the table: its name, interval and work;
//   - a run is one execution of a job, under the job's lease (runner.go);
//   - a runState is a run in progress: what it has counted so far, its deadline
//     (runstate.go);
//   - a Summary is what a run did: logged as one line, returned to the caller, and stored
//     as a pool.RunRecord (summary.go, with the outcomes and the alarms).
//
// The jobs' work: sync.go (the CSP listing into the pool), cleanup.go with cleanupbook.go,
// backoff.go, startbucket.go and niosxaasstep.go (deleting released sandboxes upstream),
// expiry.go, stalecleanup.go, poolmetrics.go and usageplans.go. A job decides with
// pkg/broker's use cases where they exist (the client caps, stale removal) and writes
// through pkg/pool.
package jobs
