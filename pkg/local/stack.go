package local

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sandbox-broker/broker/pkg/api"
	"github.com/sandbox-broker/broker/pkg/app"
	"github.com/sandbox-broker/broker/pkg/auth"
	"github.com/sandbox-broker/broker/pkg/broker"
	"github.com/sandbox-broker/broker/pkg/config"
	"github.com/sandbox-broker/broker/pkg/csp/cspfake"
	"github.com/sandbox-broker/broker/pkg/local/ddblocal"
	"github.com/sandbox-broker/broker/pkg/pool"
)

// Names of the local tokens: what allocations record as their client.
const (
	TrackClient = "local-track"
	AdminClient = "local-admin"
)

// Stack is a running local stack.
type Stack struct {
	// URL is the API Gateway emulator, http://127.0.0.1:<port>.
	URL        string
	TrackToken string
	AdminToken string

	log      *slog.Logger
	server   *http.Server
	served   chan struct{}
	stopJobs context.CancelFunc
	jobs     sync.WaitGroup
	// cleanups undo the start in reverse order: the fake CSP, DynamoDB Local.
	cleanups []func()
	stopOnce sync.Once
}

// part is one line of the banner: what a component is and whether the stack started it.
type part struct {
	name, started, detail string
}

// Run starts the stack, prints what it started and how to call it on out, serves until
// ctx ends (SIGINT/SIGTERM in cmd/local), then stops everything it started.
func Run(ctx context.Context, env config.Env, out, logs io.Writer) error {
	s, err := Start(ctx, env, out, logs)
	if err != nil {
		return err
	}
	<-ctx.Done()
	fmt.Fprintln(out, "Stopping: API, jobs, fake CSP, DynamoDB Local ...")
	s.Stop()
	fmt.Fprintln(out, "Stopped.")
	return nil
}

