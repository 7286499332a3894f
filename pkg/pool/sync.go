package pool

import (
	"context"
	"fmt"
	"strings"
)

// Create adds a sandbox the CSP listed and the pool does not know, as available, with the
// UUID item of its account, in one transaction. It fails with a *ConditionError if the
// item exists, whatever its status (ItemSandbox, Current set: a tombstone among them), or
// if any record, live or tombstoned, already holds the account's uuid (ItemUUID, HeldBy
// set). So a listing read before a delete was booked can never re-create the account.
// A sandbox a drain covers is created drained (drainGate), and the transaction is
// conditioned on the drains it was decided from.
func (p *Pool) Create(ctx context.Context, a Account, by Actor) (Sandbox, error) {
	uuid := AccountUUID(a.ExternalID)
	if uuid == "" {
		return Sandbox{}, fmt.Errorf("pool: create %s: external ID %q names no account uuid", a.ID, a.ExternalID)
	}
	now := p.now().Unix()
	s := Sandbox{
		ID: a.ID, Name: a.Name, ExternalID: a.ExternalID, AccountUUID: uuid, SFDCAccountID: a.SFDCAccountID,
		CreatedAt: a.CreatedAt, Status: Available, StatusAt: now, Rev: 1, LastSynced: now, UpdatedAt: now,
	}
	err := p.gated(ctx, func(g drainGate) error {
		shard := g.availShard(s.ID, s.Name)
		item, err := recordItem(s, shard)
		if err != nil {
			return err
		}
		t := p.newTx("create", a.ID, expect{absent: true})
		t.putSandbox(p.table, item)
		t.claimUUID(p.table, uuid)
		t.underGate(p.table, g)
		p.logIndexed(t, s.ID, s.Name, shard)
		return p.commit(ctx, t, "", Available, by)
	})
	if err != nil {
		return Sandbox{}, err
	}
	return s, nil
}

// BackfillStatusKey is the migration of a live record written before StatusIndex was
// sharded: it writes the record's status_key (StatusKey), conditioned on the status and
// version read and on the record having none yet. Such a record is in no StatusIndex
// shard, so the pool read of sync misses it; sync finds it when the create of its listed
// account fails on it (docs/architecture.md §4). Like AdoptUUID it is not a transition and
// bumps no version, so it never makes a concurrent claim or refresh lose. A record a
// transition wrote meanwhile has its key from that write: the condition fails, a lost race.
func (p *Pool) BackfillStatusKey(ctx context.Context, cur Sandbox) error {
	if cur.Status.Tombstone() {
		return fmt.Errorf("pool: backfill status key %s: %s records are tombstones, left to their TTL", cur.ID, cur.Status)
	}
	t := p.newTx("backfill status key", cur.ID, expect{statuses: []Status{cur.Status}, rev: cur.Rev, withoutStatusKey: true})
	var e expr
	e.set(":status_key", StatusKey(cur.Status, cur.ID))
	t.updateSandbox(p.table, &e, "SET #status_key = :status_key")
	return p.run(ctx, t)
}

// Refresh writes the fields of an available sandbox that changed in the CSP and clears its
// missed-sync count. It requires the version that was read, so it can never undo a claim
// that landed in between (docs/upstream.md D1). Unchanged sandboxes are not written at all.
// A new name moves it into the AvailableIndex shard the drains give the name, under the
// drains it was decided from, as Create does.
func (p *Pool) Refresh(ctx context.Context, cur Sandbox, a Account) (Sandbox, error) {
	if !Changed(cur, a) && cur.MissedSyncs == 0 {
		return cur, nil
	}
	if err := sameAccount(cur, a); err != nil {
		return Sandbox{}, err
	}
	now := p.now().Unix()
	write := func(g *drainGate) error {
		t := p.newTx("refresh", cur.ID, expect{statuses: []Status{Available}, rev: cur.Rev})
		var e expr
		set := ""
		if g != nil {
			shard := g.availShard(cur.ID, a.Name)
			e.set(":shard", shard)
			set = "#avail_shard = :shard"
			t.underGate(p.table, *g)
			p.logIndexed(t, cur.ID, a.Name, shard)
		}
		t.updateSandbox(p.table, &e, accountUpdate(&e, a, now, set, "#missed_syncs"))
		return p.run(ctx, t)
	}
	var err error
	if a.Name == cur.Name {
		err = write(nil)
	} else {
		err = p.gated(ctx, func(g drainGate) error { return write(&g) })
	}
	if err != nil {
		return Sandbox{}, err
	}
	return withAccount(cur, a, now), nil
}

// RecordMiss counts one sync that did not list an available sandbox, on the version cur
// was read at, so a claim in between makes it lose instead of being counted against an
// allocated sandbox. Neither it nor Refresh changes the status, so neither writes a
// history entry.
func (p *Pool) RecordMiss(ctx context.Context, cur Sandbox) (Sandbox, error) {
	now := p.now().Unix()
	t := p.newTx("record miss", cur.ID, expect{statuses: []Status{Available}, rev: cur.Rev})
	var e expr
	e.set(":missed", cur.MissedSyncs+1)
	e.set(":now", now)
	e.set(":one", 1)
	t.updateSandbox(p.table, &e, "SET #missed_syncs = :missed, #updated_at = :now, #rev = #rev + :one")
	if err := p.run(ctx, t); err != nil {
		return Sandbox{}, err
	}
	next := cur
	next.MissedSyncs, next.UpdatedAt, next.Rev = cur.MissedSyncs+1, now, cur.Rev+1
	return next, nil
}

