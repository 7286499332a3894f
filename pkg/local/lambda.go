package local

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sandbox-broker/broker/pkg/api"
	"github.com/sandbox-broker/broker/pkg/config"
)

// What Lambda documents of its execution environments (docs/architecture.md §7).
const (
	// initTimeout bounds a cold start's init (Lambda's Init phase limit).
	initTimeout = 10 * time.Second
	// minUnreserved is the concurrency Lambda keeps for the functions without a
	// reservation: it refuses reservations that leave less.
	minUnreserved = 100
	// asyncFirstRetry, asyncMaxRetry and asyncMaxAge are Lambda's handling of a throttled
	// asynchronous event: back to its queue, retried after 1 s, the interval doubling up
	// to 5 minutes, until the event is 6 hours old.
	asyncFirstRetry = time.Second
	asyncMaxRetry   = 5 * time.Minute
	asyncMaxAge     = 6 * time.Hour
)

// scalingRate is how fast Lambda adds instances to one function: 1 000 every 10 seconds,
// refilled continuously, never more than 1 000 at once.
var scalingRate = api.Throttle{Rate: 100, Burst: 1000}

// noReservation marks a function that draws on the account's unreserved concurrency.
const noReservation = -1

// lambdaService runs the stack's functions as the Lambda service of one account: each
// function as instances built by its own constructor (config.ExecutionInstances), or, in
// config.ExecutionProcess, as one instance that serves every invocation at once, without
// limits. One lock guards the account's and every function's books; handlers run outside
// it.
type lambdaService struct {
	model       string
	limit       int            // the account's concurrency
	reservedBy  map[string]int // reserved concurrency by function
	reserved    int            // their sum
	idleTimeout time.Duration
	now         func() time.Time
	log         *slog.Logger
	// onInvoke, when set (tests), is called as an instance takes an invocation, before
	// the handler runs.
	onInvoke atomic.Pointer[func(function string, instance int)]

	mu                 sync.Mutex
	unreservedInFlight int // invocations in flight of the functions without a reservation
	functions          []statsReporter
}

type statsReporter interface {
	stats() FunctionStats
}

// FunctionStats is what the stack counts of one function: what Lambda's REPORT lines
// (Init Duration) and its metrics (ConcurrentExecutions, Throttles) show in AWS.
type FunctionStats struct {
	Name string
	// Invocations were served by an instance, cold or warm.
	Invocations int
	// ColdStarts started an instance; InitTime is their init together, InitErrors the
	// ones whose constructor failed.
	ColdStarts int
	InitTime   time.Duration
	InitErrors int
	// Throttles were refused by a concurrency limit or the scaling rate (each attempt of
	// an asynchronous event counts).
	Throttles int
	// Idle instances wait for an invocation; Retired ones were idle too long.
	Idle    int
	Retired int
}

// newLambdaService is the account of cfg, whose functions are named in functions with
// their reservations (none by default, as in the CDK stack); LOCAL_RESERVED_CONCURRENCY
// adds them. It refuses what Lambda refuses: reservations that leave the
// functions without one less than minUnreserved of the account's concurrency.
func newLambdaService(cfg config.Local, functions map[string]int, log *slog.Logger) (*lambdaService, error) {
	reservedBy := map[string]int{}
	for name, n := range functions {
		if n != noReservation {
			reservedBy[name] = n
		}
	}
	for name, n := range cfg.ReservedConcurrency {
		if _, ok := functions[name]; !ok {
			return nil, fmt.Errorf("local: LOCAL_RESERVED_CONCURRENCY: %s is not a function of the local stack", name)
		}
		reservedBy[name] = n
	}
	s := &lambdaService{model: cfg.ExecutionModel, limit: cfg.AccountConcurrency, reservedBy: reservedBy, idleTimeout: cfg.IdleTimeout, now: time.Now, log: log}
	for _, n := range reservedBy {
		s.reserved += n
	}
	if s.model == config.ExecutionInstances && s.limit-s.reserved < minUnreserved {
		return nil, fmt.Errorf("local: the reservations of LOCAL_RESERVED_CONCURRENCY take %d of LOCAL_LAMBDA_CONCURRENCY %d, leaving %d unreserved: Lambda refuses reservations that leave less than %d",
			s.reserved, s.limit, s.limit-s.reserved, minUnreserved)
	}
	return s, nil
}

