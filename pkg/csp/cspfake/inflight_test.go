package cspfake

import (
	"net/http"
	"testing"
	"time"

	"github.com/sandbox-broker/broker/internal/testkit"
)

// TestDeleteWatchHoldsCountsAndReleases holds three deletes, checks they are counted in
// flight and not answered, lets one go, then the rest, and checks the 429 records. The
// server's clock stands still, so its limiters refill only when the test says.
func TestDeleteWatchHoldsCountsAndReleases(t *testing.T) {
	accounts := Generate(4, nil)
	clock := testkit.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	s, w := StartedWatchingDeletes(t, Options{Token: token, Now: clock.Now}, accounts...)
	w.Hold()
	answered := make(chan int, 3)
	for _, a := range accounts[:3] {
		go func() {
			// Not do: t.Fatal must not be called outside the test's goroutine.
			req, _ := http.NewRequest(http.MethodDelete, s.URL()+"/sandbox/accounts/"+a.UUID(), nil)
			req.Header.Set("Authorization", "Token "+token)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				answered <- 0
				return
			}
			_ = resp.Body.Close()
			answered <- resp.StatusCode
		}()
	}
	ctx := testkit.Patience(t)
	if err := w.WaitHeld(ctx, 3); err != nil {
		t.Fatal(err)
	}
	if w.InFlight() != 3 || len(s.Deletes()) != 0 {
		t.Fatalf("%d in flight, %d answered while held", w.InFlight(), len(s.Deletes()))
	}
	w.Release(1)
	if status := <-answered; status != http.StatusOK {
		t.Fatalf("released delete answered %d", status)
	}
	if err := w.WaitInFlight(ctx, 2); err != nil || len(s.Deletes()) != 1 {
		t.Fatalf("after one release: %d answered, %v", len(s.Deletes()), err)
	}
	w.ReleaseAll()
	<-answered
	<-answered
	if err := w.WaitInFlight(ctx, 0); err != nil || w.Peak() != 3 || len(w.Arrivals()) != 3 {
		t.Fatalf("peak %d, %d arrivals, %v", w.Peak(), len(w.Arrivals()), err)
	}

	// Not holding any more: a limited delete goes straight through and its 429 is kept.
	if err := s.SetFaults(Faults{DeleteRateLimit: 0.5}); err != nil {
		t.Fatal(err)
	}
	do(t, http.MethodDelete, s.URL()+"/sandbox/accounts/"+accounts[3].UUID(), "Token "+token)
	resp, _ := do(t, http.MethodDelete, s.URL()+"/sandbox/accounts/"+accounts[3].UUID(), "Token "+token)
	limited := w.RateLimited()
	if resp.StatusCode != http.StatusTooManyRequests || len(limited) != 1 || limited[0].RetryAfter != 2*time.Second {
		t.Fatalf("status %d, rate limited %+v", resp.StatusCode, limited)
	}

	// A limiter at arrival answers before the server sees the request.
	if err := s.SetFaults(Faults{}); err != nil {
		t.Fatal(err)
	}
	w.LimitArrivals(0.5)
	seen := len(s.Deletes())
	first, _ := do(t, http.MethodDelete, s.URL()+"/sandbox/accounts/"+accounts[3].UUID(), "Token "+token)
	second, _ := do(t, http.MethodDelete, s.URL()+"/sandbox/accounts/"+accounts[3].UUID(), "Token "+token)
	limited = w.RateLimited()
	if first.StatusCode != http.StatusNotFound || second.StatusCode != http.StatusTooManyRequests || second.Header.Get("Retry-After") != "2" ||
		len(limited) != 2 || limited[1].RetryAfter != 2*time.Second || len(s.Deletes()) != seen+1 {
		t.Fatalf("arrival limiter: %d then %d (Retry-After %q), limited %+v, %d deletes reached the server",
			first.StatusCode, second.StatusCode, second.Header.Get("Retry-After"), limited, len(s.Deletes())-seen)
	}
}
