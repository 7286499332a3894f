package local

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sandbox-broker/broker/internal/ddblimits"
	"github.com/sandbox-broker/broker/internal/ddblocal"
	"github.com/sandbox-broker/broker/internal/ddblocal/warmup"
	"github.com/sandbox-broker/broker/pkg/api"
	"github.com/sandbox-broker/broker/pkg/app"
	"github.com/sandbox-broker/broker/pkg/auth"
	"github.com/sandbox-broker/broker/pkg/config"
	"github.com/sandbox-broker/broker/pkg/csp/cspfake"
	"github.com/sandbox-broker/broker/pkg/pool"
)

// Names of the local tokens: what allocations record as their client.
const (
	TrackClient   = "local-track"
	AdminClient   = "local-admin"
	MetricsClient = "local-metrics"
)

// Stack is a running local stack.
type Stack struct {
	// URL is the API Gateway emulator, http://127.0.0.1:<port>.
	URL          string
	TrackToken   string
	AdminToken   string
	MetricsToken string
	// ExecutionModel is how the functions run (config.ExecutionInstances unless
	// LOCAL_EXECUTION_MODEL says otherwise): every figure measured here names it.
	ExecutionModel string

	log    *slog.Logger
	table  string
	lambda *lambdaService
	// jobs are the scheduled and admin-started runs, which Stop waits for.
	jobs sync.WaitGroup
	// scheduled are the jobs the stack runs, by name (startJobs).
	scheduled map[string]scheduledJob
	// clock is the time every function's pool reads (app.OpenPool).
	clock clock
	// shutdowns undo the start in reverse order; each part registers its own.
	shutdowns []func()
	stopOnce  sync.Once
	// replayer serves the events' replay route (startEvents); nil with events off.
	replayer api.EventReplayer
}

// clock is the wall clock, unless the stack's tests pinned it to an instant: they bring due
// work on at an exact moment (an expiry) this way. Nothing else pins it.
type clock struct{ pinned atomic.Pointer[time.Time] }

func (c *clock) now() time.Time {
	if at := c.pinned.Load(); at != nil {
		return *at
	}
	return time.Now()
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
	fmt.Fprintln(out, "Stopping: API, jobs, events, fake CSP, DynamoDB Local ...")
	s.Stop()
	fmt.Fprintln(out, "Stopped.")
	return nil
}

// Start brings the stack up and returns once GET /healthz answers through the gateway.
// Logs of the functions and jobs (JSON, as in CloudWatch) go to logs; the banner to out.
// Each part starts one component, registers its shutdown and returns its banner lines;
// what a part needs from another it gets as an argument.
func Start(ctx context.Context, env config.Env, out, logs io.Writer) (_ *Stack, err error) {
	cfg, err := config.LoadLocal(env)
	if err != nil {
		return nil, err
	}
	o, err := app.NewObservability(env, logs)
	if err != nil {
		return nil, err
	}
	s := &Stack{log: o.Log, table: cfg.TableName}
	defer func() {
		if err != nil {
			s.Stop()
		}
	}()
	tokens, tokenLines, err := s.startTokens(cfg)
	if err != nil {
		return nil, err
	}
	lambdaLine, err := s.startLambda(cfg, o.Log)
	if err != nil {
		return nil, err
	}
	endpoint, dbLine, err := s.startDynamoDB(ctx, cfg, env)
	if err != nil {
		return nil, err
	}
	fnEnv := overlay(env, map[string]string{"TABLE_NAME": cfg.TableName, "DYNAMODB_ENDPOINT": endpoint, "TOKENS_SECRET_ARN": localTokensSecret})
	eventsLine, err := s.startEvents(ctx, cfg, fnEnv, logs, endpoint)
	if err != nil {
		return nil, err
	}
	cspURL, cspToken, cspLine, err := s.startCSP(cfg, env)
	if err != nil {
		return nil, err
	}
	fnEnv = overlay(fnEnv, map[string]string{"CSP_BASE_URL": cspURL, "CSP_API_TOKEN": cspToken, "CSP_TOKEN_SECRET_ARN": ""})
	var niosLines []part
	if cfg.FakeNIOSXaaS {
		niosEnv, line, err := s.startNIOSXaaS(cfg, env)
		if err != nil {
			return nil, err
		}
		fnEnv, niosLines = overlay(fnEnv, niosEnv), []part{line}
	}
	jobs, jobLines, err := s.startJobs(ctx, fnEnv, logs)
	if err != nil {
		return nil, err
	}
	apiLine, err := s.startAPI(ctx, cfg, fnEnv, logs, tokens, jobs, o.Log)
	if err != nil {
		return nil, err
	}
	parts := slices.Concat([]part{dbLine, cspLine}, niosLines, []part{lambdaLine}, jobLines, []part{eventsLine, apiLine}, tokenLines)
	printBanner(out, parts, s, cfg.SeedPrefixes)
	return s, nil
}

