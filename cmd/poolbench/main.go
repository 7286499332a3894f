package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/smithy-go/middleware"

	"github.com/sandbox-broker/broker/internal/ddblimits"
	"github.com/sandbox-broker/broker/internal/ddblocal"
	"github.com/sandbox-broker/broker/internal/ddblocal/warmup"
	"github.com/sandbox-broker/broker/pkg/broker"
	"github.com/sandbox-broker/broker/pkg/config"
	"github.com/sandbox-broker/broker/pkg/pool"
)

// counter counts every HTTP request to DynamoDB, SDK retries included.
type counter struct {
	inner *http.Client
	n     atomic.Int64
	mu    sync.Mutex
	ops   map[string]int
}

func (c *counter) Do(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	c.mu.Lock()
	c.ops[strings.TrimPrefix(r.Header.Get("X-Amz-Target"), "DynamoDB_20120810.")]++
	c.mu.Unlock()
	return c.inner.Do(r)
}

type scenario struct {
	name     string
	students int
	// sandboxes is the pool size as a multiple of the students (1: exact fit)
	sandboxes int
	prefixes  []string // one per lab; empty: no prefix
	// reserved: the students are one lab's (reservationLab), and a reservation of a seat
	// for each, without overflow, is set aside before the burst, so every allocation
	// draws from the set-aside (docs/architecture.md §5, "Reservations").
	reserved bool
	// spread: each student first sleeps a random 1–5 s, as the Instruqt setup script does
	// before it allocates (docs/upstream.md), instead of all arriving at one instant.
	spread bool
}

// arrive is a student's wait before it sends its allocation: none in a wave, the setup
// script's sleep with spread arrivals.
func (sc scenario) arrive() {
	if sc.spread {
		time.Sleep(scriptSleepMin + rand.N(scriptSleepSpan))
	}
}

// scenariosOf are the table's scenarios for bursts of n students.
func scenariosOf(n int) []scenario {
	return []scenario{
		{name: "exact fit", students: n, sandboxes: 1},
		{name: "pool of 2B", students: n, sandboxes: 2},
		{name: "3 labs + others", students: n, sandboxes: 1, prefixes: []string{"lab-dns", "lab-dhcp", "lab-ipam"}},
		{name: "reserved, exact", students: n, sandboxes: 1, reserved: true},
		{name: "exact fit, 1–5 s", students: n, sandboxes: 1, spread: true},
		{name: "pool of 2B, 1–5 s", students: n, sandboxes: 2, spread: true},
	}
}

// The Instruqt setup script's sleep before it allocates is uniform over
// [scriptSleepMin, scriptSleepMin+scriptSleepSpan).
const (
	scriptSleepMin  = time.Second
	scriptSleepSpan = 4 * time.Second
)

// reservationLab is the lab of the reserved scenario's students and reservation.
const reservationLab = "workshop"

// strategy allocates for one student; its error is what the student's request answers.
type strategy struct {
	name     string
	allocate func(ctx context.Context, env *env, student, prefix string) error
}

type env struct {
	db    *dynamodb.Client
	pool  *pool.Pool
	table string
	// lab is the students' lab (their X-Instruqt-Track-ID), "" for none.
	lab       string
	instances *instances
}

// instances are the allocate function's Lambda instances during one row: an instance
// serves one request at a time, and a request goes to an idle instance if there is one
// (warm) and otherwise starts a new one (a cold start: a new Broker, with nothing cached,
// as a new instance composes one). Students arriving at once each start one; students
// arriving over seconds mostly find one idle, whose lab settings are cached.
type instances struct {
	mu   sync.Mutex
	idle []*broker.Broker
	cold int
}

func (in *instances) take(p *pool.Pool) *broker.Broker {
	in.mu.Lock()
	defer in.mu.Unlock()
	if n := len(in.idle); n > 0 {
		b := in.idle[n-1]
		in.idle = in.idle[:n-1]
		return b
	}
	in.cold++
	return broker.New(p, instanceCfg)
}

func (in *instances) release(b *broker.Broker) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.idle = append(in.idle, b)
}

