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
	"github.com/sandbox-broker/broker/pkg/app/job"
	"github.com/sandbox-broker/broker/pkg/broker"
	"github.com/sandbox-broker/broker/pkg/config"
)

// startJobs builds each job's handler exactly as its Lambda function does, runs the
// first sync, then runs every job but those that use API Gateway on its (scaled) interval.
// It returns what starts runs for the admin trigger routes.
func (s *Stack) startJobs(ctx context.Context, env config.Env, logs io.Writer) (backgroundJobs, []part, error) {
	cfg, err := config.LoadJobs(env)
	if err != nil {
		return backgroundJobs{}, nil, err
	}
	schedule := map[string]scheduledJob{}
	var local []broker.Job
	for _, j := range broker.Jobs {
		if j.UsesAPIGateway {
			continue // there is no API Gateway here: the gateway emulator enforces the client limits itself
		}
		local = append(local, j)
		h, err := job.Function(ctx, env, logs, j.Name)
		if err != nil {
			return backgroundJobs{}, nil, fmt.Errorf("local: job %s: %w", j.Name, err)
		}
		schedule[j.Name] = scheduledJob{job: j, every: cfg.Scale(j.Every), run: h}
	}
	first, ok := schedule["sync"]
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
	for _, j := range local {
		every = append(every, fmt.Sprintf("%s every %s", j.Name, schedule[j.Name].every))
		s.jobs.Go(func() { s.repeat(jobsCtx, schedule[j.Name]) })
	}
	return backgroundJobs{stack: s, ctx: jobsCtx, schedule: schedule}, []part{
		{"First sync", "", firstSync},
		{"Jobs", "started", strings.Join(every, ", ") + fmt.Sprintf(" (JOB_INTERVAL_SCALE=%g)", cfg.IntervalScale)},
	}, nil
}

// scheduledJob is one job of the job table with its handler and scaled interval.
type scheduledJob struct {
	job   broker.Job
	every time.Duration
	run   job.Handler
}

// repeat runs a job every interval, like its EventBridge rate schedule.
func (s *Stack) repeat(ctx context.Context, j scheduledJob) {
	t := time.NewTicker(j.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.runJob(ctx, j, scheduledEvent)
		}
	}
}

// scheduledEvent is what the local scheduler sends a job, as EventBridge sends its
// scheduled event: no run ID, so the run makes its own.
var scheduledEvent = json.RawMessage(`{"source":"local.scheduler"}`)

// runJob runs a job once on event with the deadline its function has in AWS
// (broker.Job.Timeout; a run that outlasts its scaled interval makes the next one skip on
// the job's lease, as in AWS), and says how it went. The run logs its own summary line.
func (s *Stack) runJob(ctx context.Context, j scheduledJob, event json.RawMessage) string {
	ctx, cancel := context.WithTimeout(ctx, j.job.Timeout())
	defer cancel()
	sum, err := j.run(ctx, event)
	if err != nil {
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
// asynchronous invoke does in AWS: the job's handler (the one the schedule uses) gets a
// JobTrigger with the run ID and runs in the background with the job function's timeout,
// and the request returns at once. Stop waits for such runs like scheduled ones.
type backgroundJobs struct {
	stack    *Stack
	ctx      context.Context // the stack's jobs context, not the request's: the run outlives it
	schedule map[string]scheduledJob
}

func (b backgroundJobs) StartJob(_ context.Context, job, runID string) error {
	j, ok := b.schedule[job]
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