// Start brings the stack up and returns once GET /healthz answers through the gateway.
// Logs of the functions and jobs (JSON, as in CloudWatch) go to logs; the banner to out.
func Start(ctx context.Context, env config.Env, out, logs io.Writer) (_ *Stack, err error) {
	cfg, err := config.LoadLocal(env)
	if err != nil {
		return nil, err
	}
	o, err := app.NewObservability(env, logs)
	if err != nil {
		return nil, err
	}
	s := &Stack{log: o.Log, served: make(chan struct{})}
	defer func() {
		if err != nil {
			s.Stop()
		}
	}()
	var parts []part

	trackToken, trackHow, err := token(cfg.TrackToken, "BROKER_TRACK_TOKEN")
	if err != nil {
		return nil, err
	}
	adminToken, adminHow, err := token(cfg.AdminToken, "BROKER_ADMIN_TOKEN")
	if err != nil {
		return nil, err
	}
	s.TrackToken, s.AdminToken = trackToken, adminToken
	tokens := auth.Static{}
	for _, t := range []struct {
		name  string
		scope auth.Scope
		plain string
	}{{TrackClient, auth.Track, trackToken}, {AdminClient, auth.Admin, adminToken}} {
		tok, err := auth.NewToken(t.name, t.scope, t.plain)
		if err != nil {
			return nil, err
		}
		tokens = append(tokens, tok)
	}

	// DynamoDB: an existing one, or DynamoDB Local for this run.
	endpoint := cfg.DynamoDBEndpoint
	if endpoint == "" {
		ddb, err := ddblocal.Start(ctx, ddblocal.Options{DataDir: cfg.DataDir})
		if err != nil {
			return nil, err
		}
		s.cleanups = append(s.cleanups, ddb.Stop)
		endpoint = ddb.Endpoint
		where := "in memory"
		if cfg.DataDir != "" {
			where = "data kept in " + cfg.DataDir
		}
		parts = append(parts, part{"DynamoDB", "started", fmt.Sprintf("DynamoDB Local at %s (%s)", endpoint, where)})
	} else {
		parts = append(parts, part{"DynamoDB", "external", "DYNAMODB_ENDPOINT " + endpoint})
	}
	fnEnv := overlay(env, map[string]string{"TABLE_NAME": cfg.TableName, "DYNAMODB_ENDPOINT": endpoint})
	poolCfg, err := config.LoadPool(fnEnv)
	if err != nil {
		return nil, err
	}
	db, err := pool.NewClient(ctx, pool.ClientOptions{Endpoint: poolCfg.Endpoint, Region: poolCfg.Region})
	if err != nil {
		return nil, err
	}
	created, err := pool.EnsureTable(ctx, db, cfg.TableName)
	if err != nil {
		return nil, err
	}
	parts[len(parts)-1].detail += fmt.Sprintf(", table %s (%s)", cfg.TableName, map[bool]string{true: "created", false: "existing"}[created])

	// The CSP: a live one, or the fake, seeded and with the faults of FAKE_CSP_*.
	cspURL, cspToken := cfg.CSPBaseURL, cfg.CSPToken
	if cspURL == "" {
		faults, err := cspfake.FaultsFromEnv(env)
		if err != nil {
			return nil, err
		}
		cspToken = randomToken()
		fake := cspfake.New(cspfake.Options{Token: cspToken})
		if err := fake.Start(); err != nil {
			return nil, err
		}
		s.cleanups = append(s.cleanups, func() { _ = fake.Close() })
		fake.Seed(cspfake.Generate(cfg.SeedSandboxes, cfg.SeedPrefixes)...)
		if err := fake.SetFaults(faults); err != nil {
			return nil, err
		}
		cspURL = fake.URL()
		detail := fmt.Sprintf("fake CSP at %s with %d sandboxes named %s-NNNN", cspURL, cfg.SeedSandboxes, strings.Join(cfg.SeedPrefixes, "-NNNN, "))
		if !reflect.DeepEqual(faults, cspfake.Faults{}) {
			detail += ", with injected faults (FAKE_CSP_*)"
		}
		parts = append(parts, part{"CSP", "started", detail})
	} else {
		parts = append(parts, part{"CSP", "external", "CSP_BASE_URL " + cspURL})
	}
	fnEnv = overlay(fnEnv, map[string]string{"CSP_BASE_URL": cspURL, "CSP_API_TOKEN": cspToken, "CSP_TOKEN_SECRET_ARN": ""})

	// The same functions as in AWS: the jobs, the route handlers (whose trigger routes start
	// the jobs' handlers in the background), the authorizer.
	jobsCfg, err := config.LoadJobs(fnEnv)
	if err != nil {
		return nil, err
	}
	schedule, err := s.jobHandlers(ctx, fnEnv, logs, jobsCfg)
	if err != nil {
		return nil, err
	}
	jobsCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.stopJobs = cancel
	routes, err := app.NewAPI(ctx, fnEnv, logs, backgroundJobs{stack: s, ctx: jobsCtx, schedule: schedule})
	if err != nil {
		return nil, err
	}
	apiCfg, err := config.LoadAPI(fnEnv)
	if err != nil {
		return nil, err
	}
	gateway, err := NewGateway(routes, api.NewAuthorizer(tokens, o.Log), api.NewCORS(apiCfg.CORSOrigins), cfg.AuthorizerCacheTTL, o.Log)
	if err != nil {
		return nil, err
	}

	firstSync := s.runJob(ctx, schedule[0], scheduledEvent)
	parts = append(parts, part{"First sync", "", firstSync})

	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", cfg.Port))
	if err != nil {
		return nil, fmt.Errorf("local: listen on 127.0.0.1:%d: %w (set PORT to another port)", cfg.Port, err)
	}
	s.URL = "http://" + ln.Addr().String()
	s.server = &http.Server{Handler: gateway, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer close(s.served)
		_ = s.server.Serve(ln) // http.ErrServerClosed after Shutdown
	}()

	var every []string
	for _, j := range schedule {
		every = append(every, fmt.Sprintf("%s every %s", j.job.Name, j.every))
		s.jobs.Go(func() { s.repeat(jobsCtx, j) })
	}
	parts = append(parts, part{"Jobs", "started", strings.Join(every, ", ") + fmt.Sprintf(" (JOB_INTERVAL_SCALE=%g)", jobsCfg.IntervalScale)})

	if err := waitHealthy(ctx, s.URL); err != nil {
		return nil, err
	}
	parts = append(parts, part{"API", "started", s.URL + " — API Gateway emulator: authorizer and route functions as in AWS"})
	printBanner(out, parts, s, trackHow, adminHow, cfg.SeedPrefixes)
	return s, nil
}

// Stop shuts the API down, stops the jobs and every process the stack started. It is
// safe to call more than once.
func (s *Stack) Stop() {
	s.stopOnce.Do(func() {
		if s.server != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_ = s.server.Shutdown(ctx)
			cancel()
			<-s.served
		}
		if s.stopJobs != nil {
			s.stopJobs()
			s.jobs.Wait()
		}
		for i := len(s.cleanups) - 1; i >= 0; i-- {
			s.cleanups[i]()
		}
	})
}