// startDynamoDB uses an existing DynamoDB, or starts DynamoDB Local for this run, and
// makes sure the table exists; with DYNAMODB_LIMITS it starts the proxy that applies
// DynamoDB's limits in front of it. It returns the endpoint the functions use.
func (s *Stack) startDynamoDB(ctx context.Context, cfg config.Local, env config.Env) (string, part, error) {
	endpoint := cfg.DynamoDBEndpoint
	line := part{"DynamoDB", "external", "DYNAMODB_ENDPOINT " + endpoint}
	if endpoint == "" {
		ddb, err := ddblocal.Start(ctx, ddblocal.Options{DataDir: cfg.DataDir})
		if err != nil {
			return "", part{}, err
		}
		s.shutdowns = append(s.shutdowns, ddb.Stop)
		endpoint = ddb.Endpoint
		where := "in memory"
		if cfg.DataDir != "" {
			where = "data kept in " + cfg.DataDir
		}
		line = part{"DynamoDB", "started", fmt.Sprintf("DynamoDB Local at %s (%s)", endpoint, where)}
	}
	poolCfg, err := config.LoadPool(overlay(env, map[string]string{"TABLE_NAME": cfg.TableName, "DYNAMODB_ENDPOINT": endpoint}))
	if err != nil {
		return "", part{}, err
	}
	db, err := pool.NewClient(ctx, pool.ClientOptions{Endpoint: poolCfg.Endpoint, Region: poolCfg.Region})
	if err != nil {
		return "", part{}, err
	}
	if line.started == "started" && cfg.WarmRounds > 0 {
		// Ready means warm: the first burst must not pay for DynamoDB Local's JIT.
		// The warm-up is a speed-up, never a step the stack depends on: when it runs out of
		// time or DynamoDB Local refuses its burst (a loaded machine's
		// lock-wait timeouts), the stack serves, less warm, and says so.
		if err := warmup.Run(ctx, db, cfg.WarmRounds); err != nil {
			line.detail += ", warm-up cut short (" + firstLine(err.Error()) + ")"
		} else {
			line.detail += ", warmed up"
		}
	}
	created, err := pool.EnsureTable(ctx, db, cfg.TableName)
	if err != nil {
		return "", part{}, err
	}
	line.detail += fmt.Sprintf(", table %s (%s)", cfg.TableName, map[bool]string{true: "created", false: "existing"}[created])
	if cfg.DynamoDBLimits != nil {
		proxy, err := ddblimits.Start(endpoint, *cfg.DynamoDBLimits)
		if err != nil {
			return "", part{}, err
		}
		s.shutdowns = append(s.shutdowns, func() {
			proxy.Stop()
			s.log.Info("DynamoDB limits", "counts", proxy.Counts().String())
		})
		endpoint = proxy.URL
		line.detail += ", behind DynamoDB's limits at " + proxy.URL + " (DYNAMODB_LIMITS)"
	}
	return endpoint, line, nil
}

// startCSP uses a live CSP, or starts the fake, seeded and with the faults of FAKE_CSP_*.
// It returns the CSP's URL and token.
func (s *Stack) startCSP(cfg config.Local, env config.Env) (url, token string, line part, err error) {
	if cfg.CSPBaseURL != "" {
		return cfg.CSPBaseURL, cfg.CSPToken, part{"CSP", "external", "CSP_BASE_URL " + cfg.CSPBaseURL}, nil
	}
	faults, err := cspfake.FaultsFromEnv(env)
	if err != nil {
		return "", "", part{}, err
	}
	token = randomToken()
	fake := cspfake.New(cspfake.Options{Token: token})
	if err := fake.Start(); err != nil {
		return "", "", part{}, err
	}
	s.shutdowns = append(s.shutdowns, func() { _ = fake.Close() })
	fake.Seed(cspfake.Generate(cfg.SeedSandboxes, cfg.SeedPrefixes)...)
	if err := fake.SetFaults(faults); err != nil {
		return "", "", part{}, err
	}
	detail := fmt.Sprintf("fake CSP at %s with %d sandboxes named %s-NNNN", fake.URL(), cfg.SeedSandboxes, strings.Join(cfg.SeedPrefixes, "-NNNN, "))
	if !reflect.DeepEqual(faults, cspfake.Faults{}) {
		detail += ", with injected faults (FAKE_CSP_*)"
	}
	return fake.URL(), token, part{"CSP", "started", detail}, nil
}

