package events

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/sandbox-broker/broker/pkg/pool"
)

// Map is the event of one stream record, ok false for a write that is no transition (an
// owner record, a history item, a refresh, a TTL's delete, …). Each transition of a
// sandbox is one write of its record, so one record, and one event: what the record's
// images say is all it needs (the pool stamps the transition's actor on the record,
// pool.Change). An error is a record it cannot read: Deliver dead-letters the record.
func Map(r Record) (e Event, ok bool, err error) {
	pk, sk := stringAttr(r.Keys[pool.AttrPK]), stringAttr(r.Keys[pool.AttrSK])
	id, drain := pool.RecordOf(pk, sk)
	switch {
	case drain && r.Name == Insert:
		return drainEvent(sk, r)
	case id != "":
		return sandboxEvent(id, r)
	case pool.IsPrefixSignal(pk, sk):
		return prefixEvent(r)
	case pool.IsReservation(pk, sk):
		return reservationEvent(r)
	}
	return Event{}, false, nil
}

// poolMetricsJob writes the prefix signals.
var poolMetricsJob = Actor{Kind: "job", Name: "pool-metrics"}

// prefixEvent is a prefix's signal gaining a reason to be low (PrefixLow: below its
// low-water mark, emptying within the lead time), or losing the last one (PrefixRecovered).
// The pool-metrics job writes each prefix's signal every run; the same reasons again, or
// one reason of several gone, is no event.
func prefixEvent(r Record) (Event, bool, error) {
	old, cur, err := images[pool.PrefixSignal](r)
	if err != nil {
		return Event{}, false, fmt.Errorf("events: prefix signal: %w", err)
	}
	if cur == nil {
		return Event{}, false, nil
	}
	var before []string
	if old != nil {
		before = old.Reasons
	}
	var t Type
	switch {
	case slices.ContainsFunc(cur.Reasons, func(r string) bool { return !slices.Contains(before, r) }):
		t = PrefixLow
	case len(before) > 0 && !cur.Low():
		t = PrefixRecovered
	default:
		return Event{}, false, nil
	}
	p := &Prefix{Prefix: cur.Prefix, Available: cur.Available, PerMinute: cur.PerMinute, LowWater: cur.LowWater,
		LeadMinutes: cur.LeadMinutes, Reasons: append([]string{}, cur.Reasons...)}
	if cur.Empties() {
		p.MinutesToEmpty = &cur.MinutesToEmpty
	}
	return Event{
		Version: Version, Type: t, Sequence: cur.At, Time: time.UnixMilli(cur.At).UTC(),
		ID:     fmt.Sprintf("prefix-%s-%d", cur.Prefix, cur.At),
		Prefix: p, Actor: poolMetricsJob,
	}, true, nil
}

// images decodes a stream record's old and new images of one item kind; nil for an image
// the record lacks (an insert's old, a remove's new).
func images[T any](r Record) (old, cur *T, err error) {
	for _, img := range []struct {
		item map[string]types.AttributeValue
		into **T
	}{{r.Old, &old}, {r.New, &cur}} {
		if len(img.item) == 0 {
			continue
		}
		v := new(T)
		if err := attributevalue.UnmarshalMap(img.item, v); err != nil {
			return nil, nil, err
		}
		*img.into = v
	}
	return old, cur, nil
}

// reservationsJob writes the reservations' coverage verdicts.
var reservationsJob = Actor{Kind: "job", Name: "reservations"}

// reservationEvent is a reservation's coverage turning short (ReservationUncoverable) or
// back from short to covered (ReservationCovered). The reservations job writes a verdict
// only when it changes, and its first "ok" is no event: a reservation is created covered
// (or forced, and then short at once). A shortfall that changes while short is no event.
func reservationEvent(r Record) (Event, bool, error) {
	old, cur, err := images[pool.Reservation](r)
	if err != nil {
		return Event{}, false, fmt.Errorf("events: reservation: %w", err)
	}
	if cur == nil {
		return Event{}, false, nil
	}
	before := ""
	if old != nil {
		before = old.Coverage
	}
	var t Type
	switch {
	case cur.Coverage == pool.CoverageShort && before != pool.CoverageShort:
		t = ReservationUncoverable
	case cur.Coverage == pool.CoverageOK && before == pool.CoverageShort:
		t = ReservationCovered
	default:
		return Event{}, false, nil
	}
	return Event{
		Version: Version, Type: t, Sequence: cur.Rev, Time: time.Unix(cur.UpdatedAt, 0).UTC(),
		ID:  fmt.Sprintf("reservation-%s-%d", cur.ID, cur.Rev),
		Lab: cur.Lab, Client: cur.Client, Actor: reservationsJob,
		Reservation: &Reservation{ID: cur.ID, Prefix: cur.Prefix, Seats: cur.Seats, StartsAt: time.Unix(cur.StartsAt, 0).UTC(),
			EndsAt: time.Unix(cur.EndsAt, 0).UTC(), SetAside: cur.SetAside, Shortfall: cur.Shortfall},
	}, true, nil
}

