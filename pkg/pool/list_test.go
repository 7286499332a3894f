package pool_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/sandbox-broker/broker/pkg/pool"
	"github.com/sandbox-broker/broker/pkg/pool/pooltest"
)

// load writes sandboxes straight into the table, 25 per BatchWriteItem, 8 batches at once.
func load(t *testing.T, p *pool.Pool, sandboxes []pool.Sandbox) {
	t.Helper()
	var batches [][]types.WriteRequest
	for _, s := range sandboxes {
		for _, item := range pool.StoredItems(s) {
			if len(batches) == 0 || len(batches[len(batches)-1]) == 25 {
				batches = append(batches, nil)
			}
			batches[len(batches)-1] = append(batches[len(batches)-1], types.WriteRequest{PutRequest: &types.PutRequest{Item: item}})
		}
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for _, b := range batches {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			pending := map[string][]types.WriteRequest{p.Table(): b}
			for len(pending) > 0 {
				out, err := pooltest.Client().BatchWriteItem(context.Background(), &dynamodb.BatchWriteItemInput{RequestItems: pending})
				if err != nil {
					t.Error(err)
					return
				}
				pending = out.UnprocessedItems
			}
		})
	}
	wg.Wait()
}

// mixedPool makes n sandboxes cycling through the statuses that need no owner record,
// tombstones among them, with names from three labs, each as its transitions store it.
func mixedPool(n int) []pool.Sandbox {
	statuses := []pool.Status{pool.Available, pool.PendingDeletion, pool.Stale, pool.DeletionFailed, pool.Available, pool.Deleted, pool.Retired}
	labs := []string{"lab-dns", "lab-dhcp", "ipam"}
	out := make([]pool.Sandbox, n)
	for i := range out {
		at := time.Now().Unix() - 3600 + int64(i%97)
		s := pool.Sandbox{
			ID: fmt.Sprint(5_000_000 + i), Name: fmt.Sprintf("%s-%05d", labs[i%len(labs)], i),
			ExternalID: fmt.Sprintf("identity/accounts/00000000-0000-4000-8000-%012d", i),
			Status:     statuses[i%len(statuses)], StatusAt: at, UpdatedAt: at, Rev: 1,
		}
		s.AccountUUID = pool.AccountUUID(s.ExternalID)
		switch s.Status {
		case pool.PendingDeletion:
			s.DeletionRequestedAt = at
		case pool.Stale:
			s.StaleSince = at
		case pool.Deleted:
			// Confirmed deletes and never-allocated retired records expire.
			s.DeleteAnswer = pool.DeleteConfirmed
			s.TTL = at + 90*24*3600
		case pool.Retired:
			s.TTL = at + 90*24*3600
		}
		out[i] = s
	}
	return out
}

func TestListPagesThroughEverySandboxExactlyOnce(t *testing.T) {
	p := pooltest.New(t)
	all := mixedPool(1000)
	load(t, p, all)
	for _, f := range []pool.ListFilter{{}, {Status: pool.Available}, {Prefix: "lab-d"}, {Status: pool.Stale, Prefix: "ipam"}, {Status: pool.Deleted}, {Status: pool.Retired, Prefix: "lab-d"}} {
		want := map[string]bool{}
		for _, s := range all {
			if (f.Status == "" || s.Status == f.Status) && strings.HasPrefix(s.Name, f.Prefix) {
				want[s.ID] = true
			}
		}
		seen := map[string]bool{}
		cursor, pages := "", 0
		for {
			page, err := p.List(ctx, f, 37, cursor)
			if err != nil {
				t.Fatalf("%+v page %d: %v", f, pages, err)
			}
			pages++
			if len(page.Sandboxes) > 37 {
				t.Fatalf("%+v: page of %d", f, len(page.Sandboxes))
			}
			for _, s := range page.Sandboxes {
				if seen[s.ID] || !want[s.ID] {
					t.Fatalf("%+v: %s listed twice or not matching", f, s.ID)
				}
				seen[s.ID] = true
			}
			if cursor = page.Cursor; cursor == "" {
				break
			}
		}
		if len(seen) != len(want) {
			t.Fatalf("%+v: listed %d of %d in %d pages", f, len(seen), len(want), pages)
		}
	}
}

