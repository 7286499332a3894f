package niosxaas_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/sandbox-broker/broker/internal/testkit"
	"github.com/sandbox-broker/broker/pkg/niosxaas"
	"github.com/sandbox-broker/broker/pkg/niosxaas/niosxaasfake"
)

// One sign-in serves many sandboxes and, the client being kept warm by the Lambda, the
// next run too.
func TestOneSignInAcrossSandboxesAndRuns(t *testing.T) {
	t.Parallel()
	fake := startFake(t, niosxaasfake.Options{})
	c, _ := newClient(t, fake.URL(), nil)
	for run := range 2 {
		for i := range 10 {
			id := sandboxID(run*10 + i)
			fake.Seed(id, svc("a", serviceName))
			if got := c.Clean(context.Background(), id); got.Result != niosxaas.Cleaned {
				t.Fatalf("run %d sandbox %d: %+v", run, i, got)
			}
		}
	}
	if n := fake.Counters(); n.SignIns != 1 || len(n.Switches) != 20 {
		t.Fatalf("%d sign-ins and %d switched accounts, want 1 and 20", n.SignIns, len(n.Switches))
	}
}

func TestSessionIsRenewedWhenItExpires(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name     string
		omitExp  bool
		lifetime time.Duration // what the client believes
	}{
		{"exp claim", false, time.Hour},
		{"no exp claim: the session TTL", true, 10 * time.Minute},
	} {
		t.Run(tt.name, func(t *testing.T) {
			clock := testkit.NewClock(time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC))
			fake := startFake(t, niosxaasfake.Options{TokenTTL: time.Hour, OmitExp: tt.omitExp, Now: clock.Now})
			c, _ := newClient(t, fake.URL(), func(o *niosxaas.Options) { o.Now = clock.Now; o.Timeout = 30 * time.Second })
			clean := func() {
				t.Helper()
				if got := c.Clean(context.Background(), sandboxID(1)); got.Result != niosxaas.NoneToClean {
					t.Fatalf("outcome %+v", got)
				}
			}
			clean()
			// Usable up to its last Timeout, so no call outlives it.
			clock.Advance(tt.lifetime - 31*time.Second)
			clean()
			if n := fake.Counters().SignIns; n != 1 {
				t.Fatalf("%d sign-ins before expiry, want 1", n)
			}
			clock.Advance(time.Second)
			clean()
			if n := fake.Counters().SignIns; n != 2 {
				t.Fatalf("%d sign-ins after expiry, want 2", n)
			}
		})
	}
}

// TestSessionIsTimedOnTheWallClock freezes the process past the session's end, as Lambda
// freezes an idle environment between cleanup runs, on a host whose monotonic clock stands
// still meanwhile. The next step must sign in again; timed on the monotonic reading, the
// client would keep using a session NIOSXaaS has ended.
func TestSessionIsTimedOnTheWallClock(t *testing.T) {
	t.Parallel()
	clock := testkit.NewMonotonicClock()
	fake := startFake(t, niosxaasfake.Options{OmitExp: true})
	c, _ := newClient(t, fake.URL(), func(o *niosxaas.Options) { o.Now = clock.Now; o.SessionTTL = 10 * time.Minute })
	for range 2 {
		if got := c.Clean(context.Background(), sandboxID(1)); got.Result != niosxaas.NoneToClean {
			t.Fatalf("outcome %+v", got)
		}
		clock.Thaw(time.Hour)
	}
	if n := fake.Counters().SignIns; n != 2 {
		t.Fatalf("%d sign-ins for two steps an hour apart, want 2: the session outlived its 10 minutes", n)
	}
}

func TestRevokedSessionCostsOneSignInAndOneRetry(t *testing.T) {
	t.Parallel()
	fake := startFake(t, niosxaasfake.Options{})
	c, _ := newClient(t, fake.URL(), nil)
	first, second := sandboxID(1), sandboxID(2)
	fake.Seed(second, svc("a", serviceName))
	if got := c.Clean(context.Background(), first); got.Result != niosxaas.NoneToClean {
		t.Fatalf("outcome %+v", got)
	}
	fake.RevokeSessions()
	if got := c.Clean(context.Background(), second); got.Result != niosxaas.Cleaned || got.Services != 1 {
		t.Fatalf("after the revocation: %+v, want cleaned 1", got)
	}
	if n := fake.Counters(); n.SignIns != 2 || n.Switches[second] != 2 {
		t.Fatalf("%d sign-ins, %d switches, want 2 and 2 (the rejected one, the retry)", n.SignIns, n.Switches[second])
	}
}

// Sixteen sandboxes whose switches are all refused at once share one new sign-in.
func TestRevokedSessionUnderConcurrencyCostsOneSignIn(t *testing.T) {
	t.Parallel()
	fake := startFake(t, niosxaasfake.Options{})
	c, _ := newClient(t, fake.URL(), nil)
	c.Clean(context.Background(), sandboxID(0))
	fake.RevokeSessions()
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			if got := c.Clean(context.Background(), sandboxID(i+1)); got.Result != niosxaas.NoneToClean {
				t.Errorf("sandbox %d: %+v", i+1, got)
			}
		})
	}
	wg.Wait()
	if n := fake.Counters().SignIns; n != 2 {
		t.Fatalf("%d sign-ins, want 2", n)
	}
}

// A cold client hit by 16 sandboxes at the same moment signs in once: the sign-in is held
// in the fake until the 15 others are provably waiting for it.
func TestConcurrentSandboxesNeedingASessionShareOneSignIn(t *testing.T) {
	t.Parallel()
	entered, release := make(chan struct{}, 16), make(chan struct{})
	fake := startFake(t, niosxaasfake.Options{BeforeSignIn: func() {
		entered <- struct{}{}
		<-release
	}})
	c, _ := newClient(t, fake.URL(), nil)
	outcomes := make([]niosxaas.Outcome, 16)
	var wg sync.WaitGroup
	for i := range 16 {
		fake.Seed(sandboxID(i), svc("a", serviceName))
		wg.Go(func() { outcomes[i] = c.Clean(context.Background(), sandboxID(i)) })
	}
	<-entered
	testkit.Eventually(t, "15 callers waiting for the sign-in", func() bool { return c.SignInWaiters() == 15 })
	close(release)
	wg.Wait()
	for i, got := range outcomes {
		if got.Result != niosxaas.Cleaned || got.Services != 1 {
			t.Errorf("sandbox %d: %+v", i, got)
		}
	}
	if n := fake.Counters().SignIns; n != 1 {
		t.Fatalf("%d sign-ins, want 1", n)
	}
}

// A failed sign-in is shared by its waiters and not cached: the next call tries again.
func TestFailedSignInIsNotCached(t *testing.T) {
	t.Parallel()
	fake := startFake(t, niosxaasfake.Options{})
	if err := fake.SetFaults(niosxaasfake.Faults{SignIn: niosxaasfake.Endpoint{Fail: niosxaasfake.Failure{Trigger: niosxaasfake.Trigger{Next: 1}, Status: 503}}}); err != nil {
		t.Fatal(err)
	}
	c, _ := newClient(t, fake.URL(), nil)
	if got := c.Clean(context.Background(), sandboxID(1)); got.Result != niosxaas.Failed {
		t.Fatalf("outcome %+v, want failed", got)
	}
	if got := c.Clean(context.Background(), sandboxID(1)); got.Result != niosxaas.NoneToClean {
		t.Fatalf("outcome %+v, want none_to_clean after the sign-in recovered", got)
	}
	if n := fake.Counters().SignIns; n != 2 {
		t.Fatalf("%d sign-ins, want 2", n)
	}
}