// scheduledJob is one job of the job table with its handler and scaled interval.
type scheduledJob struct {
	job   broker.Job
	every time.Duration
	run   app.JobHandler
}

// jobHandlers builds each job's handler exactly as its Lambda function does; the first
// entry is sync.
func (s *Stack) jobHandlers(ctx context.Context, env config.Env, logs io.Writer, cfg config.Jobs) ([]scheduledJob, error) {
	var out []scheduledJob
	for _, j := range broker.Jobs {
		h, err := app.JobFunction(ctx, env, logs, j.Name)
		if err != nil {
			return nil, fmt.Errorf("local: job %s: %w", j.Name, err)
		}
		sj := scheduledJob{job: j, every: cfg.Scale(j.Every), run: h}
		if j.Name == "sync" {
			out = append([]scheduledJob{sj}, out...)
		} else {
			out = append(out, sj)
		}
	}
	if len(out) == 0 || out[0].job.Name != "sync" {
		return nil, errors.New("local: the job table has no sync job")
	}
	return out, nil
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

// jobRunTimeout stands for the job functions' Lambda timeout: minutes, so that a run has
// the CSP request timeout in hand before its deadline (see the README's job section). A
// run that outlasts its interval makes the next one skip on the job's lease, as in AWS.
const jobRunTimeout = 5 * time.Minute

// scheduledEvent is what the local scheduler sends a job, as EventBridge sends its
// scheduled event: no run ID, so the run makes its own.
var scheduledEvent = json.RawMessage(`{"source":"local.scheduler"}`)

// runJob runs a job once on event with the deadline its function would have, and says
// how it went. The run logs its own summary line.
func (s *Stack) runJob(ctx context.Context, j scheduledJob, event json.RawMessage) string {
	ctx, cancel := context.WithTimeout(ctx, jobRunTimeout)
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
	schedule []scheduledJob
}

func (b backgroundJobs) StartJob(_ context.Context, job, runID string) error {
	i := slices.IndexFunc(b.schedule, func(j scheduledJob) bool { return j.job.Name == job })
	if i < 0 {
		return fmt.Errorf("local: no job named %q", job)
	}
	event, err := json.Marshal(app.JobTrigger{RunID: runID})
	if err != nil {
		return err
	}
	b.stack.jobs.Go(func() { b.stack.runJob(b.ctx, b.schedule[i], event) })
	return nil
}

func waitHealthy(ctx context.Context, url string) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(url + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("local: GET %s/healthz did not answer 200: %v", url, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// token returns the configured plain token or a generated one, and says which.
func token(configured, variable string) (string, string, error) {
	if configured == "" {
		return randomToken(), "generated; set " + variable + " to choose it", nil
	}
	return configured, "from " + variable, nil
}

// randomToken is 256 random bits, URL-safe base64: a valid bearer token.
func randomToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// overlay returns env with the values of over taking precedence (an empty value unsets).
func overlay(env config.Env, over map[string]string) config.Env {
	return func(name string) string {
		if v, ok := over[name]; ok {
			return v
		}
		return env(name)
	}
}

func printBanner(out io.Writer, parts []part, s *Stack, trackHow, adminHow string, prefixes []string) {
	fmt.Fprintln(out, "Sandbox Broker — local stack")
	for _, p := range parts {
		started := p.started
		if started != "" {
			started = "[" + started + "] "
		}
		fmt.Fprintf(out, "  %-11s %s%s\n", p.name, started, p.detail)
	}
	fmt.Fprintf(out, "  %-11s track: %s (%s)\n", "Tokens", s.TrackToken, trackHow)
	fmt.Fprintf(out, "  %-11s admin: %s (%s)\n", "", s.AdminToken, adminHow)
	fmt.Fprintf(out, "\nAllocate a sandbox for a student:\n")
	fmt.Fprintf(out, "  curl -sS -i -X POST %s/v1/allocate \\\n    -H 'Authorization: Bearer %s' \\\n    -H 'X-Instruqt-Sandbox-ID: student-1' -H 'X-Instruqt-Track-ID: demo-lab' -H 'X-Sandbox-Name-Prefix: %s'\n",
		s.URL, s.TrackToken, prefixes[0])
	fmt.Fprintf(out, "\nOperate the pool (admin API):\n  BROKER_URL=%s BROKER_ADMIN_TOKEN=%s go run ./cmd/brokerctl stats\n", s.URL, s.AdminToken)
	fmt.Fprintf(out, "  or in the browser: %s/console (sign in with the admin token)\n", s.URL)
	fmt.Fprintf(out, "\nReady at %s. Ctrl-C stops everything.\n", s.URL)
}