// stats are the counts of every function, in the order the stack built them.
func (s *lambdaService) stats() []FunctionStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]FunctionStats, 0, len(s.functions))
	for _, f := range s.functions {
		out = append(out, f.stats())
	}
	return out
}

// handler is a function's code: one event in, one answer out.
type handler[E, R any] = func(context.Context, E) (R, error)

// lambdaFunction is one function of the service. init is its constructor: a cold start
// runs it whole, and the instance keeps what it built (clients, caches, breakers) for
// every invocation it serves, one at a time.
type lambdaFunction[E, R any] struct {
	service  *lambdaService
	name     string
	reserved int // noReservation, or the function's reserved concurrency (0 throttles it all)
	timeout  time.Duration
	init     func(context.Context) (handler[E, R], error)
	scaling  *tokenBucket

	// Guarded by service.mu.
	idle     []*instance[E, R] // the most recently used last
	inFlight int
	started  int // instances started, which numbers them
	counts   FunctionStats

	// shared is the one instance of ExecutionProcess, built under sharedMu.
	sharedMu sync.Mutex
	shared   *instance[E, R]
}

type instance[E, R any] struct {
	id       int
	handler  handler[E, R]
	lastUsed time.Time
}

// addFunction adds the function name, built by init, whose invocations end after timeout
// (0: none). It runs init once and discards what it built, so a configuration problem
// stops the stack at start, where in AWS it would fail every cold start.
func addFunction[E, R any](ctx context.Context, s *lambdaService, name string, timeout time.Duration, init func(context.Context) (handler[E, R], error)) (*lambdaFunction[E, R], error) {
	if _, err := init(ctx); err != nil {
		return nil, fmt.Errorf("local: function %s: %w", name, err)
	}
	reserved, ok := s.reservedBy[name]
	if !ok {
		reserved = noReservation
	}
	f := &lambdaFunction[E, R]{service: s, name: name, reserved: reserved, timeout: timeout, init: init, scaling: newTokenBucket(scalingRate, s.now())}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.functions = append(s.functions, f)
	return f, nil
}

// invoke runs event on an idle instance, the most recently used one as Lambda tends to,
// or on a new one, which pays its whole init first. Beyond the function's reservation,
// the account's unreserved concurrency or the scaling rate it answers a *throttledError,
// as Lambda answers TooManyRequestsException (429). A failed init answers its error, and
// the next invocation starts another instance, as in Lambda.
func (f *lambdaFunction[E, R]) invoke(ctx context.Context, event E) (R, error) {
	inst, err := f.acquire(ctx)
	if err != nil {
		var zero R
		return zero, err
	}
	defer f.release(inst)
	if hook := f.service.onInvoke.Load(); hook != nil {
		(*hook)(f.name, inst.id)
	}
	if f.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, f.timeout)
		defer cancel()
	}
	return inst.handler(ctx, event)
}

// invokeQueued is Lambda's asynchronous invocation as the job schedules and the admin
// trigger routes use it: a throttled attempt is retried (asyncFirstRetry doubling up to
// asyncMaxRetry, each scaled by scale) until the event is asyncMaxAge (scaled) old, then
// the event is dropped; any other answer ends it, since the job functions have no retries.
func (f *lambdaFunction[E, R]) invokeQueued(ctx context.Context, event E, scale func(time.Duration) time.Duration) (R, error) {
	queued := time.Now()
	wait := asyncFirstRetry
	for {
		answer, err := f.invoke(ctx, event)
		var throttled *throttledError
		if !errors.As(err, &throttled) {
			return answer, err
		}
		if time.Since(queued)+scale(wait) > scale(asyncMaxAge) {
			return answer, fmt.Errorf("local: %s: the event was throttled until it was %s old, and dropped: %w", f.name, scale(asyncMaxAge), err)
		}
		select {
		case <-ctx.Done():
			return answer, ctx.Err()
		case <-time.After(scale(wait)):
		}
		wait = min(2*wait, asyncMaxRetry)
	}
}

