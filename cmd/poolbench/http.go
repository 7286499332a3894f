package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/sandbox-broker/broker/pkg/api"
	"github.com/sandbox-broker/broker/pkg/local"
)

// httpBurst starts the local stack (make run's, warmed before it reports ready, in the
// execution model LOCAL_EXECUTION_MODEL names) with B sandboxes named lab-NNNN, or reuses
// the stack at url with token, and sends B students at once, each on a fresh TCP
// connection released on one barrier, with the prefix "lab" (Instruqt's default). It
// prints success, 409s and latency, and for a stack it started the execution model and
// the cold starts the burst caused.
func httpBurst(ctx context.Context, b int, url, token string) error {
	var stack *local.Stack
	model := "of the stack at -url"
	if url == "" {
		env := func(name string) string {
			switch name {
			case "SEED_SANDBOXES":
				return fmt.Sprint(b)
			case "SEED_PREFIXES":
				return "lab"
			case "PORT":
				return "0"
			case "LOG_LEVEL":
				return "error"
			}
			return os.Getenv(name)
		}
		t0 := time.Now()
		s, err := local.Start(ctx, env, io.Discard, io.Discard)
		if err != nil {
			return err
		}
		defer s.Stop()
		fmt.Fprintf(os.Stderr, "local stack ready (warmed) in %s\n", time.Since(t0).Round(time.Millisecond))
		url, token, stack, model = s.URL, s.TrackToken, s, "LOCAL_EXECUTION_MODEL="+s.ExecutionModel
	}
	before := functionStats(stack)
	lat := make([]time.Duration, b)
	codes := make([]int, b)
	var ready, wg sync.WaitGroup
	start := make(chan struct{})
	ready.Add(b)
	for i := range b {
		wg.Go(func() {
			// One client per student: its own connection, dialled after the barrier.
			c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 60 * time.Second}
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url+"/v1/allocate", nil)
			req.Header.Set("Authorization", "Bearer "+token)
			req.Header.Set(api.HeaderSandboxID, fmt.Sprintf("http-student-%d", i))
			req.Header.Set(api.HeaderNamePrefix, "lab")
			ready.Done()
			<-start
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
	t0 := time.Now()
	close(start)
	wg.Wait()
	wall := time.Since(t0)
	created, conflicts, other := 0, 0, 0
	for _, c := range codes {
		switch c {
		case http.StatusCreated:
			created++
		case http.StatusConflict:
			conflicts++
		default:
			other++
		}
	}
	slices.Sort(lat)
	fmt.Printf("\nHTTP burst through the local stack (%s), B = %d, exact fit, prefix lab, one fresh connection per student\n", model, b)
	fmt.Printf("success %.1f%%  409: %d  other: %d  p50 %s  p99 %s  wall %s\n", 100*float64(created)/float64(b), conflicts, other,
		round(lat[b/2]), round(lat[b*99/100]), round(wall))
	after := functionStats(stack)
	for _, name := range slices.Sorted(maps.Keys(after)) {
		f, was := after[name], before[name]
		if n := f.ColdStarts - was.ColdStarts; n > 0 {
			fmt.Printf("cold starts of %s: %d, init %s on average; throttles %d\n", name, n,
				round((f.InitTime-was.InitTime)/time.Duration(n)), f.Throttles-was.Throttles)
		}
	}
	return nil
}

// functionStats are the stack's counts per function (none for a stack at -url).
func functionStats(s *local.Stack) map[string]local.FunctionStats {
	out := map[string]local.FunctionStats{}
	if s != nil {
		for _, f := range s.Functions() {
			out[f.Name] = f
		}
	}
	return out
}