// limitsMode is DynamoDB as a row meets it: DynamoDB Local alone, or behind the ddblimits
// proxy applying what AWS applies to a new on-demand table (partition and table
// throughput, transaction conflicts).
type limitsMode struct {
	name string
	cfg  *ddblimits.Config
}

var limitsModes = func() []limitsMode {
	asAWS := ddblimits.AsAWS()
	return []limitsMode{{"none", nil}, {"AWS", &asAWS}}
}()

type row struct {
	scenario, strategy, limits string
	n, ok, conflicts, failed   int
	requests                   int64
	// lost is -1 where the row cannot count the lost claims.
	lost int64
	// rcu and wcu are -1 where the row cannot price them.
	rcu, wcu       float64
	p50, p99, wall time.Duration
	// refused are the throttles and transaction conflicts the proxy answered.
	refused    int
	coldStarts int
	// initTime is the cold starts' average init; 0 where a cold start is only a new Broker.
	initTime time.Duration
}

// instanceCfg is the configuration each instance of the allocate function reads.
var instanceCfg = config.Pool{LabDuration: 48 * time.Hour, Grace: 30 * time.Minute}

func main() {
	sizes := flag.String("n", "500", "comma-separated burst sizes")
	only := flag.String("only", "", "run only these strategies, comma-separated: instances, http, upstream")
	javaFlags := flag.String("java-flags", "", "space-separated JVM flags for DynamoDB Local instead of ddblocal.DefaultJavaFlags")
	scenarios := flag.String("scenario", "", "run only the scenarios whose name contains this")
	limits := flag.String("limits", "", "run only against this DynamoDB: none or AWS")
	cold := flag.Bool("cold", false, "skip the warm-up: the first row pays for DynamoDB Local's JIT")
	flag.Parse()
	var flags []string
	if *javaFlags != "" {
		flags = strings.Fields(*javaFlags)
	}
	if err := run(parseSizes(*sizes), *only, *scenarios, *limits, flags, *cold); err != nil {
		fmt.Fprintln(os.Stderr, "poolbench:", err)
		os.Exit(1)
	}
}

func selected(only, name string) bool {
	return only == "" || strings.Contains(","+only+",", ","+name+",")
}

func run(sizes []int, only, scenarios, limits string, javaFlags []string, cold bool) error {
	ctx := context.Background()
	fmt.Fprintf(os.Stderr, "load average at start: %s", loadAverage())
	db := freshDB{opts: ddblocal.Options{JavaFlags: javaFlags}, cold: cold}
	strategies := []strategy{
		// Each allocation on an instance of the allocate function, idle or new (instances),
		// as Lambda runs it: nothing is shared between instances.
		{"instances", func(ctx context.Context, e *env, student, prefix string) error {
			b := e.instances.take(e.pool)
			defer e.instances.release(b)
			_, err := b.Allocate(ctx, broker.AllocateRequest{Student: student, NamePrefix: prefix, TrackName: e.lab})
			return err
		}},
		{"upstream", upstreamAllocate},
	}
	var rows []row
	for _, lm := range limitsModes {
		if limits != "" && lm.name != limits {
			continue
		}
		for _, n := range sizes {
			for _, sc := range scenariosOf(n) {
				if !strings.Contains(sc.name, scenarios) {
					continue
				}
				// The local stack's instances run the exact fits over HTTP.
				if selected(only, "http") && sc.sandboxes == 1 && len(sc.prefixes) == 0 && !sc.reserved {
					r, err := db.row(ctx, func(endpoint string, _ *dynamodb.Client) (row, error) {
						return httpBurst(ctx, sc, endpoint, lm)
					})
					if err != nil {
						return err
					}
					rows = append(rows, r)
				}
				for _, st := range strategies {
					// Upstream has no reservations.
					if !selected(only, st.name) || sc.reserved && st.name == "upstream" {
						continue
					}
					r, err := db.row(ctx, func(endpoint string, direct *dynamodb.Client) (row, error) {
						return inProcessRow(ctx, endpoint, direct, lm, sc, st)
					})
					if err != nil {
						return err
					}
					rows = append(rows, r)
				}
			}
		}
	}
	print(rows)
	fmt.Printf("load average at the end: %s", loadAverage())
	return nil
}

