package config

import (
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/sandbox-broker/broker/internal/ddblimits"
)

// Local is the local stack's own configuration (make run, docs/architecture.md §7). Everything a
// function reads (pool, CSP tuning, jobs, logs) is passed through to it unchanged.
type Local struct {
	// Port of the API Gateway emulator on 127.0.0.1; 0 picks a free one.
	Port int
	// DataDir keeps DynamoDB Local's data across runs; empty runs in memory.
	DataDir string
	// WarmRounds are the rounds of the warm-up (internal/ddblocal/warmup) the DynamoDB
	// Local the stack starts runs before the stack reports ready (0: none).
	WarmRounds int
	// DynamoDBLimits, when set, puts a proxy applying DynamoDB's limits between the
	// functions and DynamoDB Local (DYNAMODB_LIMITS and its switches).
	DynamoDBLimits *ddblimits.Config
	// DynamoDBEndpoint, when set, is an existing DynamoDB (another DynamoDB Local, or AWS)
	// used instead of starting one; TableName is then required, and the table is created
	// only when missing.
	DynamoDBEndpoint string
	TableName        string
	// SeedSandboxes and SeedPrefixes shape the fake CSP's accounts.
	SeedSandboxes int
	SeedPrefixes  []string
	// CSPBaseURL and CSPToken, when set, are a live CSP (or any server speaking its API)
	// used instead of the fake.
	CSPBaseURL string
	CSPToken   string
	// FakeNIOSXaaS starts the fake NIOSXaaS beside the fake CSP and turns the cleanup
	// step on against it: with LOCAL_NIOSXAAS, or with NIOSXAAS_ENABLED and no
	// NIOSXAAS_BASE_URL.
	FakeNIOSXaaS bool
	// TrackToken, AdminToken and MetricsToken are plain tokens; empty ones are generated.
	TrackToken   string
	AdminToken   string
	MetricsToken string
	// TokensFile, when set, is a file in the token secret's format whose entries join the
	// tokens above: more clients, with their limits (a second track client, a capped one).
	TokensFile string
	// TrackRate and TrackBurst are the track client's own throttle (its usage plan in AWS);
	// 0 leaves it unthrottled but for the stage.
	TrackRate  int
	TrackBurst int
	// AuthorizerCacheTTL is how long the emulator caches an authorizer answer per token,
	// as API Gateway does (0 turns caching off).
	AuthorizerCacheTTL time.Duration
	// ExecutionModel is how the stack runs the functions: ExecutionInstances (Lambda's
	// instance model, the default) or ExecutionProcess (one shared instance per function,
	// serving every invocation at once, without limits).
	ExecutionModel string
	// AccountConcurrency is Lambda's concurrent executions quota of the emulated account,
	// shared by every function without a reservation.
	AccountConcurrency int
	// ReservedConcurrency is the reserved concurrency of functions by name, beside the
	// jobs' own (broker.JobReservedConcurrency).
	ReservedConcurrency map[string]int
	// IdleTimeout is how long an idle instance is kept for the next invocation before it
	// is retired.
	IdleTimeout time.Duration
}

// Execution models of the local stack (LOCAL_EXECUTION_MODEL).
const (
	ExecutionInstances = "instances"
	ExecutionProcess   = "process"
)

// DefaultAccountConcurrency is Lambda's default concurrent executions quota per account
// and region (a new account may start lower).
const DefaultAccountConcurrency = 1000

// DefaultIdleTimeout is how long the local stack keeps an idle instance. Lambda documents
// no such time, only that it keeps an environment "for some time" after an invocation and
// ends every environment within a few hours: five minutes errs towards more cold starts.
const DefaultIdleTimeout = 5 * time.Minute

// DefaultLocalTable is the table of a started DynamoDB Local.
const DefaultLocalTable = "sandbox-broker-local"

// DefaultLocalWarmRounds is how many rounds of the warm-up (internal/ddblocal/warmup) the
// local stack runs on the DynamoDB Local it starts. Measured (docs/benchmark.md): the
// 500-student burst over HTTP has a p99 of 1.45–1.53 s after one round and 1.27–1.29 s
// after four, for about 10 s more start-up on an idle machine.
const DefaultLocalWarmRounds = 4

var seedPrefix = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)

