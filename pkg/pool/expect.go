package pool

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// expect is the state a transition requires of a sandbox item. It renders the condition
// expression and, when DynamoDB refuses the write, explains which part failed, so the two
// can never disagree.
type expect struct {
	absent   bool // the item must not exist yet
	statuses []Status
	rev      int64   // 0: any version
	owner    *Holder // nil: any owner
	dueBy    int64   // status_at must be <= dueBy; 0: not checked
	// notDueBy: status_at must be after notDueBy (an allocation that has not lapsed); 0:
	// not checked
	notDueBy int64
	attempts *int // nil: not checked
	// withoutUUID: the record must not have claimed its account uuid yet (AdoptUUID)
	withoutUUID bool
	// withoutStatusKey: the record must not carry status_key yet (BackfillStatusKey)
	withoutStatusKey bool
	// allocation: the at_ms of the allocation entry the record must carry, 0 for none;
	// nil: not checked
	allocation *int64
	// capShard: the counter shard the record must name (cap_shard), uncounted for none;
	// nil: not checked
	capShard *int
	// reservation: the reservation the sandbox must be set aside for, "" for none; nil:
	// not checked
	reservation *string
}

// uncounted is the capShard of a record that names no counter shard.
const uncounted = -1

func capShardOf(s *Sandbox) int {
	if s.CapShard == nil {
		return uncounted
	}
	return *s.CapShard
}

func (x expect) condition(e *expr) string {
	if x.absent {
		return e.use("attribute_not_exists(#PK)")
	}
	parts := []string{e.use("attribute_exists(#PK)")}
	if len(x.statuses) > 0 {
		ph := make([]string, len(x.statuses))
		for i, s := range x.statuses {
			ph[i] = fmt.Sprintf(":want_status%d", i)
			e.set(ph[i], s)
		}
		parts = append(parts, e.use("#status IN ("+strings.Join(ph, ", ")+")"))
	}
	if x.rev != 0 {
		e.set(":want_rev", x.rev)
		parts = append(parts, e.use("#rev = :want_rev"))
	}
	if x.owner != nil {
		e.set(":want_owner", x.owner.Student)
		parts = append(parts, e.use("#allocated_to_track = :want_owner"))
		if x.owner.Client == "" {
			parts = append(parts, e.use("attribute_not_exists(#client)"))
		} else {
			e.set(":want_client", x.owner.Client)
			parts = append(parts, e.use("#client = :want_client"))
		}
	}
	if x.dueBy != 0 {
		e.set(":want_due", x.dueBy)
		parts = append(parts, e.use("#status_at <= :want_due"))
	}
	if x.notDueBy != 0 {
		e.set(":want_not_due", x.notDueBy)
		parts = append(parts, e.use("#status_at > :want_not_due"))
	}
	if x.attempts != nil {
		e.set(":want_attempts", *x.attempts)
		parts = append(parts, e.use("#attempts = :want_attempts"))
	}
	if x.withoutUUID {
		parts = append(parts, e.use("attribute_not_exists(#account_uuid)"))
	}
	if x.withoutStatusKey {
		parts = append(parts, e.use("attribute_not_exists(#status_key)"))
	}
	if x.allocation != nil && *x.allocation == 0 {
		parts = append(parts, e.use("attribute_not_exists(#allocation)"))
	} else if x.allocation != nil {
		e.set(":want_allocation", *x.allocation)
		parts = append(parts, e.use("#allocation.#at_ms = :want_allocation"))
	}
	if x.capShard != nil && *x.capShard == uncounted {
		parts = append(parts, e.use("attribute_not_exists(#cap_shard)"))
	} else if x.capShard != nil {
		e.set(":want_cap_shard", *x.capShard)
		parts = append(parts, e.use("#cap_shard = :want_cap_shard"))
	}
	if x.reservation != nil && *x.reservation == "" {
		parts = append(parts, e.use("attribute_not_exists(#reservation)"))
	} else if x.reservation != nil {
		e.set(":want_reservation", *x.reservation)
		parts = append(parts, e.use("#reservation = :want_reservation"))
	}
	return strings.Join(parts, " AND ")
}