// The actors of the transitions only sync and stale-cleanup make, which stamp no change
// (pool.Change).
var (
	syncJob         = Actor{Kind: "job", Name: "sync"}
	staleCleanupJob = Actor{Kind: "job", Name: "stale-cleanup"}
)

func sandboxEvent(id string, r Record) (Event, bool, error) {
	old, err := image(r.Old)
	if err != nil {
		return Event{}, false, fmt.Errorf("events: sandbox %s: old image: %w", id, err)
	}
	cur, err := image(r.New)
	if err != nil {
		return Event{}, false, fmt.Errorf("events: sandbox %s: new image: %w", id, err)
	}
	switch {
	case r.Name == Insert && cur != nil && cur.Status == pool.Available:
		return newEvent(Added, *cur, nil, syncJob, ms(cur.UpdatedAt*1000, r)), true, nil
	case r.Name == Remove && old != nil && old.Status == pool.Stale:
		// The record is gone: its removal is the version after the last one.
		gone := *old
		gone.Rev++
		e := newEvent(Removed, gone, &pool.Sandbox{Status: pool.Stale}, staleCleanupJob, r.Created)
		e.Status.To = string(pool.Removed)
		return e, true, nil
	case r.Name != Modify || old == nil || cur == nil || cur.Rev == old.Rev:
		// A tombstone's TTL, a hand edit, or a write that makes no version (a migration:
		// pool.BackfillStatusKey, pool.AdoptUUID).
		return Event{}, false, nil
	}
	change, err := pool.ChangeOf(r.New)
	if err != nil {
		return Event{}, false, err
	}
	before, err := pool.ChangeOf(r.Old)
	if err != nil {
		return Event{}, false, err
	}
	if change != nil && before != nil && *change == *before {
		change = nil // left by an earlier write: this one stamped nothing
	}
	t, ok := typeOf(*old, *cur, change)
	if !ok {
		return Event{}, false, nil // a refresh, a missed listing
	}
	actor := changeActor(change)
	var at time.Time
	switch {
	case t == Allocated && cur.Allocation != nil:
		actor, at = historyActor(*cur.Allocation), time.UnixMilli(cur.Allocation.At).UTC()
	case change != nil:
		at = time.UnixMilli(change.At).UTC()
	case t == Stale || t == BackFromStale:
		actor = syncJob
		fallthrough
	default:
		at = ms(cur.UpdatedAt*1000, r)
	}
	e := newEvent(t, *cur, old, actor, at)
	detail(&e, *old, *cur)
	return e, true, nil
}

// typeOf names the transition from old to cur; change is the one the write stamped.
func typeOf(old, cur pool.Sandbox, change *pool.Change) (Type, bool) {
	op := ""
	if change != nil {
		op = change.Op
	}
	switch {
	case old.Status == pool.Available && cur.Status == pool.Allocated:
		return Allocated, true
	case old.Status == pool.Allocated && cur.Status == pool.PendingDeletion:
		switch {
		case change == nil:
			// Written before changes were stamped: an owner ends an allocation before it
			// expires, the expiry job after.
			if cur.DeletionRequestedAt < old.ExpiresAt {
				return Released, true
			}
			return Expired, true
		case change.ActorKind == "admin":
			return DeletionRequested, true
		case op == pool.OpRelease:
			return Released, true
		}
		return Expired, true
	case old.Status == pool.Allocated && cur.Status == pool.Allocated && op == pool.OpExtend:
		return Extended, true
	case old.Status == pool.PendingDeletion && cur.Status == pool.PendingDeletion && op == pool.OpRecordDeleteFailure:
		return DeletionAttemptFail, true
	case old.Status == pool.PendingDeletion && cur.Status == pool.PendingDeletion && op == pool.OpRecordNIOSXaaS:
		return PreDeleteStep, true
	case old.Status == pool.PendingDeletion && cur.Status == pool.DeletionFailed:
		return DeletionFailed, true
	case old.Status == pool.DeletionFailed && cur.Status == pool.PendingDeletion:
		return DeletionRetried, true
	case old.Status == pool.PendingDeletion && cur.Status == pool.Deleted:
		return Deleted, true
	case old.Status != pool.Retired && cur.Status == pool.Retired:
		return Retired, true
	case old.Status == pool.Available && cur.Status == pool.Stale:
		return Stale, true
	case old.Status == pool.Stale && cur.Status == pool.Available:
		return BackFromStale, true
	}
	return "", false
}