// freshDB gives each row a DynamoDB Local of its own, warmed as the local stack warms it
// (warmup.Run) unless cold, so no row pays for the JIT. One DynamoDB Local for a whole
// run slowed row after row, to over fifteen minutes an upstream row late in the run, even
// with each row's table dropped (docs/benchmark.md); a fresh one serves each row as it
// served the first.
type freshDB struct {
	opts ddblocal.Options
	cold bool
}

// row starts DynamoDB Local, warms it and runs measure on it; direct talks to it without
// limits or counting, for seeding.
func (f freshDB) row(ctx context.Context, measure func(endpoint string, direct *dynamodb.Client) (row, error)) (row, error) {
	srv, err := ddblocal.Start(ctx, f.opts)
	if err != nil {
		return row{}, err
	}
	defer srv.Stop()
	direct, err := pool.NewClient(ctx, pool.ClientOptions{Endpoint: srv.Endpoint, Region: "us-east-1"})
	if err != nil {
		return row{}, err
	}
	if !f.cold {
		t0 := time.Now()
		if err := warmup.Run(ctx, direct, config.DefaultLocalWarmRounds); err != nil {
			return row{}, err
		}
		fmt.Fprintf(os.Stderr, "warm-up took %s\n", time.Since(t0).Round(time.Millisecond))
	}
	return measure(srv.Endpoint, direct)
}

// inProcessRow runs one in-process row (instances or upstream) against endpoint as lm makes
// it, with a client that counts and prices every request of the burst.
func inProcessRow(ctx context.Context, endpoint string, direct *dynamodb.Client, lm limitsMode, sc scenario, st strategy) (row, error) {
	url := endpoint
	var proxy *ddblimits.Proxy
	if lm.cfg != nil {
		var err error
		if proxy, err = ddblimits.Start(endpoint, *lm.cfg); err != nil {
			return row{}, err
		}
		defer proxy.Stop()
		url = proxy.URL
	}
	// A client with the connection cap of any client of DynamoDB Local (ddblocal.HTTPClient);
	// behind the proxy it retries as a Lambda function's client does in AWS
	// (ddblimits.AsInLambda).
	count := &counter{ops: map[string]int{}, inner: &http.Client{Transport: &http.Transport{
		MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024, MaxConnsPerHost: ddblocal.MaxConns}}}
	cu := newCapacity()
	db, err := pool.NewClient(ctx, pool.ClientOptions{Endpoint: url, Region: "us-east-1", HTTPClient: count,
		APIOptions: []func(*middleware.Stack) error{cu.middleware}})
	if err != nil {
		return row{}, err
	}
	if proxy != nil {
		db = ddblimits.AsInLambda(db)
	}
	e := &env{db: db, table: "bench", instances: &instances{}}
	if err := pool.CreateTable(ctx, direct, e.table); err != nil {
		return row{}, err
	}
	seeded := pool.New(direct, e.table, pool.Options{})
	if err := seed(ctx, seeded, sc); err != nil {
		return row{}, err
	}
	if sc.reserved {
		e.lab = reservationLab
		if err := setAside(ctx, seeded, sc.students); err != nil {
			return row{}, err
		}
	}
	e.pool = pool.New(db, e.table, pool.Options{})
	// Seeding went around the client: the counts are the burst's alone.
	r := burst(ctx, e, sc, st)
	r.limits = lm.name
	r.requests = count.n.Load()
	r.rcu, r.wcu = cu.totals()
	pageReads, lostClaims := cu.breakdown()
	r.lost = int64(lostClaims)
	r.refused = refusals(proxy)
	r.coldStarts = e.instances.cold
	fmt.Fprintf(os.Stderr, "%s / %s / limits %s / N=%d: %v, candidate page reads %d, lost claims %d\n",
		sc.name, st.name, lm.name, sc.students, count.ops, pageReads, lostClaims)
	return r, nil
}

// refusals are the throttles and transaction conflicts p answered so far (0 without p).
func refusals(p *ddblimits.Proxy) int {
	if p == nil {
		return 0
	}
	c := p.Counts()
	return c.Total(ddblimits.Throttle) + c.Total(ddblimits.Conflict)
}

