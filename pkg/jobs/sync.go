package jobs

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/sandbox-broker/broker/pkg/csp"
	"github.com/sandbox-broker/broker/pkg/pool"
)

// sync mirrors the CSP's active sandbox accounts into the pool. A listed account the pool
// does not know is created as available; an available one whose fields changed is
// refreshed (only the changed fields, on the version read); a stale one comes back. An
// allocated, pending_deletion or deletion_failed sandbox is never touched, and every write
// is conditioned on the state read, so a claim that lands meanwhile always wins (docs/upstream.md D1).
//
// Tombstones (deleted, retired) are not read: the create of a listed account is
// conditioned on neither its record nor its account uuid existing, so an account with a
// tombstone is never created again, however late the listing that shows it was read
// (docs/architecture.md §4; invariants 7 and 8 of docs/architecture.md §5). An account is
// known by its uuid: a listing that shows a known uuid under another sandbox ID makes no
// second record, and a record whose uuid another record holds can never become a
// tombstone; both are counted under uuid_conflicts, reported and raise
// AlarmSyncUUIDConflict.
//
// An available sandbox whose account the listing does not show gets a strike;
// StaleStrikes consecutive strikes make it stale. An empty listing, or one that no longer
// shows more than MaxShrinkFraction of the pool's available sandboxes, is not trusted for
// that: the run marks nothing stale and raises AlarmSyncShrinkGuard (docs/upstream.md D5).
//
// A listing that fails writes nothing and fails the run (listingFailed); one the run's
// deadline cuts short makes it partial. Malformed entries (csp.ListAccounts) never fail
// it: they are counted under malformed, and their reasons are the summary's errors. Nor
// does a record DynamoDB refuses to write (runState.refused): that is the record's.
func (r *Runner) sync(ctx context.Context, run *runState) error {
	if run.outOfTime(r.cspTimeout) {
		return nil
	}
	listCtx, cancel := run.workContext(ctx)
	listing, err := r.csp.ListAccounts(listCtx)
	cancel()
	if err != nil {
		if run.outOfTime(0) {
			// The deadline cut the listing short: partial, and a partial listing marks
			// nothing stale.
			return nil
		}
		return listingFailed(run, err)
	}
	accounts := listing.Accounts
	run.count("listed", len(accounts))
	if listing.Malformed > 0 {
		run.count("malformed", listing.Malformed)
	}
	for _, reason := range listing.MalformedSamples {
		run.addError(fmt.Errorf("CSP listing entry skipped: %s", reason))
	}
	if r.afterListing != nil {
		r.afterListing()
	}
	known, err := r.readPool(ctx)
	if err != nil {
		return err
	}
	if done, err := r.adoptUUIDs(ctx, run, known); !done || err != nil {
		return err
	}
	recordOf := make(map[string]string, len(known)) // account uuid → sandbox ID
	for id, s := range known {
		recordOf[pool.AccountUUID(s.ExternalID)] = id
	}

	listedUUIDs := make(map[string]bool, len(accounts))
	for _, a := range accounts {
		if run.outOfTime(0) {
			return nil
		}
		acct := poolAccount(a)
		listedUUIDs[a.UUID] = true
		if id, ok := recordOf[a.UUID]; ok && id != acct.ID {
			r.uuidConflict(ctx, run, listedElsewhere(acct.ID, id))
			continue
		}
		if err := r.syncAccount(ctx, run, known, acct); err != nil && !run.refused(acct.ID, err) {
			return err
		}
	}

	// A record is shown when its account is, under whatever sandbox ID.
	listed := make(map[string]bool, len(known))
	for id, s := range known {
		listed[id] = listedUUIDs[pool.AccountUUID(s.ExternalID)]
	}
	if guard := shrinkGuard(len(accounts), known, listed, r.cfg.MaxShrinkFraction); guard != "" {
		run.summary.Reason = guard
		run.alarm(AlarmSyncShrinkGuard)
		return nil
	}
	return r.strikeMissing(ctx, run, known, listed)
}

