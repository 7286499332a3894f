// Command cleanupbench measures how fast cleanup drains released sandboxes against a CSP
// whose deletes are slow and rate limited: a fake CSP over HTTP with a fixed delete latency
// and a token-bucket limiter (burst 1) that answers 429 beyond the allowed rate, and the
// pool on one DynamoDB Local. The limiter decides at arrival (cspfake.DeleteWatch), as a
// gateway in front of the CSP would: the fake's own limiter decides after the injected
// latency, where a loaded machine's timer jitter of tens of milliseconds on a 7 s sleep
// would be measured instead of cleanup's pacing. Each row drains 80 sandboxes with deletes in flight and,
// beside it, measures one delete at a time (CLEANUP_MAX_IN_FLIGHT=1) over its first few
// deletes, because draining 80 that way takes up to ten minutes a row. Every scenario has
// its own table and fake CSP, and all run at the same time: one run, one table.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/sandbox-broker/broker/internal/ddblocal"
	"github.com/sandbox-broker/broker/pkg/config"
	"github.com/sandbox-broker/broker/pkg/csp"
	"github.com/sandbox-broker/broker/pkg/csp/cspfake"
	"github.com/sandbox-broker/broker/pkg/jobs"
	"github.com/sandbox-broker/broker/pkg/pool"
)

const (
	token = "cleanupbench-token"
	// requestTimeout is the CSP client's default: a run starts a delete only while this
	// much (and the booking reserve) is left, which no bench run comes near.
	requestTimeout = 15 * time.Second
	// maxRuns bounds the runs per scenario: a run that stops on 429s leaves the rest to
	// the next one.
	maxRuns = 10
)

var poolCfg = config.Pool{LabDuration: 48 * time.Hour, Grace: 30 * time.Minute}

// scenario is one drain: sandboxes released at once, deleted by cleanup with inFlight
// deletes at most, against a CSP taking latency per delete and allowing rate per second.
type scenario struct {
	latency   time.Duration
	rate      float64
	inFlight  int
	sandboxes int
}

type result struct {
	drain     time.Duration
	rate      float64 // accepted deletes per second, first to last
	peak      int
	sent      int // delete requests, 429s included
	limited   int // answered 429
	runs      int
	remaining int
}

type row struct {
	concurrent, oneAtATime scenario
}

func main() {
	sandboxes := flag.Int("n", 80, "released sandboxes each concurrent row drains")
	baseline := flag.Int("baseline", 6, "deletes each one-at-a-time measurement makes")
	flag.Parse()
	if err := run(*sandboxes, *baseline); err != nil {
		fmt.Fprintln(os.Stderr, "cleanupbench:", err)
		os.Exit(1)
	}
}

