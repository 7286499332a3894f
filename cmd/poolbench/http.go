package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sandbox-broker/broker/internal/ddblimits"
	"github.com/sandbox-broker/broker/pkg/api"
	"github.com/sandbox-broker/broker/pkg/local"
)

// httpBurst starts the local stack in Lambda's instance model (each invocation in an
// instance of its own, cold starts with their init, pkg/local) with B sandboxes named
// lab-NNNN, on endpoint's DynamoDB Local behind a ddblimits proxy (lm's limits, or none:
// then it only counts), and sends B students with the prefix "lab" (Instruqt's default),
// each on a fresh TCP connection released on one barrier: at once, or each after its
// script's sleep (sc.spread). Its row counts the
// DynamoDB requests and units the proxy saw during the burst; the lost claims are not
// visible from outside the functions.
func httpBurst(ctx context.Context, sc scenario, endpoint string, lm limitsMode) (row, error) {
	b := sc.students
	cfg := ddblimits.Config{}
	if lm.cfg != nil {
		cfg = *lm.cfg
	}
	proxy, err := ddblimits.Start(endpoint, cfg)
	if err != nil {
		return row{}, err
	}
	defer proxy.Stop()
	vars := map[string]string{
		"SEED_SANDBOXES": fmt.Sprint(b), "SEED_PREFIXES": "lab", "PORT": "0", "LOG_LEVEL": "error",
		"DYNAMODB_ENDPOINT": proxy.URL, "TABLE_NAME": fmt.Sprintf("bench-http-%s-%d", lm.name, b),
		"DYNAMODB_LIMITS": "false", "LOCAL_EXECUTION_MODEL": "instances",
	}
	env := func(name string) string {
		if v, ok := vars[name]; ok {
			return v
		}
		return os.Getenv(name)
	}
	t0 := time.Now()
	stack, err := local.Start(ctx, env, io.Discard, io.Discard)
	if err != nil {
		return row{}, err
	}
	defer stack.Stop()
	fmt.Fprintf(os.Stderr, "local stack ready in %s (LOCAL_EXECUTION_MODEL=%s)\n", time.Since(t0).Round(time.Millisecond), stack.ExecutionModel)
	before, countsBefore := functionStats(stack), proxy.Counts()
	lat := make([]time.Duration, b)
	codes := make([]int, b)
	var ready, wg sync.WaitGroup
	start := make(chan struct{})
	ready.Add(b)
	for i := range b {
		wg.Go(func() {
			// One client per student: its own connection, dialled after the barrier.
			c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 60 * time.Second}
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, stack.URL+"/v1/allocate", nil)
			req.Header.Set("Authorization", "Bearer "+stack.TrackToken)
			req.Header.Set(api.HeaderSandboxID, fmt.Sprintf("http-student-%d", i))
			req.Header.Set(api.HeaderNamePrefix, "lab")
			ready.Done()
			<-start
			sc.arrive()
			t0 := time.Now()
			resp, err := c.Do(req)
			lat[i] = time.Since(t0)
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				codes[i] = resp.StatusCode
			}
		})
	}
	ready.Wait()
	t0 = time.Now()
	close(start)
	wg.Wait()
	wall := time.Since(t0)
	counts := proxy.Counts()
	r := row{scenario: sc.name, strategy: "http", limits: lm.name, n: b, lost: -1, wall: wall,
		requests: int64(counts.Requests - countsBefore.Requests),
		refused:  counts.Total(ddblimits.Throttle) + counts.Total(ddblimits.Conflict) - countsBefore.Total(ddblimits.Throttle) - countsBefore.Total(ddblimits.Conflict)}
	if lm.cfg == nil {
		r.rcu, r.wcu = -1, -1 // the proxy prices units only where it applies limits
	}
	for resource, units := range counts.Units {
		switch {
		case strings.HasSuffix(resource, " read"):
			r.rcu += units - countsBefore.Units[resource]
		case strings.HasSuffix(resource, " write"):
			r.wcu += units - countsBefore.Units[resource]
		}
	}
	for _, c := range codes {
		switch {
		case c == http.StatusCreated:
			r.ok++
		case c == http.StatusConflict:
			r.conflicts++
		default:
			r.failed++
		}
	}
	slices.Sort(lat)
	r.p50, r.p99 = lat[b/2], lat[b*99/100]
	after := functionStats(stack)
	for name, f := range after {
		was := before[name]
		n := f.ColdStarts - was.ColdStarts
		if n == 0 {
			continue
		}
		fmt.Fprintf(os.Stderr, "%s / http / limits %s: cold starts of %s: %d, init %s on average; throttles %d\n", sc.name, lm.name, name, n,
			round((f.InitTime-was.InitTime)/time.Duration(n)), f.Throttles-was.Throttles)
		if name == "allocate" {
			r.coldStarts, r.initTime = n, (f.InitTime-was.InitTime)/time.Duration(n)
		}
	}
	fmt.Fprintf(os.Stderr, "%s / http / limits %s / N=%d: DynamoDB during the burst: %d requests; %s", sc.name, lm.name, b, r.requests, counts)
	return r, nil
}

// functionStats are the stack's counts per function.
func functionStats(s *local.Stack) map[string]local.FunctionStats {
	out := map[string]local.FunctionStats{}
	for _, f := range s.Functions() {
		out[f.Name] = f
	}
	return out
}
