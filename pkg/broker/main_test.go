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
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := first; i < first+n; i++ {
		wg.Go(func() {
			_, err := p.Create(ctx, pool.Account{
				ID: fmt.Sprint(3000000 + i), Name: fmt.Sprintf("%s-%05d", prefix, i),
				ExternalID: fmt.Sprintf("identity/accounts/00000000-0000-4000-8000-%012d", i),
			}, syncJob)
			errs <- err
		})
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
	out := make([]result, len(reqs))
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, r := range reqs {
		wg.Go(func() {
			<-start
			a, err := b.Allocate(ctx, r)
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
