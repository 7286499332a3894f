package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/sandbox-broker/broker/pkg/api"
	"github.com/sandbox-broker/broker/pkg/broker"
	"github.com/sandbox-broker/broker/pkg/config"
	"github.com/sandbox-broker/broker/pkg/obs"
	"github.com/sandbox-broker/broker/pkg/pool"
)

// Observability is the logger and metrics of one process.
type Observability struct {
	Log     *slog.Logger
	Metrics *obs.Metrics
}

// NewObservability reads LOG_LEVEL and METRICS_NAMESPACE; logs and metrics go to out
// (stdout in Lambda, where CloudWatch collects both).
func NewObservability(env config.Env, out io.Writer) (Observability, error) {
	cfg, err := config.LoadObs(env)
	if err != nil {
		return Observability{}, err
	}
	return Observability{Log: obs.NewLogger(out, cfg.LogLevel), Metrics: obs.NewMetrics(out, cfg.MetricsNamespace)}, nil
}

// OpenPool connects to the configured table with X-Ray tracing of every DynamoDB call. The
// pool reads the time from now; nil is the wall clock, as in Lambda (the local stack passes
// its own, which its tests pin to bring due work on).
func OpenPool(ctx context.Context, cfg config.Pool, now func() time.Time) (*pool.Pool, error) {
	db, err := pool.NewClient(ctx, pool.ClientOptions{Endpoint: cfg.Endpoint, Region: cfg.Region, APIOptions: obs.AWSAPIOptions()})
	if err != nil {
		return nil, err
	}
	return pool.New(db, cfg.TableName, pool.Options{Now: now, HistoryTTL: cfg.HistoryTTL, TombstoneTTL: cfg.TombstoneTTL}), nil
}

// NewAPI builds the API of the route functions from env (the pool settings, CORS, logs);
// jobs starts the runs of the admin trigger routes (nil for a function that serves none);
// now is its pool's clock (OpenPool); more adds what one kind of route needs besides
// (eventfn.ReplayRoute's replayer).
func NewAPI(ctx context.Context, env config.Env, out io.Writer, jobs api.JobStarter, now func() time.Time, more ...func(*api.Deps)) (*api.API, error) {
	o, obsErr := NewObservability(env, out)
	poolCfg, poolErr := config.LoadPool(env)
	apiCfg, apiErr := config.LoadAPI(env)
	if err := errors.Join(obsErr, poolErr, apiErr); err != nil {
		return nil, err
	}
	p, err := OpenPool(ctx, poolCfg, now)
	if err != nil {
		return nil, err
	}
	deps := api.Deps{Broker: broker.New(p, poolCfg), Ready: p.Ping, Log: o.Log, Metrics: o.Metrics, Config: apiCfg, Jobs: jobs}
	for _, add := range more {
		add(&deps)
	}
	return api.New(deps), nil
}

// Route is the Lambda handler of the plain route named name: one that starts no job
// (trigger.Route builds those, with the Lambda client only they link).
func Route(ctx context.Context, env config.Env, out io.Writer, name string) (api.LambdaHandler, error) {
	route, ok := api.RouteByName(name)
	if !ok {
		return nil, fmt.Errorf("app: no route named %q", name)
	}
	if route.Starts != "" {
		return nil, fmt.Errorf("app: route %s starts the %s job: its function is built by trigger.Route", name, route.Starts)
	}
	if route.ReplaysEvents {
		return nil, fmt.Errorf("app: route %s replays events: its function is built by eventfn.ReplayRoute", name)
	}
	return RouteStarting(ctx, env, out, name, nil, nil)
}

// RouteStarting is the Lambda handler of the route named name, whose job runs, for a route
// that starts one, jobs starts, and whose pool reads the time from now (nil: the wall
// clock). It is what Route (jobs nil) and trigger.Route (Lambda's asynchronous invoke)
// build, and what the local stack builds for each of its instances, with its own
// asynchronous invocations as jobs and its own clock.
func RouteStarting(ctx context.Context, env config.Env, out io.Writer, name string, jobs api.JobStarter, now func() time.Time) (api.LambdaHandler, error) {
	a, err := NewAPI(ctx, env, out, jobs, now)
	if err != nil {
		return nil, err
	}
	return a.Function(name)
}

// JobTrigger is the part of a job's event that a trigger route writes and the job reads. A
// scheduled event has no run_id, so the run gets a fresh one; the admin API sends the
// run_id it already answered with.
type JobTrigger struct {
	RunID string `json:"run_id,omitempty"`
}

// Exit ends a function whose start-up failed, with one JSON line saying why. Lambda shows
// it in the log and retries the start on the next invocation.
func Exit(err error) {
	obs.NewLogger(os.Stdout, slog.LevelError).Error("start-up failed", "error", err.Error())
	os.Exit(1)
}
