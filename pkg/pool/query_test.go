package pool_test

import (
	"cmp"
	"fmt"
	"slices"
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

func TestOwnerRecordsListEverySlotOfAHolder(t *testing.T) {
	p := pooltest.NewWith(t, pool.Options{PageSize: 2})
	ss := seed(t, p, account(1), account(2), account(3), account(4), account(5), account(6), account(7), account(8), account(9), account(10), account(11), account(12))
	// Slots 0-10 of alice at one client (10 after 9: slot order is numeric), and the
	// same student ID at another client.
	for i, s := range ss {
		c := claimFor("alice", time.Now())
		c.Client, c.IdempotencyKey, c.Slot = "instruqt", fmt.Sprint("lab-", i), 10-i
		if i == 11 {
			c.Client, c.IdempotencyKey, c.Slot = "other", "alice", 0
		}
		if _, err := p.Claim(ctx, s, c, student); err != nil {
			t.Fatal(err)
		}
	}
	owners, err := p.OwnerRecords(ctx, pool.Holder{Client: "instruqt", Student: "alice"})
	if err != nil || len(owners) != 11 {
		t.Fatalf("alice's owner records: %d %v", len(owners), err)
	}
	for i, o := range owners {
		if o.Student != "alice" || o.Client != "instruqt" || o.Slot != i || o.IdempotencyKey != fmt.Sprint("lab-", 10-i) {
			t.Fatalf("owner record %d: %+v", i, o)
		}
	}
	o, found, err := p.OwnerRecord(ctx, pool.Holder{Client: "instruqt", Student: "alice"}, "lab-3")
	if err != nil || !found || o.Slot != 7 || o.SandboxID != ss[3].ID {
		t.Fatalf("alice's lab-3: %+v %v %v", o, found, err)
	}
	if _, found, err := p.OwnerRecord(ctx, pool.Holder{Client: "instruqt", Student: "alice"}, "alice"); err != nil || found {
		t.Fatalf("the other client's key is found at this one: %v %v", found, err)
	}
	pooltest.Check(t, p)
}

// pendingAcrossShards stores n pending deletions whose status_at interleaves the shards
// (i*17 mod n: neighbours in status_at order are far apart in ID order), each with its
// UUID item, as the transitions store them.
func pendingAcrossShards(t *testing.T, p *pool.Pool, n int, base int64) []pool.Sandbox {
	t.Helper()
	out := make([]pool.Sandbox, n)
	shards := map[string]bool{}
	for i := range out {
		at := base + int64(i*17%n)
		s := pool.Sandbox{
			ID: fmt.Sprint(6_000_000 + i), Name: fmt.Sprintf("lab-%04d", i),
			ExternalID: fmt.Sprintf("identity/accounts/00000000-0000-4000-8000-%012d", i),
			Status:     pool.PendingDeletion, StatusAt: at, DeletionRequestedAt: at, UpdatedAt: at, Rev: 2,
		}
		s.AccountUUID = pool.AccountUUID(s.ExternalID)
		putRaw(t, p, pool.StoredItems(s)...)
		shards[pool.StatusKey(s.Status, s.ID)] = true
		out[i] = s
	}
	if len(shards) != pool.Shards {
		t.Fatalf("the sandboxes fill %d of %d StatusIndex shards", len(shards), pool.Shards)
	}
	return out
}

// ByStatus reads every StatusIndex shard and yields their sandboxes merged in status_at
// order, across pages of 2; dueBy cuts every shard at once; Count sums the shards.
func TestByStatusMergesEveryShardInStatusAtOrder(t *testing.T) {
	p := pooltest.NewWith(t, pool.Options{PageSize: 2})
	const n = 40
	base := time.Now().Add(-time.Hour).Unix()
	all := pendingAcrossShards(t, p, n, base)
	want := slices.Clone(all)
	slices.SortFunc(want, func(a, b pool.Sandbox) int { return cmp.Compare(a.StatusAt, b.StatusAt) })
	ids := func(ss []pool.Sandbox) []string {
		out := make([]string, len(ss))
		for i, s := range ss {
			out[i] = s.ID
		}
		return out
	}
	read := func(dueBy int64, stopAfter int) []pool.Sandbox {
		var got []pool.Sandbox
		for s, err := range p.ByStatus(ctx, pool.PendingDeletion, dueBy) {
			if err != nil {
				t.Fatal(err)
			}
			if got = append(got, s); len(got) == stopAfter {
				break
			}
		}
		return got
	}
	if got := read(0, 0); !slices.Equal(ids(got), ids(want)) {
		t.Fatalf("ByStatus order\n got %v\nwant %v", ids(got), ids(want))
	}
	if got := read(base+19, 0); !slices.Equal(ids(got), ids(want[:20])) {
		t.Fatalf("ByStatus due by the 20th\n got %v\nwant %v", ids(got), ids(want[:20]))
	}
	// A consumer that stops early (cleanup pulls only as many as it can delete) gets the
	// earliest ones.
	if got := read(0, 3); !slices.Equal(ids(got), ids(want[:3])) {
		t.Fatalf("the first 3: %v, want %v", ids(got), ids(want[:3]))
	}
	for status, wantN := range map[pool.Status]int{pool.PendingDeletion: n, pool.Available: 0} {
		if got, err := p.Count(ctx, status); err != nil || got != wantN {
			t.Fatalf("Count(%s) = %d, %v; want %d", status, got, err, wantN)
		}
	}
	pooltest.Check(t, p)
}
