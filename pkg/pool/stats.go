package pool

import (
	"context"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// Stats are exact counts over the whole pool.
type Stats struct {
	ByStatus map[Status]int
	// Total counts the live sandboxes (LiveStatuses); tombstones are counted by status only.
	Total int
	// AvailableByPrefix counts the general pool's available sandboxes (claimable or
	// drained) by NamePrefix of their name: what any lab's students could draw. Those set
	// aside for a reservation are not in it (they are its lab's alone), so the available
	// count minus this map's sum is how many are set aside.
	AvailableByPrefix map[string]int
	// OldestPendingDeletionAt is the earliest deletion_requested_at of the pending
	// deletions (unix seconds); 0 when none is pending.
	OldestPendingDeletionAt int64
}

// Stats counts every status with a Select=COUNT query of each StatusIndex shard per status,
// page by page (about 1 600 sandboxes per 1 MB page), and groups the available sandboxes
// by name prefix from AvailableIndex reading only their names. Nothing else in the table is
// read: for a pool of 10 000 that is about 80 small requests (7 statuses and the names, claimable and drained, 8
// shards each), not a scan of sandboxes, history, owner and job items. The tombstone counts read the tombstones' index entries too (a
// COUNT still reads what it counts): about 1 600 per request.
func (p *Pool) Stats(ctx context.Context) (Stats, error) {
	st := Stats{ByStatus: map[Status]int{}, AvailableByPrefix: map[string]int{}}
	for _, status := range Statuses {
		var n int
		var err error
		if status == PendingDeletion {
			n, st.OldestPendingDeletionAt, err = p.pendingDeletions(ctx)
		} else {
			n, err = p.Count(ctx, status)
		}
		if err != nil {
			return Stats{}, err
		}
		st.ByStatus[status] = n
		if !status.Tombstone() {
			st.Total += n
		}
	}
	for shard := range 2 * Shards { // the claimable shards and the drained ones (DrainedShard)
		in, e := availableQuery(shard, "")
		in.ProjectionExpression = aws.String(e.use("#avail_name"))
		for item, err := range p.query(ctx, in, e) {
			if err != nil {
				return Stats{}, err
			}
			st.AvailableByPrefix[NamePrefix(stringAttr(item[AttrAvailName]))]++
		}
	}
	return st, nil
}

// pendingDeletions counts the pending deletions and finds the earliest deletion request
// among them. StatusIndex orders them by when they are due, not by when they were
// released (a failed delete moves its sandbox to its next attempt), so every entry is
// read, projected to its release time. That costs what the COUNT of the same entries
// costs (DynamoDB charges a query for the entries it reads, whatever it returns): the
// same pages and read units, with 20 more bytes per entry in the answer.
func (p *Pool) pendingDeletions(ctx context.Context) (n int, oldest int64, err error) {
	for shard := range Shards {
		in, e := statusQuery(PendingDeletion, shard, 0)
		in.ProjectionExpression = aws.String(e.use("#deletion_requested_at"))
		for item, err := range decode[Sandbox](p.query(ctx, in, e)) {
			if err != nil {
				return 0, 0, err
			}
			n++
			if at := item.DeletionRequestedAt; at > 0 && (oldest == 0 || at < oldest) {
				oldest = at
			}
		}
	}
	return n, oldest, nil
}

// NamePrefix is the lab part of a sandbox name: the name without its trailing number and
// separators ("lab-dns-0007" → "lab-dns", "lab42" → "lab"). A name that is all number
// is its own prefix.
func NamePrefix(name string) string {
	trimmed := strings.TrimRight(name, "0123456789")
	trimmed = strings.TrimRight(trimmed, "-_. ")
	if trimmed == "" {
		return name
	}
	return trimmed
}