// startAPI serves the route functions behind the API Gateway emulator and the authorizer
// on 127.0.0.1:PORT, and waits until /healthz answers.
func (s *Stack) startAPI(ctx context.Context, cfg config.Local, env config.Env, logs io.Writer, tokens auth.Static, jobs backgroundJobs, log *slog.Logger) (part, error) {
	routes, err := s.addRoutes(ctx, env, logs, jobs)
	if err != nil {
		return part{}, err
	}
	authorizer, err := s.addAuthorizer(ctx, env, logs, tokenSecret(tokens))
	if err != nil {
		return part{}, err
	}
	apiCfg, err := config.LoadAPI(env)
	if err != nil {
		return part{}, err
	}
	gateway, err := NewGateway(routes, authorizer.invoke, GatewayOptions{
		CORS: api.NewCORS(apiCfg.CORSOrigins), CacheTTL: cfg.AuthorizerCacheTTL, Throttle: api.StageThrottle, Tokens: tokens, Log: log})
	if err != nil {
		return part{}, err
	}
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", cfg.Port))
	if err != nil {
		return part{}, fmt.Errorf("local: listen on 127.0.0.1:%d: %w (set PORT to another port)", cfg.Port, err)
	}
	s.URL = "http://" + ln.Addr().String()
	server := &http.Server{Handler: gateway, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = server.Serve(ln) // http.ErrServerClosed after Shutdown
	}()
	s.shutdowns = append(s.shutdowns, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = server.Shutdown(ctx)
		<-served
	})
	if err := waitHealthy(ctx, s.URL); err != nil {
		return part{}, err
	}
	return part{"API", "started", s.URL + " — API Gateway emulator: authorizer and route functions as in AWS"}, nil
}

// Stop shuts the API down, stops the jobs and every process the stack started. It is
// safe to call more than once.
func (s *Stack) Stop() {
	s.stopOnce.Do(func() {
		for i := len(s.shutdowns) - 1; i >= 0; i-- {
			s.shutdowns[i]()
		}
	})
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

// overlay returns env with the values of over taking precedence (an empty value unsets).
func overlay(env config.Env, over map[string]string) config.Env {
	return func(name string) string {
		if v, ok := over[name]; ok {
			return v
		}
		return env(name)
	}
}

func printBanner(out io.Writer, parts []part, s *Stack, prefixes []string) {
	fmt.Fprintln(out, "Sandbox Broker — local stack")
	for _, p := range parts {
		started := p.started
		if started != "" {
			started = "[" + started + "] "
		}
		fmt.Fprintf(out, "  %-11s %s%s\n", p.name, started, p.detail)
	}
	fmt.Fprintf(out, "\nAllocate a sandbox for a student:\n")
	fmt.Fprintf(out, "  curl -sS -i -X POST %s/v1/allocate \\\n    -H 'Authorization: Bearer %s' \\\n    -H 'X-Instruqt-Sandbox-ID: student-1' -H 'X-Instruqt-Track-ID: demo-lab' -H 'X-Sandbox-Name-Prefix: %s'\n",
		s.URL, s.TrackToken, prefixes[0])
	fmt.Fprintf(out, "\nOperate the pool (admin API):\n  BROKER_URL=%s BROKER_ADMIN_TOKEN=%s go run ./cmd/brokerctl stats\n", s.URL, s.AdminToken)
	fmt.Fprintf(out, "  or in the browser: %s/console (sign in with the admin token)\n", s.URL)
	fmt.Fprintf(out, "\nReady at %s. Ctrl-C stops everything.\n", s.URL)
}

// firstLine is the first line of s: the first of several joined errors.
func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}
