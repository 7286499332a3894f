package local

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/sandbox-broker/broker/internal/testkit"
	"github.com/sandbox-broker/broker/pkg/api"
	"github.com/sandbox-broker/broker/pkg/auth"
	"github.com/sandbox-broker/broker/pkg/config"
	"github.com/sandbox-broker/broker/pkg/obs"
)

// testService is an account of limit concurrency with the reservations reserved, on a
// clock the test moves. It is built as a struct, not by newLambdaService, so that a test
// may use limits Lambda would refuse (fewer than 100 unreserved).
func testService(limit int, reserved map[string]int, clock *testkit.Clock, logs *testkit.Buffer) *lambdaService {
	s := &lambdaService{model: config.ExecutionInstances, limit: limit, reservedBy: reserved, idleTimeout: config.DefaultIdleTimeout,
		now: clock.Now, log: obs.NewLogger(logs, 0)}
	for _, n := range reserved {
		s.reserved += n
	}
	return s
}

// gated is a function whose every invocation waits until its event, a channel, closes.
func gated(t *testing.T, s *lambdaService, name string) *lambdaFunction[chan struct{}, int] {
	t.Helper()
	f, err := addFunction(context.Background(), s, name, 0, func(context.Context) (handler[chan struct{}, int], error) {
		return func(_ context.Context, gate chan struct{}) (int, error) {
			<-gate
			return 1, nil
		}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// hold starts an invocation of f that runs until the returned function is called, and
// returns once an instance has taken it.
func hold(t *testing.T, f *lambdaFunction[chan struct{}, int], entered chan string) (release func() error) {
	t.Helper()
	gate, done := make(chan struct{}), make(chan error, 1)
	go func() {
		_, err := f.invoke(context.Background(), gate)
		done <- err
	}()
	select {
	case name := <-entered:
		if name != f.name {
			t.Fatalf("%s entered, want %s", name, f.name)
		}
	case err := <-done:
		t.Fatalf("%s was not held: %v", f.name, err)
	}
	return func() error { close(gate); return <-done }
}

func onInvoke(s *lambdaService, hook func(function string, instance int)) { s.onInvoke.Store(&hook) }

func statsOf(t *testing.T, s *lambdaService, name string) FunctionStats {
	t.Helper()
	i := slices.IndexFunc(s.stats(), func(f FunctionStats) bool { return f.Name == name })
	if i < 0 {
		t.Fatalf("no function %s", name)
	}
	return s.stats()[i]
}

func wantThrottled(t *testing.T, what string, err error, reason string) {
	t.Helper()
	var throttled *throttledError
	if !errors.As(err, &throttled) || !strings.Contains(throttled.reason, reason) {
		t.Fatalf("%s: %v, want a throttle (%s)", what, err, reason)
	}
}

// Lambda's limits, as it applies them: the functions without a reservation share what the
// reservations leave of the account's concurrency; a reserved function has its own,
// whatever the others do; a reservation of 0 throttles every invocation; a new instance
// needs the function's scaling rate, a warm one does not.
func TestConcurrencyLimitsAsLambdaAppliesThem(t *testing.T) {
	clock := testkit.NewClock(time.Unix(1_800_000_000, 0))
	s := testService(2, map[string]int{"reserved": 1, "off": 0}, clock, &testkit.Buffer{})
	entered := make(chan string, 10)
	onInvoke(s, func(function string, _ int) { entered <- function })
	a, b, reserved, off := gated(t, s, "a"), gated(t, s, "b"), gated(t, s, "reserved"), gated(t, s, "off")
	open := make(chan struct{})
	close(open)

	releaseA := hold(t, a, entered) // the one unreserved execution the account has left
	_, err := b.invoke(context.Background(), open)
	wantThrottled(t, "b while a holds the unreserved concurrency", err, "ConcurrentInvocationLimitExceeded")
	releaseReserved := hold(t, reserved, entered)
	_, err = reserved.invoke(context.Background(), open)
	wantThrottled(t, "reserved beyond its reservation", err, "ReservedFunctionConcurrentInvocationLimitExceeded")
	_, err = off.invoke(context.Background(), open)
	wantThrottled(t, "a function reserved at 0", err, "ReservedFunctionConcurrentInvocationLimitExceeded")
	if err := errors.Join(releaseA(), releaseReserved()); err != nil {
		t.Fatal(err)
	}
	if _, err := b.invoke(context.Background(), open); err != nil {
		t.Fatalf("b once a is done: %v", err)
	}
	<-entered
	for name, want := range map[string]FunctionStats{
		"a":        {Name: "a", Invocations: 1, ColdStarts: 1, Idle: 1},
		"b":        {Name: "b", Invocations: 1, ColdStarts: 1, Throttles: 1, Idle: 1},
		"reserved": {Name: "reserved", Invocations: 1, ColdStarts: 1, Throttles: 1, Idle: 1},
		"off":      {Name: "off", Throttles: 1},
	} {
		got := statsOf(t, s, name)
		got.InitTime = 0
		if got != want {
			t.Errorf("%s: %+v, want %+v", name, got, want)
		}
	}

	// The scaling rate: one new instance now, the next once the bucket refilled.
	s = testService(10, nil, clock, &testkit.Buffer{})
	onInvoke(s, func(function string, _ int) { entered <- function })
	scaled := gated(t, s, "scaled")
	scaled.scaling = newTokenBucket(api.Throttle{Rate: 1, Burst: 1}, clock.Now())
	release := hold(t, scaled, entered)
	_, err = scaled.invoke(context.Background(), open)
	wantThrottled(t, "a second instance beyond the scaling rate", err, "scaling rate")
	if err := release(); err != nil {
		t.Fatal(err)
	}
	if _, err := scaled.invoke(context.Background(), open); err != nil {
		t.Fatalf("a warm instance needs no scaling: %v", err)
	}
	<-entered
	release = hold(t, scaled, entered)
	clock.Advance(time.Second)
	if _, err := scaled.invoke(context.Background(), open); err != nil {
		t.Fatalf("a second instance a second later: %v", err)
	}
	<-entered
	if err := release(); err != nil {
		t.Fatal(err)
	}
	if st := statsOf(t, s, "scaled"); st.ColdStarts != 2 || st.Throttles != 1 || st.Idle != 2 {
		t.Fatalf("scaled: %+v", st)
	}
}

// An asynchronous event that finds the job's one reserved execution busy is throttled and
// retried, and runs once the run in flight ends, on the same instance; one that stays
// throttled is dropped at its maximum age.
func TestThrottledAsyncEventIsRetried(t *testing.T) {
	clock := testkit.NewClock(time.Unix(1_800_000_000, 0))
	s := testService(1000, map[string]int{"job": 1, "disabled": 0}, clock, &testkit.Buffer{})
	entered := make(chan string, 10)
	onInvoke(s, func(function string, _ int) { entered <- function })
	job := gated(t, s, "job")
	fast := func(d time.Duration) time.Duration { return d / 1000 } // 1 ms, doubling; dropped after 21.6 s

	release := hold(t, job, entered)
	var order []string
	var mu sync.Mutex
	second := make(chan error, 1)
	go func() {
		open := make(chan struct{})
		close(open)
		_, err := job.invokeQueued(context.Background(), open, fast)
		mu.Lock()
		order = append(order, "queued event")
		mu.Unlock()
		second <- err
	}()
	for statsOf(t, s, "job").Throttles == 0 {
		time.Sleep(time.Millisecond)
	}
	mu.Lock()
	order = append(order, "first run")
	mu.Unlock()
	if err := errors.Join(release(), <-second); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(order, []string{"first run", "queued event"}) {
		t.Fatalf("order %v: the queued event ran beside the first", order)
	}
	if st := statsOf(t, s, "job"); st.Invocations != 2 || st.ColdStarts != 1 || st.Throttles < 1 {
		t.Fatalf("job: %+v", st)
	}

	disabled := gated(t, s, "disabled")
	_, err := disabled.invokeQueued(context.Background(), make(chan struct{}), func(d time.Duration) time.Duration { return d / 100_000 })
	if err == nil || !strings.Contains(err.Error(), "dropped") {
		t.Fatalf("an event throttled past its maximum age: %v", err)
	}
	if st := statsOf(t, s, "disabled"); st.Invocations != 0 || st.Throttles < 2 {
		t.Fatalf("disabled: %+v", st)
	}
}

// The authorizer's token store is its instance's, as in Lambda: after a rotation revokes
// a token, a warm instance still accepts it (until TOKENS_REFRESH_SECONDS) while a fresh
// one, which reads the secret in its init, refuses it. Idle instances are reused most
// recently used first and retired after the idle time, on the service's clock.
func TestAuthorizerStateLivesInItsInstance(t *testing.T) {
	clock := testkit.NewClock(time.Unix(1_800_000_000, 0))
	logs := &testkit.Buffer{}
	s := &Stack{lambda: testService(1000, nil, clock, logs)}
	token := func(plain string) auth.Token {
		tk, err := auth.NewToken("instruqt", auth.Track, plain)
		if err != nil {
			t.Fatal(err)
		}
		return tk
	}
	const before, after = "track-token-before-rotation-0123", "track-token-after-rotation-01234"
	var secret atomic.Pointer[string]
	rotate := func(plain string) {
		doc := string(auth.SecretDocument([]auth.Token{token(plain)}))
		secret.Store(&doc)
	}
	rotate(before)
	authz, err := s.addAuthorizer(context.Background(), testkit.Env(map[string]string{"TOKENS_SECRET_ARN": localTokensSecret}), logs,
		func(context.Context, string) (string, error) { return *secret.Load(), nil })
	if err != nil {
		t.Fatal(err)
	}
	var served atomic.Int64 // the instance of the last invocation
	var holdFirst atomic.Bool
	entered, release := make(chan struct{}), make(chan struct{})
	onInvoke(s.lambda, func(_ string, instance int) {
		served.Store(int64(instance))
		if instance == 1 && holdFirst.CompareAndSwap(true, false) {
			close(entered)
			<-release
		}
	})
	ask := func(plain string) string {
		resp, err := authz.invoke(context.Background(), events.APIGatewayCustomAuthorizerRequestTypeRequest{
			Type: "REQUEST", MethodArn: "arn:aws:execute-api:us-east-1:123456789012:localapi/local/POST/v1/allocate",
			Resource: "/v1/allocate", Path: "/v1/allocate", HTTPMethod: "POST", Headers: map[string]string{"Authorization": "Bearer " + plain},
		})
		switch {
		case errors.Is(err, api.ErrUnauthorized):
			return "Unauthorized"
		case err != nil:
			t.Fatalf("authorize: %v", err)
		}
		return resp.PolicyDocument.Statement[0].Effect
	}
	want := func(what, plain, answer string, instance int) {
		t.Helper()
		if got := ask(plain); got != answer || served.Load() != int64(instance) {
			t.Fatalf("%s: %s on instance %d, want %s on instance %d", what, got, served.Load(), answer, instance)
		}
	}

	want("the first request", before, "Allow", 1)
	rotate(after)
	want("the revoked token on the warm instance", before, "Allow", 1)

	holdFirst.Store(true)
	held := make(chan string, 1)
	go func() { held <- ask(before) }()
	<-entered // instance 1 is busy: the next request starts instance 2
	want("the revoked token on a fresh instance", before, "Unauthorized", 2)
	want("the new token on the fresh instance", after, "Allow", 2)
	close(release)
	if got := <-held; got != "Allow" {
		t.Fatalf("the held request on instance 1: %s", got)
	}
	want("instance 1 was released last: it serves next", before, "Allow", 1)

	clock.Advance(config.DefaultIdleTimeout - time.Second)
	want("just under the idle time", before, "Allow", 1)
	clock.Advance(time.Second) // instance 2 has idled for the idle time; instance 1 for a second
	want("instance 1 still, with the secret it read", after, "Unauthorized", 1)
	clock.Advance(config.DefaultIdleTimeout)
	want("both retired: a cold start reads the rotated secret", before, "Unauthorized", 3)

	st := statsOf(t, s.lambda, api.AuthorizerFunction)
	if st.ColdStarts != 3 || st.Retired != 2 || st.Invocations != 9 || st.Idle != 1 {
		t.Fatalf("authorizer: %+v", st)
	}
	var starts int
	for _, line := range logs.JSONLines(t) {
		if line["msg"] == "cold start" && line["function"] == api.AuthorizerFunction && line["init_ms"] != nil {
			starts++
		}
	}
	if starts != 3 {
		t.Fatalf("%d cold start lines with init_ms, want 3:\n%s", starts, logs.String())
	}
}