func TestListRefusesTamperedAndForeignCursors(t *testing.T) {
	p := pooltest.New(t)
	load(t, p, mixedPool(30))
	page, err := p.List(ctx, pool.ListFilter{Status: pool.Available}, 5, "")
	if err != nil || page.Cursor == "" {
		t.Fatalf("first page: %v %q", err, page.Cursor)
	}
	other := pooltest.New(t)
	load(t, other, mixedPool(30))
	otherPage, err := other.List(ctx, pool.ListFilter{Status: pool.Available}, 5, "")
	if err != nil {
		t.Fatal(err)
	}
	flipped := []byte(page.Cursor)
	flipped[3] ^= 0x01
	for name, tc := range map[string]struct {
		f      pool.ListFilter
		cursor string
	}{
		"garbage":         {pool.ListFilter{Status: pool.Available}, "not-a-cursor"},
		"empty sum":       {pool.ListFilter{Status: pool.Available}, strings.Split(page.Cursor, ".")[0] + "."},
		"flipped byte":    {pool.ListFilter{Status: pool.Available}, string(flipped)},
		"other listing":   {pool.ListFilter{Status: pool.Stale}, page.Cursor},
		"other prefix":    {pool.ListFilter{Status: pool.Available, Prefix: "lab"}, page.Cursor},
		"other table":     {pool.ListFilter{Status: pool.Available}, otherPage.Cursor},
		"oversized":       {pool.ListFilter{Status: pool.Available}, strings.Repeat("A", 5000)},
		"unicode garbage": {pool.ListFilter{Status: pool.Available}, "☃.☃"},
		"json not ours":   {pool.ListFilter{Status: pool.Available}, "e30.AAAA"},
	} {
		if _, err := p.List(ctx, tc.f, 5, tc.cursor); !errors.Is(err, pool.ErrInvalidCursor) {
			t.Errorf("%s: want ErrInvalidCursor, got %v", name, err)
		}
	}
	if _, err := p.List(ctx, pool.ListFilter{Status: pool.Available}, 5, page.Cursor); err != nil {
		t.Fatalf("the genuine cursor is refused: %v", err)
	}
}

// Exact statistics over 10 000 sandboxes, checked against the numbers that were loaded, and
// the requests they cost.
func TestStatsExactForTenThousand(t *testing.T) {
	p := pooltest.New(t)
	all := mixedPool(10_000)
	t0 := time.Now()
	load(t, p, all)
	t.Logf("loaded 10 000 sandboxes in %v", time.Since(t0))
	// Some real allocations on top, so allocated is counted too.
	fresh := seed(t, p, account(1), account(2), account(3))
	for i, s := range fresh {
		if _, err := p.Claim(ctx, s, claimFor(fmt.Sprint("s", i), time.Now()), student); err != nil {
			t.Fatal(err)
		}
	}
	want := pool.Stats{ByStatus: map[pool.Status]int{pool.Allocated: 3}, AvailableByPrefix: map[string]int{}}
	for _, s := range all {
		want.ByStatus[s.Status]++
		if s.Status == pool.Available {
			want.AvailableByPrefix[pool.NamePrefix(s.Name)]++
		}
		if at := s.DeletionRequestedAt; s.Status == pool.PendingDeletion && at > 0 && (want.OldestPendingDeletionAt == 0 || at < want.OldestPendingDeletionAt) {
			want.OldestPendingDeletionAt = at
		}
	}
	want.Total = 3
	for status, n := range want.ByStatus {
		if !status.Tombstone() && status != pool.Allocated {
			want.Total += n
		}
	}
	counted := &countingClient{}
	db, err := pool.NewClient(ctx, pool.ClientOptions{Endpoint: pooltest.Endpoint(), Region: "us-east-1", HTTPClient: counted})
	if err != nil {
		t.Fatal(err)
	}
	got, err := pool.New(db, p.Table(), pool.Options{}).Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Per shard 7 COUNT queries (one per status, each under 1 MB) and two name queries
	// (its claimable and its drained AvailableIndex shard), where a scan would read every
	// item.
	t.Logf("stats over 10 003 sandboxes took %d DynamoDB requests", counted.n.Load())
	if n := counted.n.Load(); n > int64((len(pool.Statuses)+2)*pool.Shards) {
		t.Fatalf("stats took %d requests", n)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("stats\n got %v\nwant %v", got, want)
	}
	if got.AvailableByPrefix["lab-dns"] == 0 || len(got.AvailableByPrefix) != 3 {
		t.Fatalf("prefix groups %v", got.AvailableByPrefix)
	}
	pooltest.Check(t, p)
}

type countingClient struct{ n atomic.Int64 }

func (c *countingClient) Do(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return http.DefaultClient.Do(r)
}

func TestNamePrefix(t *testing.T) {
	for name, want := range map[string]string{
		"lab-dns-0007": "lab-dns", "lab42": "lab", "sandbox_12": "sandbox", "2012224": "2012224", "lab": "lab", "lab-": "lab",
	} {
		if got := pool.NamePrefix(name); got != want {
			t.Errorf("NamePrefix(%q) = %q, want %q", name, got, want)
		}
	}
}