// MarkStale takes an available sandbox the CSP no longer lists out of allocation:
// available → stale, for the version that was read.
func (p *Pool) MarkStale(ctx context.Context, cur Sandbox, by Actor) (Sandbox, error) {
	now := p.now().Unix()
	reservation := cur.Reservation
	t := p.newTx("mark stale", cur.ID, expect{statuses: []Status{Available}, rev: cur.Rev, reservation: &reservation})
	var e expr
	e.set(":now", now)
	e.set(":one", 1)
	t.updateSandbox(p.table, &e, "SET "+e.setStatus(cur.ID, Stale, now)+", #stale_since = :now, #updated_at = :now, "+
		"#rev = #rev + :one REMOVE #avail_shard, #avail_name, #missed_syncs, #reservation")
	if reservation != "" {
		// A set-aside lost to the CSP is no longer the reservation's: the reservations job
		// sets another aside (docs/architecture.md §5, "Reservations").
		t.countSetAside(p.table, reservation, -1, &reservationAt{})
	}
	if err := p.commit(ctx, t, Available, Stale, by); err != nil {
		return Sandbox{}, err
	}
	next := cur
	next.Status, next.StatusAt, next.StaleSince, next.MissedSyncs, next.Reservation = Stale, now, now, 0, ""
	next.UpdatedAt, next.Rev = now, cur.Rev+1
	return next, nil
}

// Unstale brings a stale sandbox the CSP lists again back: stale → available, with the
// listed fields, into the AvailableIndex shard the drains give it, under the drains it was
// decided from, as Create does.
func (p *Pool) Unstale(ctx context.Context, cur Sandbox, a Account, by Actor) (Sandbox, error) {
	if err := sameAccount(cur, a); err != nil {
		return Sandbox{}, err
	}
	now := p.now().Unix()
	err := p.gated(ctx, func(g drainGate) error {
		shard := g.availShard(cur.ID, a.Name)
		t := p.newTx("unstale", cur.ID, expect{statuses: []Status{Stale}, rev: cur.Rev})
		var e expr
		e.set(":shard", shard)
		t.updateSandbox(p.table, &e, accountUpdate(&e, a, now,
			e.setStatus(cur.ID, Available, now)+", #avail_shard = :shard", "#stale_since, #missed_syncs"))
		t.underGate(p.table, g)
		p.logIndexed(t, cur.ID, a.Name, shard)
		return p.commit(ctx, t, Stale, Available, by)
	})
	if err != nil {
		return Sandbox{}, err
	}
	next := withAccount(cur, a, now)
	next.Status, next.StatusAt, next.StaleSince = Available, now, 0
	return next, nil
}

// ErrOtherAccount: a listing shows a sandbox ID with another account's uuid. The record
// keeps its account: a uuid never moves between records.
var ErrOtherAccount = fmt.Errorf("pool: the listing names another account under this sandbox ID: %w", ErrConflict)

func sameAccount(cur Sandbox, a Account) error {
	if AccountUUID(a.ExternalID) != uuidOf(cur) {
		return fmt.Errorf("pool: sandbox %s: %w", cur.ID, ErrOtherAccount)
	}
	return nil
}

// Changed reports whether the CSP listing differs from the stored sandbox.
func Changed(cur Sandbox, a Account) bool {
	return cur.Name != a.Name || cur.ExternalID != a.ExternalID || cur.SFDCAccountID != a.SFDCAccountID ||
		(a.CreatedAt != 0 && cur.CreatedAt != a.CreatedAt)
}

// accountUpdate renders the update expression that writes the listed account fields,
// last_synced and the version bump, plus the caller's extra SET and REMOVE clauses.
func accountUpdate(e *expr, a Account, now int64, set, remove string) string {
	e.set(":name", a.Name)
	e.set(":external_id", a.ExternalID)
	e.set(":now", now)
	e.set(":one", 1)
	sets := []string{"#name = :name", "#avail_name = :name", "#external_id = :external_id",
		"#last_synced = :now", "#updated_at = :now", "#rev = #rev + :one"}
	removes := []string{remove}
	if a.SFDCAccountID != "" {
		e.set(":sfdc", a.SFDCAccountID)
		sets = append(sets, "#sfdc_account_id = :sfdc")
	} else {
		removes = append(removes, "#sfdc_account_id")
	}
	if a.CreatedAt != 0 {
		e.set(":created_at", a.CreatedAt)
		sets = append(sets, "#created_at = :created_at")
	}
	if set != "" {
		sets = append(sets, set)
	}
	return "SET " + strings.Join(sets, ", ") + " REMOVE " + strings.Join(removes, ", ")
}

func withAccount(cur Sandbox, a Account, now int64) Sandbox {
	next := cur
	next.Name, next.ExternalID, next.SFDCAccountID, next.MissedSyncs = a.Name, a.ExternalID, a.SFDCAccountID, 0
	if a.CreatedAt != 0 {
		next.CreatedAt = a.CreatedAt
	}
	next.LastSynced, next.UpdatedAt, next.Rev = now, now, cur.Rev+1
	return next
}
