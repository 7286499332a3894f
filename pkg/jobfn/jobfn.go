// Package jobfn builds the Lambda handler of a background job from the function's
// environment. Every functions/<job>/main.go is New plus lambda.Start, so the four job
// functions are wired in exactly one place.
package jobfn

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	"github.com/sandbox-broker/broker/pkg/broker"
	"github.com/sandbox-broker/broker/pkg/config"
	"github.com/sandbox-broker/broker/pkg/csp"
	"github.com/sandbox-broker/broker/pkg/pool"
)

// Handler serves one trigger of a job and returns the run's summary. The trigger is plain
// JSON: an EventBridge scheduled event, or a Trigger from the admin API's asynchronous
// invoke. No Lambda event type is needed.
type Handler func(ctx context.Context, event json.RawMessage) (broker.RunSummary, error)

// Trigger is the part of an event the handler reads. A scheduled event has no run_id, so
// the run gets a fresh one; the admin API sends the run_id it already answered with.
type Trigger struct {
	RunID string `json:"run_id,omitempty"`
}

// New loads what the job needs from env (config.LoadPool, config.LoadJobs and, for a job
// with UsesCSP, config.LoadCSP with the token read from Secrets Manager once, here),
// connects to the table, builds the CSP client and the job runner, and returns the job's
// handler. Every configuration problem is reported before the first event is served.
func New(ctx context.Context, job string, env config.Env, logger *slog.Logger) (Handler, error) {
	var def broker.Job
	for _, j := range broker.Jobs {
		if j.Name == job {
			def = j
		}
	}
	if def.Name == "" {
		return nil, fmt.Errorf("jobfn: no job named %q", job)
	}
	// Every loader runs, so one start-up reports every bad variable.
	poolCfg, poolErr := config.LoadPool(env)
	jobsCfg, jobsErr := config.LoadJobs(env)
	var (
		cspCfg config.CSP
		cspErr error
	)
	if def.UsesCSP {
		cspCfg, cspErr = config.LoadCSP(ctx, env, config.SecretsManager(poolCfg.Region))
	}
	if err := errors.Join(poolErr, jobsErr, cspErr); err != nil {
		return nil, err
	}
	deps := broker.JobDeps{PoolConfig: poolCfg, Config: jobsCfg, Logger: logger}
	var err error
	if def.UsesCSP {
		deps.CSP, err = csp.New(csp.Options{
			BaseURL: cspCfg.BaseURL, Token: cspCfg.Token, ConnectTimeout: cspCfg.ConnectTimeout,
			RequestTimeout: cspCfg.RequestTimeout, MaxAttempts: cspCfg.MaxAttempts,
			Breaker: csp.BreakerOptions{Threshold: cspCfg.BreakerThreshold, OpenFor: cspCfg.BreakerOpenFor},
			Logger:  slog.New(warnAndAbove{logger.With("component", "csp").Handler()}),
		})
		if err != nil {
			return nil, err
		}
		deps.CSPRequestTimeout = cspCfg.RequestTimeout
	}
	if deps.Pool, err = pool.Open(ctx, poolCfg); err != nil {
		return nil, err
	}
	runner, err := broker.NewJobRunner(deps)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, event json.RawMessage) (broker.RunSummary, error) {
		var trigger Trigger
		if err := json.Unmarshal(event, &trigger); err != nil {
			return broker.RunSummary{}, fmt.Errorf("jobfn: %s: event is not a JSON object: %w", job, err)
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
