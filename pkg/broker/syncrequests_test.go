package broker_test

import (
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/sandbox-broker/broker/pkg/broker"
	"github.com/sandbox-broker/broker/pkg/csp/cspfake"
	"github.com/sandbox-broker/broker/pkg/pool"
	"github.com/sandbox-broker/broker/pkg/pool/pooltest"
)

type countingDoer struct{ n atomic.Int64 }

func (c *countingDoer) Do(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return http.DefaultClient.Do(r)
}

// A sync of unchanged accounts writes nothing: it costs the lease (put, delete), the run
// record and the pool read, one query per StatusIndex shard of each live status plus one
// per further 1 MB page. Tombstones are not read.
func TestSyncOfUnchangedAccountsRequestCount(t *testing.T) {
	const n = 1000
	accounts := cspfake.Generate(n, nil)
	e := newJobEnv(t, envOptions{accounts: accounts})
	wantCounts(t, e.run(t, "sync"), map[string]int{"created": n})

	counted := &countingDoer{}
	db, err := pool.NewClient(ctx, pool.ClientOptions{Endpoint: pooltest.Endpoint(), Region: "us-east-1", HTTPClient: counted})
	if err != nil {
		t.Fatal(err)
	}
	runner, err := broker.NewJobRunner(broker.JobDeps{
		Pool: pool.New(db, e.pool.Table(), pool.Options{Now: e.clock.Now}), CSP: e.csp, PoolConfig: poolCfg, Config: e.cfg,
	})
	if err != nil {
		t.Fatal(err)
	}
	sum, err := runner.Run(ctx, "sync")
	if err != nil {
		t.Fatal(err)
	}
	wantCounts(t, sum, map[string]int{"unchanged": n, "created": 0, "refreshed": 0})
	// 3 for the lease and the run record, 5 live statuses of 8 shards under 1 MB each.
	want := int64(3 + len(pool.LiveStatuses)*pool.Shards)
	t.Logf("a sync of %d unchanged accounts made %d DynamoDB requests", n, counted.n.Load())
	if got := counted.n.Load(); got != want {
		t.Fatalf("a sync of %d unchanged accounts made %d DynamoDB requests, want %d", n, got, want)
	}
	pooltest.Check(t, e.pool)
}