// explain names the first requirement cur does not meet. It never echoes the owner.
func (x expect) explain(cur *Sandbox) string {
	switch {
	case x.absent && cur != nil:
		return fmt.Sprintf("already exists (status %s)", cur.Status)
	case x.absent:
		return "condition failed"
	case cur == nil:
		return "sandbox not found"
	case len(x.statuses) > 0 && !slices.Contains(x.statuses, cur.Status):
		return fmt.Sprintf("status is %s, want %s", cur.Status, joinStatuses(x.statuses))
	case x.rev != 0 && cur.Rev != x.rev:
		return fmt.Sprintf("changed since it was read (rev %d, want %d)", cur.Rev, x.rev)
	case x.owner != nil && !x.owner.Holds(*cur):
		return "allocated to another student"
	case x.dueBy != 0 && cur.StatusAt > x.dueBy:
		return fmt.Sprintf("not due until %s", time.Unix(cur.StatusAt, 0).UTC().Format(time.RFC3339))
	case x.notDueBy != 0 && cur.StatusAt <= x.notDueBy:
		return fmt.Sprintf("lapsed: due since %s", time.Unix(cur.StatusAt, 0).UTC().Format(time.RFC3339))
	case x.attempts != nil && cur.Attempts != *x.attempts:
		return fmt.Sprintf("attempts is %d, want %d", cur.Attempts, *x.attempts)
	case x.withoutUUID && cur.AccountUUID != "":
		return "already holds its account uuid"
	case x.allocation != nil && allocationAt(cur) != *x.allocation:
		return "its allocation changed since it was read"
	case x.capShard != nil && capShardOf(cur) != *x.capShard:
		return "its counter shard changed since it was read"
	case x.reservation != nil && cur.Reservation != *x.reservation && *x.reservation == "":
		return fmt.Sprintf("set aside for reservation %s", cur.Reservation)
	case x.reservation != nil && cur.Reservation != *x.reservation:
		return fmt.Sprintf("not set aside for reservation %s", *x.reservation)
	case x.withoutStatusKey:
		// Sandbox does not hold status_key; with status and rev as read, it is what failed.
		return "already carries its status_key"
	}
	return "condition failed"
}

func joinStatuses(ss []Status) string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = string(s)
	}
	return strings.Join(out, " or ")
}

func allocationAt(s *Sandbox) int64 {
	if s.Allocation == nil {
		return 0
	}
	return s.Allocation.At
}

// freeSlot is what an owner record's slot must be for a claim to take it: empty. A
// refusal carries the record that holds it (ConditionError.Owner), which the caller
// replays, ends or steps over.
type freeSlot struct{}

func (freeSlot) condition(e *expr) string { return e.use("attribute_not_exists(#PK)") }

func (freeSlot) explain(cur *Owner) string {
	if cur == nil {
		return "slot taken"
	}
	return fmt.Sprintf("slot %d holds sandbox %s", cur.Slot, cur.SandboxID)
}

// capRoom is what a client counter shard must be for a claim to take one more live
// allocation in it: split for the claim's cap, and below its limit.
type capRoom struct{ cap int }

func (x capRoom) condition(e *expr) string {
	e.set(":cap", x.cap)
	return e.use("#cap = :cap AND #live < #limit")
}

func (x capRoom) explain(cur *CapCounter) string {
	switch {
	case cur == nil || cur.Cap == 0:
		return "the client's live allocations are not counted yet"
	case cur.Cap != x.cap:
		return fmt.Sprintf("the counters are split for a cap of %d, not %d", cur.Cap, x.cap)
	}
	return fmt.Sprintf("shard %d holds %d live allocations, its limit is %d", cur.Shard, cur.Live, cur.Limit)
}
