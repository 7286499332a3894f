package local

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/sandbox-broker/broker/pkg/app"
	"github.com/sandbox-broker/broker/pkg/config"
	"github.com/sandbox-broker/broker/pkg/jobs"
)

// localJobs are the jobs the stack runs: all but those that use API Gateway, since the
// gateway emulator enforces the clients' limits itself.
func localJobs() []jobs.Job {
	var local []jobs.Job
	for _, j := range jobs.Table {
		if !j.UsesAPIGateway {
			local = append(local, j)
		}
	}
	return local
}

// startJobs makes each job's function, built as its Lambda function builds it, runs the
// first sync, then invokes every job on its (scaled) interval as EventBridge does:
// asynchronously, whether or not the last run has ended. It returns what starts runs for
// the admin trigger routes.
func (s *Stack) startJobs(ctx context.Context, env config.Env, logs io.Writer) (backgroundJobs, []part, error) {
	cfg, err := config.LoadJobs(env)
	if err != nil {
		return backgroundJobs{}, nil, err
	}
	s.scheduled = map[string]scheduledJob{}
	for _, j := range localJobs() {
		fn, err := s.addJob(ctx, env, logs, j)
		if err != nil {
			return backgroundJobs{}, nil, err
		}
		s.scheduled[j.Name] = scheduledJob{job: j, every: cfg.Scale(j.Every), fn: fn, scale: cfg.Scale}
	}
	first, ok := s.scheduled["sync"]
	if !ok {
		return backgroundJobs{}, nil, errors.New("local: the job table has no sync job")
	}
	firstSync := s.runJob(ctx, first, scheduledEvent)

	jobsCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.shutdowns = append(s.shutdowns, func() {
		cancel()
		s.jobs.Wait()
	})
	var every []string
	for _, j := range localJobs() {
		every = append(every, fmt.Sprintf("%s every %s", j.Name, s.scheduled[j.Name].every))
		s.jobs.Go(func() { s.repeat(jobsCtx, s.scheduled[j.Name]) })
	}
	return backgroundJobs{stack: s, ctx: jobsCtx}, []part{
		{"First sync", "", firstSync},
		{"Jobs", "started", strings.Join(every, ", ") + fmt.Sprintf(" (JOB_INTERVAL_SCALE=%g)", cfg.IntervalScale)},
	}, nil
}

// scheduledJob is one job of the job table with its function and scaled interval.
type scheduledJob struct {
	job   jobs.Job
	every time.Duration
	fn    *jobFunction
	// scale is JOB_INTERVAL_SCALE, applied to Lambda's retries of a throttled event too.
	scale func(time.Duration) time.Duration
}

// repeat invokes a job every interval, like its EventBridge rate schedule: each event on
// its own, so one that finds the last run in flight is throttled (the job's reservation)
// and retried as Lambda retries it.
func (s *Stack) repeat(ctx context.Context, j scheduledJob) {
	t := time.NewTicker(j.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.jobs.Go(func() { s.runJob(ctx, j, scheduledEvent) })
		}
	}
}

// scheduledEvent is what the local scheduler sends a job, as EventBridge sends its
// scheduled event: no run ID, so the run makes its own.
var scheduledEvent = json.RawMessage(`{"source":"local.scheduler"}`)

// runJob invokes a job with event as Lambda's asynchronous invoke does (its function
// ends each run after jobs.Job.Timeout) and says how it went. The run logs its own
// summary line; a run that failed or was dropped is logged here.
func (s *Stack) runJob(ctx context.Context, j scheduledJob, event json.RawMessage) string {
	sum, err := j.fn.invokeQueued(ctx, event, j.scale)
	if err != nil {
		s.log.ErrorContext(ctx, "local: a job's invocation failed", "job", j.job.Name, "error", err.Error())
		return fmt.Sprintf("%s failed: %v", j.job.Name, err)
	}
	counts := make([]string, 0, len(sum.Counts))
	for k, v := range sum.Counts {
		counts = append(counts, fmt.Sprintf("%s %d", k, v))
	}
	slices.Sort(counts)
	return fmt.Sprintf("%s %s (%s)", j.job.Name, sum.Outcome, strings.Join(counts, ", "))
}

// backgroundJobs starts the runs the admin trigger routes ask for, as Lambda's
// asynchronous invoke does in AWS: the job's function gets a JobTrigger with the run ID in
// the background, and the request returns at once. Stop waits for such runs like
// scheduled ones.
type backgroundJobs struct {
	stack *Stack
	ctx   context.Context // the stack's jobs context, not the request's: the run outlives it
}

func (b backgroundJobs) StartJob(_ context.Context, job, runID string) error {
	j, ok := b.stack.scheduled[job]
	if !ok {
		return fmt.Errorf("local: no job named %q", job)
	}
	event, err := json.Marshal(app.JobTrigger{RunID: runID})
	if err != nil {
		return err
	}
	b.stack.jobs.Go(func() { b.stack.runJob(b.ctx, j, event) })
	return nil
}