// detail adds what the type's consumers need beyond the common fields.
func detail(e *Event, old, cur pool.Sandbox) {
	switch e.Type {
	case Allocated:
		e.AllocatedAt, e.ExpiresAt = unix(cur.AllocatedAt), unix(cur.ExpiresAt)
	case Extended:
		e.ExpiresAt, e.PreviousExpiresAt = unix(cur.ExpiresAt), unix(old.ExpiresAt)
	case Released, Expired, DeletionRequested:
		e.AllocatedAt, e.ExpiresAt, e.DeletionRequestedAt = unix(cur.AllocatedAt), unix(cur.ExpiresAt), unix(cur.DeletionRequestedAt)
	case DeletionAttemptFail:
		e.Attempts, e.NextAttemptAt, e.ErrorClass = cur.Attempts, unix(cur.NextAttemptAt), ErrorClassOf(cur.LastError)
	case PreDeleteStep:
		e.PreDelete = &PreDelete{Outcome: cur.NIOSXaaSOutcome, Services: cur.NIOSXaaSServices}
		if cur.Attempts > old.Attempts {
			e.Attempts, e.NextAttemptAt, e.ErrorClass = cur.Attempts, unix(cur.NextAttemptAt), ErrorClassOf(cur.LastError)
		}
	case DeletionFailed:
		e.Attempts, e.ErrorClass = cur.Attempts, ErrorClassOf(cur.LastError)
	case Deleted:
		e.DeletionRequestedAt = unix(cur.DeletionRequestedAt)
	}
}

func newEvent(t Type, s pool.Sandbox, old *pool.Sandbox, by Actor, at time.Time) Event {
	e := Event{
		Version: Version, Type: t, Sequence: s.Rev, Time: at,
		ID: fmt.Sprintf("%s-%d-%d", s.ID, s.Rev, at.UnixMilli()),
		Sandbox: &Sandbox{ID: s.ID, Name: s.Name, Prefix: pool.NamePrefix(s.Name), ExternalID: s.ExternalID,
			SFDCAccountID: s.SFDCAccountID},
		Lab: s.TrackName, Client: s.Client, Student: s.Owner, Actor: by,
		Status: &Status{To: string(s.Status)},
	}
	if old != nil {
		e.Status.From = string(old.Status)
	}
	return e
}

func drainEvent(sk string, r Record) (Event, bool, error) {
	var d pool.DrainEntry
	if err := attributevalue.UnmarshalMap(r.New, &d); err != nil {
		return Event{}, false, fmt.Errorf("events: drain entry %s: %w", sk, err)
	}
	t := map[string]Type{pool.DrainStarted: DrainStarted, pool.DrainEnded: DrainEnded}[d.Action]
	if t == "" {
		return Event{}, false, nil // an entry from before drain entries named their action
	}
	at := time.UnixMilli(d.At).UTC()
	return Event{
		Version: Version, Type: t, Sequence: d.At, Time: at,
		ID:    "drain-" + strings.ReplaceAll(strings.TrimPrefix(sk, "HIST#"), "#", "-"),
		Drain: &Drain{Prefix: d.Prefix, Reason: d.DrainReason}, Actor: historyActor(d.HistoryEntry),
	}, true, nil
}

func changeActor(c *pool.Change) Actor {
	if c == nil {
		return Actor{Kind: "unknown"}
	}
	return actor(c.ActorKind, c.Actor, c.RequestID)
}

func historyActor(h pool.HistoryEntry) Actor { return actor(h.ActorKind, h.Actor, h.RequestID) }

// actor names a job or an admin client; a student's ID is the event's Student, and is
// not repeated as its actor's name.
func actor(kind, name, requestID string) Actor {
	if kind == "student" || kind == "" {
		name = ""
	}
	if kind == "" {
		kind = "unknown"
	}
	return Actor{Kind: kind, Name: name, RequestID: requestID}
}

func image(item map[string]types.AttributeValue) (*pool.Sandbox, error) {
	if item == nil {
		return nil, nil
	}
	var s pool.Sandbox
	if err := attributevalue.UnmarshalMap(item, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// ms is the time of a write that recorded only its second (msec, or the record's own
// time when the item has none).
func ms(msec int64, r Record) time.Time {
	if msec > 0 {
		return time.UnixMilli(msec).UTC()
	}
	return r.Created
}

func unix(sec int64) *time.Time {
	if sec == 0 {
		return nil
	}
	t := time.Unix(sec, 0).UTC()
	return &t
}

func stringAttr(v types.AttributeValue) string {
	if s, ok := v.(*types.AttributeValueMemberS); ok {
		return s.Value
	}
	return ""
}
