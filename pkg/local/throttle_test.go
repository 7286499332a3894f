package local

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/sandbox-broker/broker/pkg/api"
	"github.com/sandbox-broker/broker/pkg/api/apitest"
)

// A burst beyond a small stage throttle: exactly Burst requests pass at one instant, the
// rest get THROTTLED (429 RATE_LIMIT_EXCEEDED with Retry-After) in the envelope, and the
// bucket refills at Rate per second. Over HTTP to 127.0.0.1, on the gateway's clock.
func TestGatewayThrottlesBeyondTheStageLimit(t *testing.T) {
	g, _, mu, clock := countingGateway(t, 0)
	g.stage = newTokenBucket(api.Throttle{Rate: 2, Burst: 5}, *clock)
	srv := httptest.NewServer(g)
	t.Cleanup(srv.Close)

	burst := func(n int) (passed, throttled int) {
		for range n {
			resp, err := http.Get(srv.URL + "/healthz")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			switch resp.StatusCode {
			case http.StatusOK:
				passed++
			case http.StatusTooManyRequests:
				throttled++
				apitest.CheckError(t, resp.StatusCode, resp.Header, body)
				if d := apitest.DecodeError(t, body); d.Code != api.CodeRateLimited || resp.Header.Get("Retry-After") != "1" {
					t.Fatalf("throttled answer: %s, Retry-After %q", body, resp.Header.Get("Retry-After"))
				}
			default:
				t.Fatalf("GET /healthz: %d %s", resp.StatusCode, body)
			}
		}
		return passed, throttled
	}
	if p, th := burst(12); p != 5 || th != 7 {
		t.Fatalf("a burst of 12 at one instant: %d passed, %d throttled; want 5 and 7", p, th)
	}
	mu.Lock()
	*clock = clock.Add(1500 * time.Millisecond)
	mu.Unlock()
	if p, th := burst(5); p != 3 || th != 2 {
		t.Fatalf("1.5 s later at 2/s: %d passed, %d throttled; want 3 and 2", p, th)
	}
}

// The default stage throttle (api.StageThrottle, what the stack deploys) lets the morning
// rush through: 1 000 requests over HTTP to the local stack, 50 at a time, none
// throttled. The stage throttle counts every route alike, so the burst uses /healthz.
func TestDefaultStageThrottlePassesAThousandRequestBurst(t *testing.T) {
	if api.StageThrottle.Burst < 1000 {
		t.Fatalf("the default burst %d cannot hold 1 000 requests at once", api.StageThrottle.Burst)
	}
	s, _, _ := startStack(t, nil)
	const total, workers = 1000, 50
	statuses := map[int]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	jobs := make(chan struct{}, total)
	for range total {
		jobs <- struct{}{}
	}
	close(jobs)
	for range workers {
		wg.Go(func() {
			for range jobs {
				resp, err := http.Get(s.URL + "/healthz")
				status := -1
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					status = resp.StatusCode
				}
				mu.Lock()
				statuses[status]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if statuses[http.StatusOK] != total {
		t.Fatalf("statuses of a 1 000-request burst: %v, want all 200", statuses)
	}
}

// The track client's own throttle (a token's rate and burst; BROKER_TRACK_RATE and
// BROKER_TRACK_BURST locally) over HTTP through the local stack: requests beyond its burst,
// sent all at once, get 429 RATE_LIMIT_EXCEEDED in the envelope, while the admin client,
// which has no limit of its own, is not throttled. Sent at once, not one after the other:
// however slowly each is answered, they reach the throttle together; and 30 of them leave
// some throttled unless the machine took half a minute to deliver them.
func TestClientThrottleOverHTTP(t *testing.T) {
	s, _, _ := startStack(t, map[string]string{"BROKER_TRACK_RATE": "1", "BROKER_TRACK_BURST": "2"})
	c := client{t, s.URL}
	h := track(s.TrackToken, "student-throttled")
	const n = 30
	answers, errs := make([]answer, n), make([]error, n)
	fire := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-fire
			answers[i], errs[i] = c.send("GET", "/v1/sandboxes/3000001", h, nil)
		})
	}
	start := time.Now()
	close(fire)
	wg.Wait()
	passed, throttled := 0, 0
	for i, a := range answers {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		c.check("GET", "/v1/sandboxes/3000001", a)
		switch a.status {
		case http.StatusTooManyRequests:
			throttled++
			if d := apitest.DecodeError(t, a.body); d.Code != api.CodeRateLimited || a.header.Get("Retry-After") == "" {
				t.Fatalf("throttled answer %s", a.body)
			}
		default:
			passed++
		}
	}
	// At most the burst plus one refill per elapsed second passed.
	if most := 2 + int(time.Since(start).Seconds()) + 1; passed > most || throttled == 0 {
		t.Fatalf("%d passed and %d throttled of %d; at most %d may pass", passed, throttled, n, most)
	}
	for range n {
		if a := c.do("GET", "/v1/admin/stats", track(s.AdminToken, ""), nil); a.status != http.StatusOK {
			t.Fatalf("the admin client: %d %s", a.status, a.body)
		}
	}
}
