package broker

import (
	"cmp"
	"context"
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
// An available sandbox the listing does not show gets a strike; StaleStrikes consecutive
// strikes make it stale. An empty listing, or one that no longer shows more than
// MaxShrinkFraction of the pool's available and stale sandboxes, is not trusted for that:
// the run marks nothing stale and raises AlarmSyncShrinkGuard (docs/upstream.md D5).
func (r *JobRunner) sync(ctx context.Context, run *jobRun) error {
	if run.outOfTime(r.cspTimeout) {
		return nil
	}
	listCtx, cancel := run.workContext(ctx)
	listing, err := r.csp.ListAccounts(listCtx)
	cancel()
	if err != nil {
		if run.outOfTime(0) {
			return nil
		}
		return fmt.Errorf("list CSP accounts: %w", err)
	}
	accounts := listing.Accounts
	run.count("listed", len(accounts))
	known, err := r.readPool(ctx)
	if err != nil {
		return err
	}

	listed := make(map[string]bool, len(accounts))
	for _, a := range accounts {
		if run.outOfTime(0) {
			return nil
		}
		acct := poolAccount(a)
		listed[acct.ID] = true
		if err := r.syncAccount(ctx, run, known, acct); err != nil {
			return err
		}
	}

	if guard := shrinkGuard(len(accounts), known, listed, r.cfg.MaxShrinkFraction); guard != "" {
		run.summary.Reason = guard
		run.alarm(AlarmSyncShrinkGuard)
		return nil
	}
	return r.strikeMissing(ctx, run, known, listed)
}

// syncAccount brings one listed account into the pool.
func (r *JobRunner) syncAccount(ctx context.Context, run *jobRun, known map[string]pool.Sandbox, a pool.Account) error {
	cur, ok := known[a.ID]
	var err error
	switch {
	case !ok:
		_, err = r.pool.Create(ctx, a, run.as("listed by the CSP"))
		run.countWrite("created", err)
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

// strikeMissing gives every available sandbox the listing did not show a strike, and makes
// it stale on the last one. Each write requires the version read, so a sandbox claimed
// meanwhile is left alone.
func (r *JobRunner) strikeMissing(ctx context.Context, run *jobRun, known map[string]pool.Sandbox, listed map[string]bool) error {
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
		if err != nil && !pool.LostRace(err) {
			return err
		}
	}
	return nil
}

// shrinkGuard says why the listing must not be used for stale marking, or "" when it can.
// The measure is the share of the pool's available and stale sandboxes (the ones sync
// manages) that the listing does not show.
func shrinkGuard(listedCount int, known map[string]pool.Sandbox, listed map[string]bool, maxShrink float64) string {
	if listedCount == 0 {
		return "the CSP listing is empty; no sandbox marked stale"
	}
	managed, shown := 0, 0
	for id, s := range known {
		if s.Status == pool.Available || s.Status == pool.Stale {
			managed++
			if listed[id] {
				shown++
			}
		}
	}
	if managed == 0 || float64(managed-shown) <= maxShrink*float64(managed) {
		return ""
	}
	return fmt.Sprintf("the CSP listing shows only %d of the pool's %d available and stale sandboxes "+
		"(a drop of %.0f%%, more than the %.0f%% allowed); no sandbox marked stale",
		shown, managed, 100*float64(managed-shown)/float64(managed), 100*maxShrink)
}

// readPool reads every sandbox of every status, page after page.
func (r *JobRunner) readPool(ctx context.Context) (map[string]pool.Sandbox, error) {
	known := map[string]pool.Sandbox{}
	for _, status := range pool.Statuses {
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