// seed fills the pool: N × sandboxes sandboxes, or with labs N/labs matching each lab's
// prefix plus N/2 named to share the leading "lab" and match none of them.
func seed(ctx context.Context, p *pool.Pool, sc scenario) error {
	var names []string
	if len(sc.prefixes) == 0 {
		for i := range sc.students * sc.sandboxes {
			names = append(names, fmt.Sprintf("lab-%05d", i))
		}
	} else {
		for i := range sc.students {
			names = append(names, fmt.Sprintf("%s-%05d", sc.prefixes[i%len(sc.prefixes)], i))
		}
		for i := range sc.students / 2 {
			names = append(names, fmt.Sprintf("lab-other-%05d", i))
		}
	}
	sem := make(chan struct{}, 32)
	var wg sync.WaitGroup
	var firstErr atomic.Value
	for i, name := range names {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			_, err := p.Create(ctx, pool.Account{
				ID: fmt.Sprint(4000000 + i), Name: name,
				ExternalID: fmt.Sprintf("identity/accounts/00000000-0000-4000-8000-%012d", i), CreatedAt: 1700000000,
			}, pool.Actor{Kind: "job", Name: "bench"})
			if err != nil {
				firstErr.CompareAndSwap(nil, err)
			}
		})
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		return err
	}
	return nil
}

// setAside creates a reservation of seats seats of "lab" for reservationLab, holding now,
// and sets them aside as the reservations job does (broker.KeepReservations).
func setAside(ctx context.Context, p *pool.Pool, seats int) error {
	now := time.Now()
	by := pool.Actor{Kind: "job", Name: "bench"}
	r, _, err := broker.New(p, instanceCfg).CreateReservation(ctx, pool.Reservation{Lab: reservationLab, Prefix: "lab", Seats: seats,
		StartsAt: now.Unix(), EndsAt: now.Add(3 * time.Hour).Unix()}, false, by)
	if err != nil {
		return err
	}
	rep, err := broker.KeepReservations(ctx, p, by)
	if err == nil && rep.SetAside != seats {
		err = fmt.Errorf("the reservation %s has %d of its %d seats set aside", r.ID, rep.SetAside, seats)
	}
	return err
}

// answer409 reports whether an allocation's error is the API's 409 (nothing free); any
// other error is a 5xx.
func answer409(err error) bool {
	return errors.Is(err, broker.ErrNoSandbox) || errors.Is(err, errUpstream409)
}

func burst(ctx context.Context, e *env, sc scenario, st strategy) row {
	lat := make([]time.Duration, sc.students)
	var ok, conflicts, failed atomic.Int64
	var firstFailure atomic.Value
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range sc.students {
		prefix := ""
		if len(sc.prefixes) > 0 {
			prefix = sc.prefixes[i%len(sc.prefixes)]
		}
		wg.Go(func() {
			<-start
			sc.arrive()
			// A student's latency starts when it sends its allocation.
			t0 := time.Now()
			err := st.allocate(ctx, e, fmt.Sprintf("student-%d", i), prefix)
			lat[i] = time.Since(t0)
			switch {
			case err == nil:
				ok.Add(1)
			case answer409(err):
				conflicts.Add(1)
			default:
				failed.Add(1)
				firstFailure.CompareAndSwap(nil, err)
			}
		})
	}
	t0 := time.Now()
	close(start)
	wg.Wait()
	wall := time.Since(t0)
	if err, _ := firstFailure.Load().(error); err != nil {
		fmt.Fprintf(os.Stderr, "%s / %s: first 5xx: %v\n", sc.name, st.name, err)
	}
	slices.Sort(lat)
	return row{scenario: sc.name, strategy: st.name, n: sc.students, ok: int(ok.Load()),
		conflicts: int(conflicts.Load()), failed: int(failed.Load()),
		p50: lat[len(lat)/2], p99: lat[(len(lat)*99)/100], wall: wall}
}

func parseSizes(s string) []int {
	var out []int
	for _, f := range strings.Split(s, ",") {
		var n int
		if _, err := fmt.Sscan(strings.TrimSpace(f), &n); err == nil && n > 0 {
			out = append(out, n)
		}
	}
	return out
}

func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown\n"
	}
	return string(b)
}