// listingFailed fails a sync whose CSP listing could not be read, and raises the alarm
// when no retry will fix it: a listing that cannot be completed (a repeating page, more
// than CSP_LIST_MAX_ACCOUNTS entries), a wrong endpoint or a rejected token. Nothing has
// been written, so nothing is marked stale.
func listingFailed(run *runState, err error) error {
	switch {
	case errors.Is(err, csp.ErrPageRepeated), errors.Is(err, csp.ErrTooManyAccounts):
		run.alarm(AlarmSyncListingRefused)
		return fmt.Errorf("the CSP listing cannot be read completely, so nothing was synced or marked stale: %w", err)
	case errors.Is(err, csp.ErrWrongEndpoint):
		run.alarm(AlarmCSPWrongEndpoint)
		return fmt.Errorf("the CSP listing was not answered by the CSP API (check CSP_BASE_URL): %w", err)
	case errors.Is(err, csp.ErrTokenRejected):
		run.alarm(AlarmCSPTokenRejected)
		return fmt.Errorf("the CSP rejected the API token: %w", err)
	}
	return fmt.Errorf("list CSP accounts: %w", err)
}

// adoptUUIDs gives every record created before UUID items existed its UUID item
// (pool.AdoptUUID), once: a migrated record has account_uuid and is skipped from then on.
// A uuid another record already holds is a duplicate from before, reported as a conflict
// on every run until an operator removes it: it can never become a tombstone.
// The first sync after the upgrade writes one transaction per record; done is false when
// the deadline came first, and the next run goes on.
func (r *Runner) adoptUUIDs(ctx context.Context, run *runState, known map[string]pool.Sandbox) (done bool, err error) {
	for id, s := range known {
		if s.AccountUUID != "" {
			continue
		}
		if run.outOfTime(0) {
			return false, nil
		}
		adopted, err := r.pool.AdoptUUID(ctx, s)
		var ce *pool.ConditionError
		switch {
		case err == nil:
			known[id] = adopted
			run.count("uuid_adopted", 1)
		case errors.As(err, &ce) && ce.Item == pool.ItemUUID:
			delete(known, id)
			r.uuidConflict(ctx, run, fmt.Errorf("sandbox %s is a second record of the account sandbox %s holds: "+
				"it can never become a tombstone", id, ce.HeldBy))
		case pool.LostRace(err):
			run.count("conflicts", 1)
		case run.refused(id, err):
			// Reported; the next record goes on.
		default:
			return false, err
		}
	}
	return true, nil
}

// uuidConflict counts, logs and reports an account uuid that two sandbox IDs claim, and
// raises AlarmSyncUUIDConflict: a record that can never become a tombstone, or an account
// the CSP lists under another ID than the pool's, needs an operator (docs/operations.md).
// The reason names sandbox IDs only, never owner data.
func (r *Runner) uuidConflict(ctx context.Context, run *runState, reason error) {
	run.count("uuid_conflicts", 1)
	run.addError(reason)
	run.alarm(AlarmSyncUUIDConflict)
	r.log.WarnContext(ctx, "account uuid claimed by two sandbox IDs", "job", run.summary.Job, "run_id", run.summary.RunID,
		"reason", reason.Error())
}

// listedElsewhere is the uuid conflict of an account the listing shows under listedID
// while recordID holds it: the record keeps it, and no second record is made.
func listedElsewhere(listedID, recordID string) error {
	return fmt.Errorf("the CSP lists the account of sandbox %s under sandbox ID %s; no second record made", recordID, listedID)
}

// syncAccount brings one listed account into the pool.
func (r *Runner) syncAccount(ctx context.Context, run *runState, known map[string]pool.Sandbox, a pool.Account) error {
	cur, ok := known[a.ID]
	var err error
	switch {
	case !ok:
		return r.create(ctx, run, a)
	case pool.AccountUUID(cur.ExternalID) != pool.AccountUUID(a.ExternalID):
		// The sandbox ID now names another account: the record keeps its own.
		r.uuidConflict(ctx, run, fmt.Errorf("the CSP lists another account under sandbox ID %s; the record keeps its own", a.ID))
	case cur.Status == pool.Available && !pool.Changed(cur, a) && cur.MissedSyncs == 0:
		run.count("unchanged", 1)
	case cur.Status == pool.Available:
		_, err = r.pool.Refresh(ctx, cur, a)
		run.countWrite("refreshed", err)
	case cur.Status == pool.Stale:
		_, err = r.pool.Unstale(ctx, cur, a, run.as("listed by the CSP again"))
		run.countWrite("unstaled", err)
	default:
		// Allocated, pending_deletion or deletion_failed: the student's or cleanup's.
		run.count("in_use", 1)
	}
	if err != nil && !pool.LostRace(err) {
		return err
	}
	return nil
}

