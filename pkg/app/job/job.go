// Package job builds the functions of the jobs (jobs.Table).
package job

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/sandbox-broker/broker/pkg/app"
	"github.com/sandbox-broker/broker/pkg/app/awssecrets"
	"github.com/sandbox-broker/broker/pkg/breaker"
	"github.com/sandbox-broker/broker/pkg/config"
	"github.com/sandbox-broker/broker/pkg/csp"
	"github.com/sandbox-broker/broker/pkg/jobs"
	"github.com/sandbox-broker/broker/pkg/niosxaas"
)

// Handler serves one trigger of a job and returns the run's summary. The trigger is plain
// JSON: an EventBridge scheduled event, or a Trigger from the admin API's asynchronous
// invoke. No Lambda event type is needed.
type Handler func(ctx context.Context, event json.RawMessage) (jobs.Summary, error)

// Function is the Lambda handler of the job named job: it loads what the job needs from
// env (config.LoadPool, config.LoadJobs and, for a job with UsesCSP, config.LoadCSP with
// the token read from Secrets Manager once, here; for a job with UsesNIOSXaaS,
// NIOSXaaSStep; for a job with UsesAPIGateway, the WithUsagePlans builder), connects to the table, builds the CSP
// client and the job runner. Every configuration problem is reported before the first
// event is served. Logs go to out.
func Function(ctx context.Context, env config.Env, out io.Writer, job string, opts ...Option) (Handler, error) {
	def, ok := jobs.Named(job)
	if !ok {
		return nil, fmt.Errorf("app: no job named %q", job)
	}
	var opt options
	for _, apply := range opts {
		apply(&opt)
	}
	// Every loader runs, so one start-up reports every bad variable.
	o, obsErr := app.NewObservability(env, out)
	poolCfg, poolErr := config.LoadPool(env)
	jobsCfg, jobsErr := config.LoadJobs(env)
	// One Secrets Manager client for every secret the job reads, built on the first read.
	fetch := awssecrets.Fetcher(poolCfg.Region)
	var (
		cspCfg config.CSP
		cspErr error
	)
	if def.UsesCSP {
		cspCfg, cspErr = config.LoadCSP(ctx, env, fetch)
	}
	deps := jobs.Deps{PoolConfig: poolCfg, Config: jobsCfg, Logger: o.Log, Metrics: o.Metrics}
	var niosErr error
	if def.UsesNIOSXaaS {
		deps.NIOSXaaS, deps.NIOSXaaSMaxAttempts, niosErr = NIOSXaaSStep(ctx, env, fetch, o.Log)
	}
	var upErr error
	if def.UsesAPIGateway {
		if opt.usagePlans == nil {
			upErr = fmt.Errorf("app: job %s uses API Gateway: its function must pass job.WithUsagePlans", job)
		} else {
			deps.UsagePlans, upErr = opt.usagePlans(ctx, env, fetch, poolCfg.Region)
		}
	}
	if err := errors.Join(obsErr, poolErr, jobsErr, cspErr, niosErr, upErr); err != nil {
		return nil, err
	}
	var err error
	if def.UsesCSP {
		deps.CSP, err = csp.New(csp.Options{
			BaseURL: cspCfg.BaseURL, Token: cspCfg.Token, ConnectTimeout: cspCfg.ConnectTimeout,
			RequestTimeout: cspCfg.RequestTimeout, MaxAttempts: cspCfg.MaxAttempts, MaxAccounts: cspCfg.ListMaxAccounts,
			MaxConcurrentCalls: jobsCfg.CleanupMaxInFlight,
			Breaker:            breaker.Options{Threshold: cspCfg.BreakerThreshold, OpenFor: cspCfg.BreakerOpenFor},
			Logger:             slog.New(warnAndAbove{o.Log.With("component", "csp").Handler()}),
		})
		if err != nil {
			return nil, err
		}
		deps.CSPRequestTimeout = cspCfg.RequestTimeout
	}
	if deps.Pool, err = app.OpenPool(ctx, poolCfg, opt.now); err != nil {
		return nil, err
	}
	runner, err := jobs.NewRunner(deps)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, event json.RawMessage) (jobs.Summary, error) {
		var trigger app.JobTrigger
		if err := json.Unmarshal(event, &trigger); err != nil {
			return jobs.Summary{}, fmt.Errorf("app: %s: event is not a JSON object: %w", job, err)
		}
		return runner.RunWithID(ctx, job, trigger.RunID)
	}, nil
}

// NIOSXaaSStep builds the client of cleanup's NIOSXaaS pre-delete step from env
// (config.LoadNIOSXaaS, its credentials secret read with fetch, as the CSP token is) and
// returns it with NIOSXAAS_MAX_ATTEMPTS; a nil client when NIOSXAAS_ENABLED is false. The
// client lives as long as the function, so its session outlives a run. Its logs (each
// service deleted, or in shadow mode each one it would delete, and breaker transitions)
// go to log, when not nil.
func NIOSXaaSStep(ctx context.Context, env config.Env, fetch config.SecretFetcher, log *slog.Logger) (*niosxaas.Client, int, error) {
	cfg, err := config.LoadNIOSXaaS(ctx, env, fetch)
	if err != nil || !cfg.Enabled {
		return nil, 0, err
	}
	if log != nil {
		log = log.With("component", "niosxaas")
	}
	client, err := niosxaas.New(niosxaas.Options{
		BaseURL: cfg.BaseURL, Credentials: cfg.Credentials, ServiceName: cfg.ServiceName, ShadowMode: cfg.ShadowMode,
		Timeout: cfg.Timeout, Breaker: breaker.Options{Threshold: cfg.BreakerThreshold, OpenFor: cfg.BreakerOpenFor},
		Logger: log,
	})
	if err != nil {
		return nil, 0, err
	}
	return client, cfg.MaxAttempts, nil
}

// Option adds to what Function builds.
type Option func(*options)

type options struct {
	usagePlans UsagePlansBuilder
	now        func() time.Time
}

// UsagePlansBuilder builds the work of a job with UsesAPIGateway from env, reading secrets
// with fetch, for API Gateway in region (usagejob.Build).
type UsagePlansBuilder func(ctx context.Context, env config.Env, fetch config.SecretFetcher, region string) (jobs.UsagePlans, error)

// WithUsagePlans gives Function the builder of the usage-plans job's work. Only that job's
// main passes it, so only its bootstrap links the API Gateway client.
func WithUsagePlans(b UsagePlansBuilder) Option {
	return func(o *options) { o.usagePlans = b }
}

// WithClock makes the job's pool read the time from now instead of the wall clock: the
// local stack passes its own clock, which its tests pin to bring due work on (app.OpenPool).
func WithClock(now func() time.Time) Option {
	return func(o *options) { o.now = now }
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