func run(sandboxes, baseline int) error {
	ctx := context.Background()
	srv, err := ddblocal.Start(ctx, ddblocal.Options{})
	if err != nil {
		return err
	}
	defer srv.Stop()
	db, err := pool.NewClient(ctx, pool.ClientOptions{Endpoint: srv.Endpoint, Region: "us-east-1"})
	if err != nil {
		return err
	}
	var rows []row
	for _, c := range []struct {
		latency  time.Duration
		rate     float64
		inFlight int
	}{
		{2 * time.Second, 4, 16}, {7 * time.Second, 1, 16}, {7 * time.Second, 4, 16},
		// 16 in flight sustain 16 / 7 s = 2.3 deletes/s: 4/s at 7 s needs 28 and more.
		{7 * time.Second, 4, 32},
	} {
		rows = append(rows, row{
			concurrent: scenario{c.latency, c.rate, c.inFlight, sandboxes},
			oneAtATime: scenario{c.latency, c.rate, 1, baseline},
		})
	}

	results := make([][2]result, len(rows))
	errs := make(chan error, 2*len(rows))
	var wg sync.WaitGroup
	for i, r := range rows {
		for j, sc := range []scenario{r.concurrent, r.oneAtATime} {
			wg.Go(func() {
				res, err := drain(ctx, db, fmt.Sprintf("cleanupbench-%d-%d", i, j), sc)
				results[i][j] = res
				errs <- err
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	print(rows, results)
	return nil
}

// drain releases the scenario's sandboxes and runs cleanup until none is pending.
func drain(ctx context.Context, db *dynamodb.Client, table string, sc scenario) (result, error) {
	if err := pool.CreateTable(ctx, db, table); err != nil {
		return result{}, err
	}
	p := pool.New(db, table, pool.Options{})
	accounts := cspfake.Generate(sc.sandboxes, nil)
	fake := cspfake.New(cspfake.Options{Token: token})
	fake.Seed(accounts...)
	watch := fake.WatchDeletes()
	if err := fake.Start(); err != nil {
		return result{}, err
	}
	defer fake.Close()
	if err := releaseAll(ctx, p, accounts); err != nil {
		return result{}, err
	}
	if err := fake.SetFaults(cspfake.Faults{DeleteLatency: sc.latency}); err != nil {
		return result{}, err
	}
	watch.LimitArrivals(sc.rate)
	client, err := csp.New(csp.Options{BaseURL: fake.URL(), Token: token, RequestTimeout: requestTimeout})
	if err != nil {
		return result{}, err
	}
	vars := map[string]string{
		"CLEANUP_DELETES_PER_SECOND": strconv.FormatFloat(sc.rate, 'f', -1, 64),
		"CLEANUP_MAX_IN_FLIGHT":      strconv.Itoa(sc.inFlight),
	}
	cfg, err := config.LoadJobs(func(name string) string { return vars[name] })
	if err != nil {
		return result{}, err
	}
	runner, err := jobs.NewRunner(jobs.Deps{Pool: p, CSP: client, CSPRequestTimeout: requestTimeout, PoolConfig: poolCfg, Config: cfg})
	if err != nil {
		return result{}, err
	}

	var res result
	began := time.Now()
	for res.runs < maxRuns {
		// The runner bounds the run by the cleanup job's timeout, as Lambda does.
		_, err := runner.Run(ctx, "cleanup")
		res.runs++
		if err != nil {
			return result{}, err
		}
		if res.remaining, err = p.Count(ctx, pool.PendingDeletion); err != nil || res.remaining == 0 {
			break
		}
	}
	res.drain = time.Since(began)
	if accepted := fake.AcceptedDeletes(); len(accepted) > 1 {
		res.rate = float64(len(accepted)-1) / accepted[len(accepted)-1].Sub(accepted[0]).Seconds()
	}
	res.sent, res.limited, res.peak = len(watch.Arrivals()), len(watch.RateLimited()), watch.Peak()
	return res, err
}

// releaseAll puts the accounts into the pool as pending_deletion, each allocated to a
// student and released by that student.
func releaseAll(ctx context.Context, p *pool.Pool, accounts []cspfake.Account) error {
	sem := make(chan struct{}, 8)
	errs := make(chan error, len(accounts))
	var wg sync.WaitGroup
	for i, a := range accounts {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			errs <- release(ctx, p, a, fmt.Sprintf("student-%d", i))
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func release(ctx context.Context, p *pool.Pool, a cspfake.Account, student string) error {
	s, err := p.Create(ctx, pool.Account{ID: strconv.FormatInt(a.CSPID, 10), Name: a.Name, ExternalID: a.ID}, pool.Actor{Kind: "job", Name: "sync"})
	if err != nil {
		return err
	}
	now := time.Now()
	claim := pool.Claim{Student: student, IdempotencyKey: student, AllocatedAt: now.Unix(), ExpiresAt: now.Add(poolCfg.LabDuration).Unix()}
	actor := pool.Actor{Kind: "student", Name: student}
	if _, err := p.Claim(ctx, s, claim, actor); err != nil {
		return err
	}
	if s, err = p.Get(ctx, s.ID); err != nil {
		return err
	}
	_, err = p.Release(ctx, s, pool.Holder{Student: student}, actor)
	return err
}

func print(rows []row, results [][2]result) {
	fmt.Printf("\n%-8s %-8s | %-9s %8s %12s %6s %11s | %12s %16s %8s\n",
		"latency", "allowed", "in flight", "drain", "rate", "peak", "429s",
		"1-at-a-time", "drain (project.)", "429s")
	fmt.Println(strings.Repeat("-", 118))
	for i, r := range rows {
		c, b := results[i][0], results[i][1]
		drain := round(c.drain)
		if c.remaining > 0 {
			drain = fmt.Sprintf("%d left", c.remaining)
		}
		projected := "-"
		if b.rate > 0 {
			projected = round(time.Duration(float64(r.concurrent.sandboxes) / b.rate * float64(time.Second)))
		}
		fmt.Printf("%-8s %-8s | %-9d %8s %5.2f/s %3.0f%% %6d %4d %5.1f%% | %5.2f/s %4.0f%% %16s %3d/%-4d\n",
			r.concurrent.latency, fmt.Sprintf("%g/s", r.concurrent.rate), r.concurrent.inFlight, drain,
			c.rate, 100*c.rate/r.concurrent.rate, c.peak, c.limited, share(c.limited, c.sent),
			b.rate, 100*b.rate/r.concurrent.rate, projected, b.limited, b.sent)
	}
	fmt.Printf("\ndrain: %d released sandboxes, from the first cleanup run's start until none is pending (one run each here).\n", rows[0].concurrent.sandboxes)
	fmt.Println("rate: deletes the CSP accepted per second, first to last, and its share of the allowed rate.")
	fmt.Println("peak: most deletes in flight at the CSP at once. 429s: answered 429, and their share of all delete requests.")
	fmt.Printf("1-at-a-time: CLEANUP_MAX_IN_FLIGHT=1, measured over its first %d deletes in the same run; its drain of %d is\n", rows[0].oneAtATime.sandboxes, rows[0].concurrent.sandboxes)
	fmt.Println("projected from that rate (429s: answered 429 / delete requests).")
}

func share(n, of int) float64 {
	if of == 0 {
		return 0
	}
	return 100 * float64(n) / float64(of)
}

func round(d time.Duration) string { return d.Round(100 * time.Millisecond).String() }