// create adds a listed account the pool read no live record of. The create fails on a
// tombstone of the account (counted under tombstoned: the listing still shows a deleted
// or retired account, or a delete was booked after the listing was read), on a uuid
// another record holds (a uuid conflict), and on a live record the read did not show: one
// written before StatusIndex was sharded, in no shard of it, which gets its status_key
// (pool.BackfillStatusKey) and is synced by the next run.
func (r *Runner) create(ctx context.Context, run *runState, a pool.Account) error {
	_, err := r.pool.Create(ctx, a, run.as("listed by the CSP"))
	var ce *pool.ConditionError
	switch {
	case err == nil:
		run.count("created", 1)
	case errors.As(err, &ce) && ce.Item == pool.ItemSandbox && ce.Current != nil && ce.Current.Status.Tombstone():
		run.count("tombstoned", 1)
	case errors.As(err, &ce) && ce.Item == pool.ItemSandbox && ce.Current != nil:
		err = r.pool.BackfillStatusKey(ctx, *ce.Current)
		run.countWrite("status_key_backfilled", err)
		return unlessLostRace(err)
	case errors.As(err, &ce) && ce.Item == pool.ItemUUID:
		r.uuidConflict(ctx, run, listedElsewhere(a.ID, ce.HeldBy))
	case pool.LostRace(err):
		run.count("conflicts", 1)
	default:
		return err
	}
	return nil
}

// strikeMissing gives every available sandbox the listing did not show a strike, and makes
// it stale on the last one. Each write requires the version read, so a sandbox claimed
// meanwhile is left alone.
func (r *Runner) strikeMissing(ctx context.Context, run *runState, known map[string]pool.Sandbox, listed map[string]bool) error {
	var missing []pool.Sandbox
	for id, s := range known {
		if s.Status == pool.Available && !listed[id] {
			missing = append(missing, s)
		}
	}
	slices.SortFunc(missing, func(a, b pool.Sandbox) int { return cmp.Compare(a.ID, b.ID) })
	for _, s := range missing {
		if run.outOfTime(0) {
			return nil
		}
		var err error
		if s.MissedSyncs+1 >= r.cfg.StaleStrikes {
			_, err = r.pool.MarkStale(ctx, s, run.as(fmt.Sprintf("missing from %d consecutive CSP listings", s.MissedSyncs+1)))
			run.countWrite("marked_stale", err)
		} else {
			_, err = r.pool.RecordMiss(ctx, s)
			run.countWrite("missed", err)
		}
		if err != nil && !pool.LostRace(err) && !run.refused(s.ID, err) {
			return err
		}
	}
	return nil
}

// shrinkGuard says why the listing must not be used for stale marking, or "" when it can.
// The measure is the share of the pool's available sandboxes (the ones stale marking
// acts on) that the listing does not show. Stale ones do not count: they are missing
// already, and counting them as dropped would let one more missing account trip the guard
// until stale-cleanup removed them.
func shrinkGuard(listedCount int, known map[string]pool.Sandbox, listed map[string]bool, maxShrink float64) string {
	if listedCount == 0 {
		return "the CSP listing is empty; no sandbox marked stale"
	}
	managed, shown := 0, 0
	for id, s := range known {
		if s.Status == pool.Available {
			managed++
			if listed[id] {
				shown++
			}
		}
	}
	if managed == 0 || float64(managed-shown) <= maxShrink*float64(managed) {
		return ""
	}
	return fmt.Sprintf("the CSP listing shows only %d of the pool's %d available sandboxes "+
		"(a drop of %.0f%%, more than the %.0f%% allowed); no sandbox marked stale",
		shown, managed, 100*float64(managed-shown)/float64(managed), 100*maxShrink)
}

// readPool reads every live sandbox, page after page; tombstones are not read (see sync).
func (r *Runner) readPool(ctx context.Context) (map[string]pool.Sandbox, error) {
	known := map[string]pool.Sandbox{}
	for _, status := range pool.LiveStatuses {
		for s, err := range r.pool.ByStatus(ctx, status, 0) {
			if err != nil {
				return nil, fmt.Errorf("read %s sandboxes: %w", status, err)
			}
			known[s.ID] = s
		}
	}
	return known, nil
}

func poolAccount(a csp.Account) pool.Account {
	p := pool.Account{ID: a.SandboxID, Name: a.Name, ExternalID: a.ExternalID, SFDCAccountID: a.SFDCAccountID}
	if !a.CreatedAt.IsZero() {
		p.CreatedAt = a.CreatedAt.Unix()
	}
	return p
}
