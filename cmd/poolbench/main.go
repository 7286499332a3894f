package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/smithy-go/middleware"

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
}

type strategy struct {
	name     string
	allocate func(ctx context.Context, env *env, student, prefix string) error
}

type env struct {
	db   *dynamodb.Client
	pool *pool.Pool
	// broker is one Broker for the whole burst: one process serving every student, as the
	// local stack does (its page dealer shared by all of them).
	broker *broker.Broker
	table  string
}

type row struct {
	scenario, strategy string
	n, ok              int
	requests           int64
	rcu, wcu           float64
	p50, p99, wall     time.Duration
}

func main() {
	sizes := flag.String("n", "100,300,500", "comma-separated burst sizes")
	only := flag.String("only", "", "run only this strategy (engine, per-req, previous or upstream)")
	javaFlags := flag.String("java-flags", "", "space-separated JVM flags for DynamoDB Local instead of ddblocal.DefaultJavaFlags")
	scenarios := flag.String("scenario", "", "run only the scenarios whose name contains this")
	burstHTTP := flag.Int("http", 0, "instead of the table: an HTTP burst of this many students through the local stack")
	stackURL := flag.String("url", "", "with -http: reuse the local stack at this URL (with -token) instead of starting one")
	token := flag.String("token", "", "with -url: the stack's track token")
	cold := flag.Bool("cold", false, "skip the warm-up: the first row pays for DynamoDB Local's JIT")
	flag.Parse()
	var flags []string
	if *javaFlags != "" {
		flags = strings.Fields(*javaFlags)
	}
	if *burstHTTP > 0 {
		if err := httpBurst(context.Background(), *burstHTTP, *stackURL, *token); err != nil {
			fmt.Fprintln(os.Stderr, "poolbench:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(parseSizes(*sizes), *only, *scenarios, flags, *cold); err != nil {
		fmt.Fprintln(os.Stderr, "poolbench:", err)
		os.Exit(1)
	}
}

func run(sizes []int, only, scenarios string, javaFlags []string, cold bool) error {
	ctx := context.Background()
	srv, err := ddblocal.Start(ctx, ddblocal.Options{JavaFlags: javaFlags})
	if err != nil {
		return err
	}
	defer srv.Stop()
	// The same connection cap as any client of DynamoDB Local (ddblocal.HTTPClient).
	count := &counter{ops: map[string]int{}, inner: &http.Client{Transport: &http.Transport{
		MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024, MaxConnsPerHost: ddblocal.MaxConns}}}
	cu := newCapacity()
	db, err := pool.NewClient(ctx, pool.ClientOptions{Endpoint: srv.Endpoint, Region: "us-east-1", HTTPClient: count,
		APIOptions: []func(*middleware.Stack) error{cu.middleware}})
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "load average at start: %s", loadAverage())
	cfg := config.Pool{LabDuration: 48 * time.Hour, Grace: 30 * time.Minute}
	strategies := []strategy{
		{"engine", func(ctx context.Context, e *env, student, prefix string) error {
			_, err := e.broker.Allocate(ctx, broker.AllocateRequest{Student: student, NamePrefix: prefix})
			return err
		}},
		// One Broker per student, as when each allocation runs in its own Lambda instance: the
		// dealer serves one allocation at a time. Its first allocation also reads the drains.
		{"per-req", func(ctx context.Context, e *env, student, prefix string) error {
			_, err := broker.New(e.pool, cfg).Allocate(ctx, broker.AllocateRequest{Student: student, NamePrefix: prefix})
			return err
		}},
		{"previous", previousAllocate},
		{"upstream", upstreamAllocate},
	}
	// Warm DynamoDB Local's JVM up first, as the local stack does, so no measured row pays
	// for its JIT compilation.
	if !cold {
		t0 := time.Now()
		if err := warmup.Run(ctx, db, config.DefaultLocalWarmRounds); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "warm-up took %s\n", time.Since(t0).Round(time.Millisecond))
	}
	tables := 0
	var rows []row
	for _, n := range sizes {
		for _, sc := range []scenario{
			{name: "exact fit", students: n, sandboxes: 1},
			{name: "pool of 2B", students: n, sandboxes: 2},
			{name: "3 labs + others", students: n, sandboxes: 1, prefixes: []string{"lab-dns", "lab-dhcp", "lab-ipam"}},
		} {
			for _, st := range strategies {
				if only != "" && st.name != only || !strings.Contains(sc.name, scenarios) {
					continue
				}
				tables++
				e := &env{db: db, table: fmt.Sprintf("bench-%d", tables)}
				if err := pool.CreateTable(ctx, db, e.table); err != nil {
					return err
				}
				e.pool = pool.New(db, e.table, pool.Options{})
				e.broker = broker.New(e.pool, cfg)
				if err := seed(ctx, e, sc); err != nil {
					return err
				}
				count.n.Store(0)
				count.ops = map[string]int{}
				cu.reset()
				r := burst(ctx, e, sc, st)
				r.requests = count.n.Load()
				r.rcu, r.wcu = cu.totals()
				rows = append(rows, r)
				pageReads, lostClaims := cu.breakdown()
				fmt.Fprintf(os.Stderr, "%s / %s / N=%d: %v, candidate page reads %d, lost claims %d\n", sc.name, st.name, n, count.ops, pageReads, lostClaims)
			}
		}
	}
	print(rows)
	fmt.Printf("load average at the end: %s", loadAverage())
	return nil
}

// seed fills the pool: N × sandboxes sandboxes, or with labs N/labs matching each lab's
// prefix plus N/2 named to share the leading "lab" and match none of them.
func seed(ctx context.Context, e *env, sc scenario) error {
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
			_, err := e.pool.Create(ctx, pool.Account{
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

func burst(ctx context.Context, e *env, sc scenario, st strategy) row {
	lat := make([]time.Duration, sc.students)
	var ok atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range sc.students {
		prefix := ""
		if len(sc.prefixes) > 0 {
			prefix = sc.prefixes[i%len(sc.prefixes)]
		}
		wg.Go(func() {
			<-start
			t0 := time.Now()
			err := st.allocate(ctx, e, fmt.Sprintf("student-%d", i), prefix)
			lat[i] = time.Since(t0)
			if err == nil {
				ok.Add(1)
			}
		})
	}
	t0 := time.Now()
	close(start)
	wg.Wait()
	wall := time.Since(t0)
	slices.Sort(lat)
	return row{scenario: sc.name, strategy: st.name, n: sc.students, ok: int(ok.Load()),
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