// LoadLocal reads PORT (8080), DATA_DIR, LOCAL_WARM_ROUNDS (DefaultLocalWarmRounds), DYNAMODB_ENDPOINT and TABLE_NAME, SEED_SANDBOXES
// (50), SEED_PREFIXES (lab), CSP_BASE_URL and CSP_API_TOKEN, LOCAL_NIOSXAAS (with
// NIOSXAAS_ENABLED and NIOSXAAS_BASE_URL, which decide it too), BROKER_TRACK_TOKEN,
// BROKER_ADMIN_TOKEN, BROKER_METRICS_TOKEN, BROKER_TOKENS_FILE, BROKER_TRACK_RATE and
// BROKER_TRACK_BURST, AUTHORIZER_CACHE_SECONDS (300), LOCAL_EXECUTION_MODEL (instances),
// LOCAL_LAMBDA_CONCURRENCY (DefaultAccountConcurrency), LOCAL_RESERVED_CONCURRENCY and
// LOCAL_LAMBDA_IDLE_SECONDS (DefaultIdleTimeout), and DYNAMODB_LIMITS with its switches.
func LoadLocal(env Env) (Local, error) {
	r := &reader{env: env}
	l := Local{
		Port:               r.int("PORT", 8080, 0, 65535),
		DataDir:            r.str("DATA_DIR", ""),
		WarmRounds:         r.int("LOCAL_WARM_ROUNDS", DefaultLocalWarmRounds, 0, 20),
		DynamoDBEndpoint:   r.str("DYNAMODB_ENDPOINT", ""),
		TableName:          r.str("TABLE_NAME", ""),
		SeedSandboxes:      r.int("SEED_SANDBOXES", 50, 0, 10000),
		CSPBaseURL:         r.str("CSP_BASE_URL", ""),
		CSPToken:           r.str("CSP_API_TOKEN", ""),
		TrackToken:         r.str("BROKER_TRACK_TOKEN", ""),
		AdminToken:         r.str("BROKER_ADMIN_TOKEN", ""),
		MetricsToken:       r.str("BROKER_METRICS_TOKEN", ""),
		TokensFile:         r.str("BROKER_TOKENS_FILE", ""),
		TrackRate:          r.int("BROKER_TRACK_RATE", 0, 0, 10_000),
		TrackBurst:         r.int("BROKER_TRACK_BURST", 0, 0, 5_000),
		AuthorizerCacheTTL: r.duration("AUTHORIZER_CACHE_SECONDS", 300, time.Second, 0, 3600),
		ExecutionModel:     r.str("LOCAL_EXECUTION_MODEL", ExecutionInstances),
		AccountConcurrency: r.int("LOCAL_LAMBDA_CONCURRENCY", DefaultAccountConcurrency, 1, 100_000),
		IdleTimeout:        r.duration("LOCAL_LAMBDA_IDLE_SECONDS", int(DefaultIdleTimeout/time.Second), time.Second, 1, 4*3600),
		DynamoDBLimits:     r.dynamoDBLimits(),
	}
	if l.ExecutionModel != ExecutionInstances && l.ExecutionModel != ExecutionProcess {
		r.fail("LOCAL_EXECUTION_MODEL", "%q is neither %q nor %q", l.ExecutionModel, ExecutionInstances, ExecutionProcess)
	}
	l.ReservedConcurrency = r.reservations("LOCAL_RESERVED_CONCURRENCY")
	for _, p := range strings.Split(r.str("SEED_PREFIXES", "lab"), ",") {
		p = strings.TrimSpace(p)
		if !seedPrefix.MatchString(p) {
			r.fail("SEED_PREFIXES", "%q is not a name prefix (1-32 of A-Z a-z 0-9 - _)", p)
			continue
		}
		l.SeedPrefixes = append(l.SeedPrefixes, p)
	}
	switch {
	case l.DynamoDBEndpoint != "" && l.TableName == "":
		r.fail("TABLE_NAME", "is required with DYNAMODB_ENDPOINT (the table to use or create there)")
	case l.DynamoDBEndpoint != "" && l.DataDir != "":
		r.fail("DATA_DIR", "applies to the DynamoDB Local the stack starts; it cannot be combined with DYNAMODB_ENDPOINT")
	case l.TableName == "":
		l.TableName = DefaultLocalTable
	}
	if (l.CSPBaseURL == "") != (l.CSPToken == "") {
		r.fail("CSP_BASE_URL", "and CSP_API_TOKEN go together: set both to use a live CSP, or neither for the fake")
	}
	niosBaseURL := r.str("NIOSXAAS_BASE_URL", "")
	l.FakeNIOSXaaS = r.bool("LOCAL_NIOSXAAS", false) || (r.bool("NIOSXAAS_ENABLED", false) && niosBaseURL == "")
	if l.FakeNIOSXaaS && niosBaseURL != "" {
		r.fail("LOCAL_NIOSXAAS", "starts the fake NIOSXaaS; unset NIOSXAAS_BASE_URL, or unset LOCAL_NIOSXAAS to use that NIOSXaaS")
	}
	if l.TrackToken != "" && l.TrackToken == l.AdminToken {
		r.fail("BROKER_ADMIN_TOKEN", "must differ from BROKER_TRACK_TOKEN")
	}
	if (l.TrackRate == 0) != (l.TrackBurst == 0) {
		r.fail("BROKER_TRACK_RATE", "and BROKER_TRACK_BURST go together: set both to throttle the track client, or neither")
	}
	if l.MetricsToken != "" && (l.MetricsToken == l.TrackToken || l.MetricsToken == l.AdminToken) {
		r.fail("BROKER_METRICS_TOKEN", "must differ from BROKER_TRACK_TOKEN and BROKER_ADMIN_TOKEN")
	}
	return l, r.err()
}

// reservations reads a list of function=count pairs ("allocate=50,authorizer=5"); which
// names are functions, and whether the account can spare the counts, the local stack
// checks against its functions.
func (r *reader) reservations(name string) map[string]int {
	raw := r.str(name, "")
	if raw == "" {
		return nil
	}
	out := map[string]int{}
	for _, pair := range strings.Split(raw, ",") {
		fn, count, ok := strings.Cut(pair, "=")
		fn = strings.TrimSpace(fn)
		n, err := strconv.Atoi(strings.TrimSpace(count))
		_, twice := out[fn]
		switch {
		case !ok || fn == "" || err != nil || n < 0:
			r.fail(name, "%q is not function=count (a count of 0 or more)", strings.TrimSpace(pair))
		case twice:
			r.fail(name, "names %s twice", fn)
		default:
			out[fn] = n
		}
	}
	return out
}
