package pool_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sandbox-broker/broker/pkg/pool"
	"github.com/sandbox-broker/broker/pkg/pool/pooltest"
)

// Pages of 7 items force every listing through many LastEvaluatedKey round trips.
func TestQueriesPageToTheEnd(t *testing.T) {
	p := pooltest.NewWith(t, pool.Options{PageSize: 7})
	var accounts []pool.Account
	for i := range 60 {
		a := account(i)
		if i%3 == 0 {
			a.Name = fmt.Sprintf("dns-%04d", i)
		}
		accounts = append(accounts, a)
	}
	ss := seed(t, p, accounts...)
	base := time.Unix(1_800_000_000, 0)
	for i, s := range ss[:25] {
		c := claimFor(fmt.Sprint("student-", i), base.Add(time.Duration(i)*time.Minute))
		if _, err := p.Claim(ctx, s, c, student); err != nil {
			t.Fatal(err)
		}
	}

	for status, want := range map[pool.Status]int{pool.Available: 35, pool.Allocated: 25, pool.Stale: 0} {
		n, err := p.Count(ctx, status)
		if err != nil || n != want {
			t.Fatalf("Count(%s) = %d, %v; want %d", status, n, err, want)
		}
	}
	wantDNS := 0
	for _, a := range accounts[25:] {
		if strings.HasPrefix(a.Name, "dns-") {
			wantDNS++
		}
	}
	for prefix, want := range map[string]int{"": 35, "dns-": wantDNS, "nope": 0} {
		if n, err := p.CountAvailable(ctx, prefix); err != nil || n != want {
			t.Fatalf("CountAvailable(%q) = %d, %v; want %d", prefix, n, err, want)
		}
	}

	// Allocated sandboxes come in expiry order, and dueBy cuts at status_at.
	var expires []int64
	for s, err := range p.ByStatus(ctx, pool.Allocated, 0) {
		if err != nil {
			t.Fatal(err)
		}
		expires = append(expires, s.ExpiresAt)
	}
	if len(expires) != 25 {
		t.Fatalf("ByStatus(allocated) yielded %d, want 25", len(expires))
	}
	for i := 1; i < len(expires); i++ {
		if expires[i] < expires[i-1] {
			t.Fatalf("ByStatus not in status_at order: %v", expires)
		}
	}
	due := 0
	for _, err := range p.ByStatus(ctx, pool.Allocated, expires[9]) {
		if err != nil {
			t.Fatal(err)
		}
		due++
	}
	if due != 10 {
		t.Fatalf("ByStatus(allocated, dueBy 10th expiry) yielded %d, want 10", due)
	}

	// Every candidate page honours the prefix in its key condition, and carries what a
	// claim needs (pool.ClaimAttributes) and nothing else.
	seen := 0
	for shard := range pool.Shards {
		page, err := p.Candidates(ctx, shard, "dns-", 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range page {
			if !strings.HasPrefix(c.Name, "dns-") || c.ID == "" || c.Rev == 0 || c.ExternalID == "" ||
				c.Status != "" || c.LastSynced != 0 || c.AccountUUID != "" {
				t.Fatalf("candidate %+v does not match", c)
			}
		}
		seen += len(page)
	}
	if seen != wantDNS {
		t.Fatalf("candidates over all shards: %d, want %d", seen, wantDNS)
	}
}

func TestOwnerRecordsListEveryKeyOfAStudent(t *testing.T) {
	p := pooltest.NewWith(t, pool.Options{PageSize: 2})
	ss := seed(t, p, account(1), account(2), account(3), account(4), account(5))
	for i, s := range ss {
		c := claimFor("alice", time.Now())
		c.IdempotencyKey = fmt.Sprint("lab-", i)
		if i == 4 {
			c.Student, c.IdempotencyKey = "bob", "bob"
		}
		if _, err := p.Claim(ctx, s, c, student); err != nil {
			t.Fatal(err)
		}
	}
	owners, err := p.OwnerRecords(ctx, "alice")
	if err != nil || len(owners) != 4 {
		t.Fatalf("alice's owner records: %d %v", len(owners), err)
	}
	for _, o := range owners {
		if o.Student != "alice" {
			t.Fatalf("foreign owner record %+v", o)
		}
	}
}
