package broker_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/sandbox-broker/broker/pkg/broker"
	"github.com/sandbox-broker/broker/pkg/config"
	"github.com/sandbox-broker/broker/pkg/pool"
	"github.com/sandbox-broker/broker/pkg/pool/pooltest"
)

func TestMain(m *testing.M) { pooltest.Main(m) }

var (
	ctx     = context.Background()
	syncJob = pool.Actor{Kind: "job", Name: "sync"}
	poolCfg = config.Pool{LabDuration: 48 * time.Hour, Grace: 30 * time.Minute}
)

// fill creates available sandboxes named <prefix>-<n> and returns their IDs.
func fill(t *testing.T, p *pool.Pool, prefix string, first, n int) {
	t.Helper()
	all(t, n, func(i int) error {
		i += first
		_, err := p.Create(ctx, pool.Account{
			ID: fmt.Sprint(3000000 + i), Name: fmt.Sprintf("%s-%05d", prefix, i),
			ExternalID: fmt.Sprintf("identity/accounts/00000000-0000-4000-8000-%012d", i),
		}, syncJob)
		return err
	})
}

// all runs f(0) … f(n-1) at once and fails the test on an error.
func all(t *testing.T, n int, f func(i int) error) {
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

type result struct {
	req   broker.AllocateRequest
	alloc broker.Allocation
	err   error
}

// allocateAll runs every request at once and returns the results in request order.
func allocateAll(b *broker.Broker, reqs []broker.AllocateRequest) []result {
	return allocateEach(reqs, func(r broker.AllocateRequest) (broker.Allocation, error) { return b.Allocate(ctx, r) })
}

// allocateEach runs allocate for every request at once and returns the results in
// request order.
func allocateEach(reqs []broker.AllocateRequest, allocate func(broker.AllocateRequest) (broker.Allocation, error)) []result {
	out := make([]result, len(reqs))
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, r := range reqs {
		wg.Go(func() {
			<-start
			a, err := allocate(r)
			out[i] = result{r, a, err}
		})
	}
	close(start)
	wg.Wait()
	return out
}

func students(n int, prefix string) []broker.AllocateRequest {
	reqs := make([]broker.AllocateRequest, n)
	for i := range reqs {
		reqs[i] = broker.AllocateRequest{Student: fmt.Sprintf("student-%s-%d", prefix, i), NamePrefix: prefix, Client: "instruqt"}
	}
	return reqs
}
