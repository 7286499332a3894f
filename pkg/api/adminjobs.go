package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/sandbox-broker/broker/pkg/api/wire"
	"github.com/sandbox-broker/broker/pkg/broker"
	"github.com/sandbox-broker/broker/pkg/jobs"
)

// startJob starts the route's job (Route.Starts) in the background and answers 202 at
// once (docs/upstream.md D13: upstream ran sync and cleanup inside the request, for minutes). A run
// holding the job's lease is refused with 409 rather than queueing a run that would only
// be skipped; two triggers racing past this check still never run together, because the
// second run finds the lease taken and records itself as skipped.
//
// The run ID is the request ID: the run's summary, its history entries and this request's
// log line then share one ID.
func (a *API) startJob(ctx context.Context, r *request) (reply, error) {
	if _, err := readQuery(r.ev); err != nil {
		return reply{}, err
	}
	job := r.route.Starts
	err := a.broker.CheckJobIdle(ctx, job)
	var running *broker.JobRunningError
	switch {
	case errors.As(err, &running):
		return reply{}, &Error{http.StatusConflict, CodeJobRunning,
			fmt.Sprintf("Job %s is running (run %s; its lease lasts until %s at the latest); see GET /v1/admin/jobs/%s",
				job, running.RunID, running.Until.Format(time.RFC3339), job), 0}
	case err != nil:
		return reply{}, err
	}
	if err := a.jobs.StartJob(ctx, job, r.id); err != nil {
		return reply{}, fmt.Errorf("start job %s: %w", job, err)
	}
	r.outcome = "started"
	return reply{status: http.StatusAccepted, body: wire.JobStarted{Job: job, RunID: r.id}}, nil
}

// jobRuns lists a job's last runs, newest first: ?limit= (1-100, default 20).
func (a *API) jobRuns(ctx context.Context, r *request) (reply, error) {
	q, err := readQuery(r.ev, "limit")
	if err != nil {
		return reply{}, err
	}
	limit, err := q.integer("limit", defaultRunsLimit, 1, maxRunsLimit)
	if err != nil {
		return reply{}, err
	}
	job := r.ev.PathParameters["name"]
	if !broker.ValidID(job) {
		return reply{}, validationError("The job name must be %s", broker.IDSyntax)
	}
	if _, ok := jobs.Named(job); !ok {
		return reply{}, errJobNotFound
	}
	runs, runsErr := a.broker.JobRuns(ctx, job, limit)
	if runsErr != nil {
		return reply{}, runsErr
	}
	body := wire.JobRuns{Job: job, Runs: make([]wire.JobRun, 0, len(runs))}
	for _, run := range runs {
		b := wire.JobRun{
			RunID: run.RunID, StartedAt: run.StartedAt.UTC().Format(wire.TimeLayout), DurationMS: run.DurationMS, Outcome: run.Outcome,
			Reason: optional(run.Reason), Alarm: optional(run.Alarm), Counts: run.Counts, Errors: run.Errors,
		}
		if b.Counts == nil {
			b.Counts = map[string]int{}
		}
		if b.Errors == nil {
			b.Errors = []string{}
		}
		body.Runs = append(body.Runs, b)
	}
	return reply{status: http.StatusOK, body: body}, nil
}
