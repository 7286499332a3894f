// Package brokertest holds what the tests of pkg/broker and pkg/jobs share to seed a pool
// and to race students for its sandboxes.
package brokertest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/sandbox-broker/broker/pkg/broker"
	"github.com/sandbox-broker/broker/pkg/pool"
)

// Fill creates n available sandboxes named <prefix>-<first+i>, as the sync job would.
func Fill(t *testing.T, p *pool.Pool, prefix string, first, n int) {
	t.Helper()
	All(t, n, func(i int) error {
		i += first
		_, err := p.Create(context.Background(), pool.Account{
			ID: fmt.Sprint(3000000 + i), Name: fmt.Sprintf("%s-%05d", prefix, i),
			ExternalID: fmt.Sprintf("identity/accounts/00000000-0000-4000-8000-%012d", i),
		}, pool.Actor{Kind: "job", Name: "sync"})
		return err
	})
}

// All runs f(0) … f(n-1) at once and fails the test on an error.
func All(t *testing.T, n int, f func(i int) error) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() { errs <- f(i) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// Result is one student's request and what it was answered.
type Result struct {
	Req   broker.AllocateRequest
	Alloc broker.Allocation
	Err   error
}

// AllocateAll runs every request at once against b and returns the results in request
// order.
func AllocateAll(b *broker.Broker, reqs []broker.AllocateRequest) []Result {
	return AllocateEach(reqs, func(r broker.AllocateRequest) (broker.Allocation, error) {
		return b.Allocate(context.Background(), r)
	})
}

// AllocateEach runs allocate for every request at once and returns the results in
// request order.
func AllocateEach(reqs []broker.AllocateRequest, allocate func(broker.AllocateRequest) (broker.Allocation, error)) []Result {
	out := make([]Result, len(reqs))
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, r := range reqs {
		wg.Go(func() {
			<-start
			a, err := allocate(r)
			out[i] = Result{r, a, err}
		})
	}
	close(start)
	wg.Wait()
	return out
}

// Students makes n requests of distinct students of the client "instruqt" for prefix.
func Students(n int, prefix string) []broker.AllocateRequest {
	reqs := make([]broker.AllocateRequest, n)
	for i := range reqs {
		reqs[i] = broker.AllocateRequest{Student: fmt.Sprintf("student-%s-%d", prefix, i), NamePrefix: prefix, Client: "instruqt"}
	}
	return reqs
}

// AssertDistinct checks docs/architecture.md §5 (1) on the answers: no sandbox named to
// two students. It returns each sandbox's student.
func AssertDistinct(t *testing.T, results []Result) map[string]string {
	t.Helper()
	holder := map[string]string{}
	for _, r := range results {
		if r.Err != nil {
			continue
		}
		if prev, ok := holder[r.Alloc.SandboxID]; ok && prev != r.Req.Student {
			t.Fatalf("sandbox %s given to %s and %s", r.Alloc.SandboxID, prev, r.Req.Student)
		}
		holder[r.Alloc.SandboxID] = r.Req.Student
	}
	return holder
}

// Capped is a request of student of the client lab-a, whose cap is cap (0: none).
func Capped(student string, cap int) broker.AllocateRequest {
	return broker.AllocateRequest{Student: student, Client: "lab-a", ClientCap: cap}
}

// AllocateN allocates to n students of lab-a at once, under cap, and returns the winners;
// every other one must be refused with ErrClientLimit.
func AllocateN(t *testing.T, b *broker.Broker, prefix string, n, cap int) []Result {
	t.Helper()
	reqs := make([]broker.AllocateRequest, n)
	for i := range reqs {
		reqs[i] = Capped(fmt.Sprintf("%s-%d", prefix, i), cap)
	}
	var winners []Result
	for _, r := range AllocateAll(b, reqs) {
		switch {
		case r.Err == nil && r.Alloc.Created:
			winners = append(winners, r)
		case cap == 0 || !errors.Is(r.Err, broker.ErrClientLimit):
			t.Fatalf("%s: %+v %v", r.Req.Student, r.Alloc, r.Err)
		}
	}
	return winners
}
