// Package job builds the functions of the jobs (broker.Jobs).
package job

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/sandbox-broker/broker/pkg/app"
	"github.com/sandbox-broker/broker/pkg/app/awssecrets"
	"github.com/sandbox-broker/broker/pkg/broker"
	"github.com/sandbox-broker/broker/pkg/config"
	"github.com/sandbox-broker/broker/pkg/csp"
)

// Handler serves one trigger of a job and returns the run's summary. The trigger is plain
// JSON: an EventBridge scheduled event, or a Trigger from the admin API's asynchronous
// invoke. No Lambda event type is needed.
type Handler func(ctx context.Context, event json.RawMessage) (broker.RunSummary, error)

// Function is the Lambda handler of the job named job: it loads what the job needs from
// env (config.LoadPool, config.LoadJobs and, for a job with UsesCSP, config.LoadCSP with
// the token read from Secrets Manager once, here), connects to the table, builds the CSP
// client and the job runner. Every configuration problem is reported before the first
// event is served. Logs go to out.
func Function(ctx context.Context, env config.Env, out io.Writer, job string) (Handler, error) {
	def, ok := broker.JobNamed(job)
	if !ok {
		return nil, fmt.Errorf("app: no job named %q", job)
	}
	// Every loader runs, so one start-up reports every bad variable.
	o, obsErr := app.NewObservability(env, out)
	poolCfg, poolErr := config.LoadPool(env)
	jobsCfg, jobsErr := config.LoadJobs(env)
	var (
		cspCfg config.CSP
		cspErr error
	)
	if def.UsesCSP {
		cspCfg, cspErr = config.LoadCSP(ctx, env, awssecrets.Fetcher(poolCfg.Region))
	}
	if err := errors.Join(obsErr, poolErr, jobsErr, cspErr); err != nil {
		return nil, err
	}
	deps := broker.JobDeps{PoolConfig: poolCfg, Config: jobsCfg, Logger: o.Log, Metrics: o.Metrics}
	var err error
	if def.UsesCSP {
		deps.CSP, err = csp.New(csp.Options{
			BaseURL: cspCfg.BaseURL, Token: cspCfg.Token, ConnectTimeout: cspCfg.ConnectTimeout,
			RequestTimeout: cspCfg.RequestTimeout, MaxAttempts: cspCfg.MaxAttempts, MaxAccounts: cspCfg.ListMaxAccounts,
			Breaker: csp.BreakerOptions{Threshold: cspCfg.BreakerThreshold, OpenFor: cspCfg.BreakerOpenFor},
			Logger:  slog.New(warnAndAbove{o.Log.With("component", "csp").Handler()}),
		})
		if err != nil {
			return nil, err
		}
		deps.CSPRequestTimeout = cspCfg.RequestTimeout
	}
	if deps.Pool, err = app.OpenPool(ctx, poolCfg); err != nil {
		return nil, err
	}
	runner, err := broker.NewJobRunner(deps)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, event json.RawMessage) (broker.RunSummary, error) {
		var trigger app.JobTrigger
		if err := json.Unmarshal(event, &trigger); err != nil {
			return broker.RunSummary{}, fmt.Errorf("app: %s: event is not a JSON object: %w", job, err)
		}
		return runner.RunWithID(ctx, job, trigger.RunID)
	}, nil
}

// warnAndAbove passes on only warnings and errors (breaker transitions, malformed listing
// entries): the CSP client's routine info lines would add to the one summary line a run
// logs.
type warnAndAbove struct{ slog.Handler }

func (h warnAndAbove) Enabled(ctx context.Context, level slog.Level) bool {
	return level >= slog.LevelWarn && h.Handler.Enabled(ctx, level)
}

func (h warnAndAbove) WithAttrs(attrs []slog.Attr) slog.Handler {
	return warnAndAbove{h.Handler.WithAttrs(attrs)}
}

func (h warnAndAbove) WithGroup(name string) slog.Handler {
	return warnAndAbove{h.Handler.WithGroup(name)}
}