func (f *lambdaFunction[E, R]) acquire(ctx context.Context) (*instance[E, R], error) {
	s := f.service
	if s.model == config.ExecutionProcess {
		return f.acquireShared(ctx)
	}
	s.mu.Lock()
	now := s.now()
	f.retireIdle(now)
	if err := f.enter(); err != nil {
		s.mu.Unlock()
		return nil, err
	}
	if n := len(f.idle); n > 0 {
		inst := f.idle[n-1]
		f.idle = slices.Delete(f.idle, n-1, n)
		f.counts.Invocations++
		s.mu.Unlock()
		return inst, nil
	}
	if !f.scaling.take(now) {
		f.leave()
		f.counts.Throttles++
		s.mu.Unlock()
		return nil, &throttledError{function: f.name, reason: "the function's scaling rate"}
	}
	f.counts.Invocations++
	f.started++
	id := f.started
	s.mu.Unlock()
	inst, err := f.start(ctx, id)
	if err != nil {
		s.mu.Lock()
		f.leave()
		s.mu.Unlock()
	}
	return inst, err
}

// acquireShared is ExecutionProcess: the one instance, built on the first invocation (and
// again after a failed init), serves every invocation at once.
func (f *lambdaFunction[E, R]) acquireShared(ctx context.Context) (*instance[E, R], error) {
	f.sharedMu.Lock()
	defer f.sharedMu.Unlock()
	if f.shared == nil {
		inst, err := f.start(ctx, 1)
		if err != nil {
			return nil, err
		}
		f.shared = inst
	}
	f.service.mu.Lock()
	f.counts.Invocations++
	f.service.mu.Unlock()
	return f.shared, nil
}

// start is a cold start: the constructor runs whole, bounded by initTimeout and not by the
// request that caused it. It logs one line with init_ms, like the Init Duration of
// Lambda's REPORT line.
func (f *lambdaFunction[E, R]) start(ctx context.Context, id int) (*instance[E, R], error) {
	initCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), initTimeout)
	defer cancel()
	began := time.Now()
	h, err := f.init(initCtx)
	took := time.Since(began)
	s := f.service
	s.mu.Lock()
	f.counts.ColdStarts++
	f.counts.InitTime += took
	if err != nil {
		f.counts.InitErrors++
	}
	s.mu.Unlock()
	initMS := math.Round(float64(took.Microseconds())/10) / 100
	if err != nil {
		s.log.ErrorContext(ctx, "cold start failed", "function", f.name, "instance", id, "init_ms", initMS, "error", err.Error())
		return nil, fmt.Errorf("%s: init failed: %w", f.name, err)
	}
	s.log.InfoContext(ctx, "cold start", "function", f.name, "instance", id, "init_ms", initMS)
	return &instance[E, R]{id: id, handler: h}, nil
}

func (f *lambdaFunction[E, R]) release(inst *instance[E, R]) {
	s := f.service
	if s.model == config.ExecutionProcess {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	inst.lastUsed = s.now()
	f.idle = append(f.idle, inst)
	f.leave()
}

// enter counts an invocation in flight, or refuses it beyond the function's reservation or
// the account's unreserved concurrency. An instance counts from its init on.
func (f *lambdaFunction[E, R]) enter() error {
	s := f.service
	switch {
	case f.reserved != noReservation && f.inFlight >= f.reserved:
		f.counts.Throttles++
		return &throttledError{function: f.name, reason: "ReservedFunctionConcurrentInvocationLimitExceeded"}
	case f.reserved == noReservation && s.unreservedInFlight >= s.limit-s.reserved:
		f.counts.Throttles++
		return &throttledError{function: f.name, reason: "ConcurrentInvocationLimitExceeded"}
	}
	f.inFlight++
	if f.reserved == noReservation {
		s.unreservedInFlight++
	}
	return nil
}

func (f *lambdaFunction[E, R]) leave() {
	f.inFlight--
	if f.reserved == noReservation {
		f.service.unreservedInFlight--
	}
}

// retireIdle drops the instances idle for idleTimeout or longer (the oldest are first).
func (f *lambdaFunction[E, R]) retireIdle(now time.Time) {
	n := 0
	for n < len(f.idle) && !now.Before(f.idle[n].lastUsed.Add(f.service.idleTimeout)) {
		n++
	}
	f.idle = slices.Delete(f.idle, 0, n)
	f.counts.Retired += n
}

func (f *lambdaFunction[E, R]) stats() FunctionStats {
	f.retireIdle(f.service.now())
	st := f.counts
	st.Name, st.Idle = f.name, len(f.idle)
	return st
}

// throttledError is Lambda's TooManyRequestsException: the invocation never ran.
type throttledError struct {
	function, reason string
}

func (e *throttledError) Error() string {
	return fmt.Sprintf("Lambda throttled %s: %s", e.function, e.reason)
}
