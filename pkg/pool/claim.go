package pool

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
)

// Claim is what an allocation asks of one candidate sandbox.
type Claim struct {
	Student        string
	IdempotencyKey string
	TrackName      string
	Client         string
	AllocatedAt    int64
	ExpiresAt      int64
	// Slot is the holder's owner slot to take (docs/architecture.md §5).
	Slot int
	// Cap is the client's cap on live allocations, 0 for none; CapShard is the counter
	// shard to take, in [0, OpenShards(Cap)).
	Cap      int
	CapShard int
	// Stamps are the lab's terms the allocation is made under (Profile): each non-zero one
	// is written on the sandbox, so a later change of the profile never alters it.
	Stamps Stamps
}

// Stamps are what an allocation records of the terms it was made under. Zero values are
// not written: the allocation follows the configuration, as before profiles.
type Stamps struct {
	// Profile names the profile (ProfileName); ExtensionSeconds is one extension's step
	// and MaxExpiresAt the latest expires_at an extension may reach.
	Profile          string
	ExtensionSeconds int64
	MaxExpiresAt     int64
}

// Holder is who the claim allocates to.
func (c Claim) Holder() Holder { return Holder{Client: c.Client, Student: c.Student} }

// Claim allocates candidate to the claim's holder: available → allocated, conditioned on
// the version that was read (candidate as Candidates or Get returned it: its ID and Rev
// make the condition, its Name, ExternalID and SFDCAccountID go on the owner record),
// together with the owner record in the holder's slot c.Slot, conditioned on the slot
// being free, in one transaction of these two items. A client
// with a cap adds a third: one more live allocation on its counter shard c.CapShard,
// conditioned on the shard being split for c.Cap and below its limit (SplitCap). The
// history entry of the allocation rides on the sandbox item until the allocation ends
// (HistoryEntry).
//
// A *ConditionError with Item ItemOwner carries the owner record that holds the slot:
// the caller replays it (same idempotency key), ends it (lapsed) or tries the next slot.
// One with Item ItemCounter carries the shard as it was (Counter): full, or split for
// another cap, or none (the client's allocations are not counted yet). One with Item
// ItemSandbox means someone else got this candidate. It returns the owner record as it
// wrote it, which is what an allocate answers.
func (p *Pool) Claim(ctx context.Context, candidate Sandbox, c Claim, by Actor) (Owner, error) {
	t := p.newTx("claim", candidate.ID, expect{statuses: []Status{Available}, rev: candidate.Rev})
	var e expr
	e.set(":owner", c.Student)
	e.set(":key", c.IdempotencyKey)
	e.set(":allocated_at", c.AllocatedAt)
	e.set(":expires_at", c.ExpiresAt)
	e.set(":slot", c.Slot)
	e.set(":now", p.now().Unix())
	e.set(":one", 1)
	event, err := attributevalue.Marshal(p.entry(Available, Allocated, by))
	if err != nil {
		return Owner{}, err
	}
	e.set(":allocation", event)
	update := "SET " + e.setStatus(candidate.ID, Allocated, c.ExpiresAt) + ", #allocated_to_track = :owner, " +
		"#idempotency_key = :key, #allocated_at = :allocated_at, #expires_at = :expires_at, #owner_slot = :slot, " +
		"#allocation = :allocation, #updated_at = :now, #rev = #rev + :one"
	for attr, v := range map[string]any{
		"track_name": c.TrackName, "client": c.Client, "profile": c.Stamps.Profile,
		"extension_seconds": c.Stamps.ExtensionSeconds, "max_expires_at": c.Stamps.MaxExpiresAt,
	} {
		if v != "" && v != int64(0) {
			e.set(":"+attr, v)
			update += ", #" + attr + " = :" + attr
		}
	}
	if c.Cap > 0 {
		e.set(":cap_shard", c.CapShard)
		update += ", #cap_shard = :cap_shard"
	}
	t.updateSandbox(p.table, &e, update+" REMOVE #avail_shard, #avail_name, #missed_syncs")

	owner := Owner{
		Student: c.Student, IdempotencyKey: c.IdempotencyKey, Slot: c.Slot,
		SandboxID: candidate.ID, Name: candidate.Name, ExternalID: candidate.ExternalID,
		SFDCAccountID: candidate.SFDCAccountID, TrackName: c.TrackName, Client: c.Client,
		AllocatedAt: c.AllocatedAt, ExpiresAt: c.ExpiresAt,
	}
	if err := t.putOwner(p.table, owner); err != nil {
		return Owner{}, err
	}
	if c.Cap > 0 {
		t.addToCounter(p.table, c.Client, c.CapShard, 1, &capRoom{cap: c.Cap})
	}
	if err := p.run(ctx, t); err != nil {
		return Owner{}, err
	}
	return owner, nil
}
