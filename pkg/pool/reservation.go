package pool

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/sandbox-broker/broker/internal/printable"
)

// Reservation sets seats of a name prefix aside for one lab (and optionally one client)
// over a window (docs/architecture.md §5, "Reservations"). From LeadSeconds before
// StartsAt the reservations job sets available sandboxes aside (SetAside): it moves each
// into one of the reservation's own AvailableIndex partitions (Partitions), where only the
// reservation's lab looks, and marks it with the reservation's ID. A claim of a set-aside
// sandbox is an ordinary claim (its condition on the version read is what keeps it from
// any other lab); the sandbox keeps the mark, so the reservation's seats used are counted
// from the records. At EndsAt, or once cancelled, the job returns what is left
// (ReturnSetAside) and marks the reservation ended.
type Reservation struct {
	ID     string `dynamodbav:"reservation_id"`
	Lab    string `dynamodbav:"lab"`
	Client string `dynamodbav:"client,omitempty"`
	Prefix string `dynamodbav:"prefix"`
	Seats  int    `dynamodbav:"seats"`
	// StartsAt and EndsAt bound the window (unix seconds); seats are set aside from
	// StartsAt − LeadSeconds.
	StartsAt    int64 `dynamodbav:"starts_at"`
	EndsAt      int64 `dynamodbav:"ends_at"`
	LeadSeconds int64 `dynamodbav:"lead_seconds"`
	// Overflow: once the set-aside is used up, the lab's students draw from the general
	// pool; without it they get 409.
	Overflow bool             `dynamodbav:"overflow"`
	State    ReservationState `dynamodbav:"state"`
	// SetAside counts the sandboxes set aside for the reservation and not returned or lost
	// since: the ones still set aside plus the ones its students claimed. It is at most
	// Seats (the set-aside's condition), so the set-aside never outgrows the reservation.
	SetAside int `dynamodbav:"set_aside"`
	// Shard is the first of the reservation's own AvailableIndex partitions, above the
	// general shards (Partitions).
	Shard int `dynamodbav:"shard"`
	// Spread is how many partitions from Shard the set-aside spreads over (Partitions):
	// spreadFor its seats, fixed at creation like the seats. 0 on a reservation from
	// before it: all Shards.
	Spread int `dynamodbav:"spread,omitempty"`
	// Coverage is the reservations job's last verdict on the reservation (CoverageOK,
	// CoverageShort), with the shortfall in seats: a change of it is an item change, so
	// the table's stream carries it as an event.
	Coverage  string `dynamodbav:"coverage,omitempty"`
	Shortfall int    `dynamodbav:"shortfall,omitempty"`
	Rev       int64  `dynamodbav:"rev"`
	CreatedAt int64  `dynamodbav:"created_at"`
	UpdatedAt int64  `dynamodbav:"updated_at"`
	UpdatedBy string `dynamodbav:"updated_by,omitempty"`
	TTL       int64  `dynamodbav:"ttl,omitempty"`
}

// ReservationState is where a reservation is in its life.
type ReservationState string

const (
	// ReservationScheduled: in force (before, in or just after its window until the job
	// ended it).
	ReservationScheduled ReservationState = "scheduled"
	// ReservationCancelled: an operator cancelled it; the job returns its set-aside.
	ReservationCancelled ReservationState = "cancelled"
	// ReservationEnded: nothing is set aside for it any more; kept reservationKeep for
	// the calendar, then dropped by TTL.
	ReservationEnded ReservationState = "ended"
)

// Coverage verdicts of the reservations job.
const (
	CoverageOK    = "ok"
	CoverageShort = "short"
)

const (
	prefixReservationEntry = "RESERVATION#"
	// reservationKeep is how long an ended reservation stays visible.
	reservationKeep = 30 * 24 * time.Hour
	// firstReservationShard is above every general shard; a reservation's Shard is drawn
	// at random among the multiples of Shards in [firstReservationShard, 2^52), so two
	// reservations' partitions never overlap but by sharing a Shard, which never happens
	// in practice (and CheckInvariants would report it).
	firstReservationShard = 1 << 32
)

// Bounds of a reservation.
const (
	MaxReservationSeats  = 10_000
	MaxReservationWindow = 14 * 24 * time.Hour
	MaxReservationLead   = 7 * 24 * time.Hour
)

// Partitions are the reservation's AvailableIndex partitions: Spread of them from Shard.
// A sandbox set aside sits in the one of its shard (shardOf) modulo Spread, so a large
// workshop's students arriving at once spread their reads and claims over them as the
// general pool's do, instead of all reading the first page of one partition; a small
// one's sit in one partition, which a student past its seats reads once, empty, before
// it overflows or gets its 409 (docs/benchmark.md).
func (r Reservation) Partitions() []int { return partitionsFrom(r.Shard)[:r.spread()] }

// partitionOf is the partition of r a sandbox set aside for it sits in.
func (r Reservation) partitionOf(id string) int { return r.Shard + shardOf(id)%r.spread() }

func (r Reservation) spread() int {
	if r.Spread == 0 {
		return Shards
	}
	return r.Spread
}

// seatsPerPartition is the most seats spreadFor puts in one partition: half a candidate
// page, so one page holds every candidate a partition has.
const seatsPerPartition = 50

// spreadFor is the partitions a set-aside of seats spreads over: one per seatsPerPartition
// seats, from 1 to Shards.
func spreadFor(seats int) int {
	return min(max((seats+seatsPerPartition-1)/seatsPerPartition, 1), Shards)
}

// Validate names the first value out of bounds.
func (r Reservation) Validate() error {
	switch {
	case r.Lab == "" || !printable.Text(r.Lab, MaxProfileKey):
		return fmt.Errorf("lab is required: at most %d printable characters", MaxProfileKey)
	case !printable.Text(r.Client, MaxProfileKey):
		return fmt.Errorf("client must be at most %d printable characters", MaxProfileKey)
	case !printable.Text(r.Prefix, MaxProfileKey):
		return fmt.Errorf("prefix must be at most %d printable characters", MaxProfileKey)
	case r.Seats < 1 || r.Seats > MaxReservationSeats:
		return fmt.Errorf("seats must be from 1 to %d", MaxReservationSeats)
	case r.StartsAt <= 0 || r.EndsAt <= r.StartsAt:
		return errors.New("the window needs a start before its end")
	case r.EndsAt-r.StartsAt > int64(MaxReservationWindow/time.Second):
		return fmt.Errorf("the window may last at most %s", MaxReservationWindow)
	case r.LeadSeconds < 0 || r.LeadSeconds > int64(MaxReservationLead/time.Second):
		return fmt.Errorf("the lead time must be from 0 to %s", MaxReservationLead)
	}
	return nil
}

// SetAsideFrom is when the job starts setting seats aside.
func (r Reservation) SetAsideFrom() int64 { return r.StartsAt - r.LeadSeconds }

// Holding reports whether the reservation may hold set-aside sandboxes at now: scheduled,
// from its lead time to its end.
func (r Reservation) Holding(now int64) bool {
	return r.State == ReservationScheduled && now >= r.SetAsideFrom() && now < r.EndsAt
}

func reservationSK(id string) string { return prefixReservationEntry + id }

// IsReservation says whether a key is a reservation's item (the events read the table's
// stream by key).
func IsReservation(pk, sk string) bool {
	return pk == labsPK && strings.HasPrefix(sk, prefixReservationEntry)
}

// ErrNoReservation: no reservation has that ID (or it ended and was dropped).
var ErrNoReservation = errors.New("pool: no such reservation")

// CreateReservation writes a new scheduled reservation with its own shard.
func (p *Pool) CreateReservation(ctx context.Context, r Reservation, by Actor) (Reservation, error) {
	if err := r.Validate(); err != nil {
		return Reservation{}, err
	}
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return Reservation{}, err
	}
	r.Shard = firstReservationShard + Shards*int(binary.BigEndian.Uint64(b[:])%((1<<52-firstReservationShard)/Shards))
	r.ID = strconv.Itoa(r.Shard)
	r.Spread = spreadFor(r.Seats)
	now := p.now().Unix()
	r.State, r.SetAside, r.Rev, r.CreatedAt, r.UpdatedAt, r.UpdatedBy = ReservationScheduled, 0, 1, now, now, by.Name
	r.Coverage, r.Shortfall, r.TTL = "", 0, 0
	item, err := marshalItem(r, labsPK, reservationSK(r.ID))
	if err != nil {
		return Reservation{}, err
	}
	t := p.newTx("create reservation", r.ID, expect{})
	t.put(ItemReservation, p.table, item, "attribute_not_exists(#PK)")
	return r, p.run(ctx, t)
}

// Reservation reads one reservation, strongly consistent.
func (p *Pool) Reservation(ctx context.Context, id string) (Reservation, error) {
	var r Reservation
	found, err := p.getItem(ctx, labsPK, reservationSK(id), &r)
	if err == nil && !found {
		err = fmt.Errorf("pool: reservation %s: %w", id, ErrNoReservation)
	}
	return r, err
}

// Reservations lists every reservation, strongly consistent.
func (p *Pool) Reservations(ctx context.Context) ([]Reservation, error) {
	return collect[Reservation](p.itemsUnder(ctx, labsPK, prefixReservationEntry, &dynamodb.QueryInput{ConsistentRead: aws.Bool(true)}))
}

// CancelReservation marks a scheduled reservation cancelled: from then on no allocation
// reads its set-aside (within the lab settings' refresh), and the reservations job returns
// what is left of it. A claim of a set-aside sandbox racing the return either lands
// before it (the student keeps it) or fails on the version the return bumped.
func (p *Pool) CancelReservation(ctx context.Context, id string, by Actor) (Reservation, error) {
	cur, err := p.Reservation(ctx, id)
	if err != nil {
		return Reservation{}, err
	}
	if cur.State != ReservationScheduled {
		return cur, nil // cancelled or ended already: nothing to do
	}
	now := p.now().Unix()
	var e expr
	e.set(":state", string(ReservationCancelled))
	e.set(":now", now)
	e.set(":by", by.Name)
	e.set(":one", 1)
	if err := p.updateReservation(ctx, "cancel reservation", id, reservationAt{state: ReservationScheduled}, &e,
		"SET #state = :state, #updated_at = :now, #updated_by = :by, #rev = #rev + :one"); err != nil {
		return Reservation{}, err
	}
	cur.State, cur.UpdatedAt, cur.UpdatedBy, cur.Rev = ReservationCancelled, now, by.Name, cur.Rev+1
	return cur, nil
}

// EndReservation marks a reservation with nothing set aside any more ended, to be dropped
// reservationKeep after its end. It is conditioned on the version read, so a set-aside
// racing it makes it fail.
func (p *Pool) EndReservation(ctx context.Context, cur Reservation) error {
	now := p.now().Unix()
	var e expr
	e.set(":state", string(ReservationEnded))
	e.set(":now", now)
	e.set(":ttl", max(cur.EndsAt, now)+int64(reservationKeep/time.Second))
	e.set(":one", 1)
	return p.updateReservation(ctx, "end reservation", cur.ID, reservationAt{rev: cur.Rev}, &e,
		"SET #state = :state, #updated_at = :now, #ttl = :ttl, #rev = #rev + :one")
}

// RecordCoverage writes the job's coverage verdict when it changed (one write per change,
// which the stream carries as an event).
func (p *Pool) RecordCoverage(ctx context.Context, cur Reservation, coverage string, shortfall int) error {
	if cur.Coverage == coverage && cur.Shortfall == shortfall {
		return nil
	}
	var e expr
	e.set(":coverage", coverage)
	e.set(":shortfall", shortfall)
	e.set(":now", p.now().Unix())
	e.set(":one", 1)
	return p.updateReservation(ctx, "record coverage", cur.ID, reservationAt{rev: cur.Rev}, &e,
		"SET #coverage = :coverage, #shortfall = :shortfall, #updated_at = :now, #rev = #rev + :one")
}

func (p *Pool) updateReservation(ctx context.Context, op, id string, want reservationAt, e *expr, update string) error {
	t := p.newTx(op, id, expect{})
	t.reservation = &want
	cond := want.condition(e)
	t.add(ItemReservation, types.TransactWriteItem{Update: &types.Update{
		TableName:                           aws.String(p.table),
		Key:                                 key(labsPK, reservationSK(id)),
		UpdateExpression:                    aws.String(e.use(update)),
		ConditionExpression:                 aws.String(cond),
		ExpressionAttributeNames:            e.names,
		ExpressionAttributeValues:           e.values,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	}})
	return p.run(ctx, t)
}

// SetAside sets candidate (an available sandbox of the general pool, as read) aside for
// r: it moves into its partition of r (Partitions) and carries r's ID, and r counts one more
// set aside, conditioned on r being scheduled with a seat left, in one transaction. A
// claim of the candidate racing it fails on the version, or makes it fail.
func (p *Pool) SetAside(ctx context.Context, candidate Sandbox, r Reservation, by Actor) error {
	none := ""
	t := p.newTx("set aside", candidate.ID, expect{statuses: []Status{Available}, rev: candidate.Rev, reservation: &none})
	var e expr
	e.set(":shard", r.partitionOf(candidate.ID))
	e.set(":reservation", r.ID)
	e.set(":now", p.now().Unix())
	e.set(":one", 1)
	t.updateSandbox(p.table, &e, "SET #avail_shard = :shard, #reservation = :reservation, #updated_at = :now, #rev = #rev + :one")
	t.countSetAside(p.table, r.ID, 1, &reservationAt{state: ReservationScheduled, seatLeft: true})
	by.Reason = "set aside for reservation " + r.ID
	return p.commit(ctx, t, Available, Available, by)
}

// ReturnSetAside gives a sandbox still set aside (cur, as read) back to the general pool
// (its shard, or its drained shard under a drain), and its reservation counts one fewer set aside, in one transaction
// conditioned on the version read.
func (p *Pool) ReturnSetAside(ctx context.Context, cur Sandbox, by Actor) error {
	id := cur.Reservation
	by.Reason = "returned from reservation " + id
	// Back into its shard, or its drained shard while a drain covers it (drainGate).
	return p.gated(ctx, func(g drainGate) error {
		shard := g.availShard(cur.ID, cur.Name)
		t := p.newTx("return set-aside", cur.ID, expect{statuses: []Status{Available}, rev: cur.Rev, reservation: &id})
		var e expr
		e.set(":shard", shard)
		e.set(":now", p.now().Unix())
		e.set(":one", 1)
		t.updateSandbox(p.table, &e, "SET #avail_shard = :shard, #updated_at = :now, #rev = #rev + :one REMOVE #reservation")
		t.countSetAside(p.table, id, -1, &reservationAt{})
		t.underGate(p.table, g)
		p.logIndexed(t, cur.ID, cur.Name, shard)
		return p.commit(ctx, t, Available, Available, by)
	})
}

// SetAsideOf reads up to limit sandboxes still set aside for r whose name starts with
// prefix: candidate pages of its partitions, one after the other, until limit.
func (p *Pool) SetAsideOf(ctx context.Context, r Reservation, prefix string, limit int) ([]Sandbox, error) {
	var out []Sandbox
	for _, partition := range r.Partitions() {
		page, err := p.Candidates(ctx, partition, prefix, limit-len(out))
		if err != nil {
			return nil, err
		}
		if out = append(out, page...); len(out) == limit {
			break
		}
	}
	return out, nil
}

// CountAvailable counts the available sandboxes of the general pool (set-asides are not)
// whose name starts with prefix: what a sweep of candidates would find.
func (p *Pool) CountAvailable(ctx context.Context, prefix string) (int, error) {
	return p.countPartitions(ctx, GeneralPartitions(), prefix)
}

// CountSetAside counts the sandboxes still set aside for r whose name starts with prefix.
func (p *Pool) CountSetAside(ctx context.Context, r Reservation, prefix string) (int, error) {
	return p.countPartitions(ctx, r.Partitions(), prefix)
}

// countPartitions counts the AvailableIndex entries of partitions whose name starts with prefix.
func (p *Pool) countPartitions(ctx context.Context, partitions []int, prefix string) (int, error) {
	total := 0
	for _, partition := range partitions {
		in, e := availableQuery(partition, prefix)
		n, err := p.count(ctx, in, e)
		if err != nil {
			return 0, err
		}
		total += n
	}
	return total, nil
}

// reservationAt is what a write requires of a reservation item: it exists, and, where
// set, its state, its version, and a seat left (set_aside < seats).
type reservationAt struct {
	state    ReservationState
	rev      int64
	seatLeft bool
}

func (x reservationAt) condition(e *expr) string {
	cond := "attribute_exists(#PK)"
	if x.state != "" {
		e.set(":want_state", string(x.state))
		cond += " AND #state = :want_state"
	}
	if x.rev != 0 {
		e.set(":want_rev", x.rev)
		cond += " AND #rev = :want_rev"
	}
	if x.seatLeft {
		cond += " AND #set_aside < #seats"
	}
	return e.use(cond)
}

func (x reservationAt) explain(cur *Reservation) string {
	switch {
	case cur == nil:
		return "no such reservation"
	case x.state != "" && cur.State != x.state:
		return fmt.Sprintf("the reservation is %s, want %s", cur.State, x.state)
	case x.rev != 0 && cur.Rev != x.rev:
		return fmt.Sprintf("the reservation changed since it was read (rev %d, want %d)", cur.Rev, x.rev)
	case x.seatLeft && cur.SetAside >= cur.Seats:
		return fmt.Sprintf("all %d seats are set aside", cur.Seats)
	}
	return "condition failed"
}

// countSetAside adds n to reservation id's set_aside, on the condition want.
func (t *tx) countSetAside(table, id string, n int, want *reservationAt) {
	var e expr
	t.reservation = want
	cond := want.condition(&e)
	e.set(":n", n)
	t.add(ItemReservation, types.TransactWriteItem{Update: &types.Update{
		TableName:                           aws.String(table),
		Key:                                 key(labsPK, reservationSK(id)),
		UpdateExpression:                    aws.String(e.use("ADD #set_aside :n")),
		ConditionExpression:                 aws.String(cond),
		ExpressionAttributeNames:            e.names,
		ExpressionAttributeValues:           e.values,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	}})
}

// availShard is the AvailableIndex partition an available sandbox belongs in: its
// partition of its reservation while set aside, else its shard under the drains (drainGate).
func (c *census) availShard(s Sandbox) int {
	if r, ok := c.reservations[s.Reservation]; ok {
		return r.v.partitionOf(s.ID)
	}
	return c.drains.availShard(s.ID, s.Name)
}

// reservationsCountTheirSetAsides guarantees that set-aside and general counts stay
// exact: each reservation (but an ended one, whose claimed records' tombstones may have
// expired) counts in set_aside exactly the sandboxes still set aside for it plus those
// claimed from its set-aside; only an available sandbox is set aside, for a reservation
// that exists, has not ended and has a shard and at most Shards partitions of its own
// under its key; a sandbox struck stale gave its seat up.
func (c *census) reservationsCountTheirSetAsides() []error {
	var v violations
	shards := map[int]string{}
	for id, r := range c.reservations {
		if r.sk != reservationSK(id) || id != strconv.Itoa(r.v.Shard) || r.v.Shard < firstReservationShard {
			v.add("reservation %s / %s names ID %s and shard %d", r.pk, r.sk, id, r.v.Shard)
		}
		if r.v.Spread < 0 || r.v.Spread > Shards {
			v.add("reservation %s spreads over %d partitions, want 0 to %d", id, r.v.Spread, Shards)
		}
		if other, dup := shards[r.v.Shard]; dup {
			v.add("reservations %s and %s share shard %d", id, other, r.v.Shard)
		}
		shards[r.v.Shard] = id
	}
	counted := map[string]int{}
	for id, s := range c.sandboxes {
		if s.Reservation == "" {
			continue
		}
		r, ok := c.reservations[s.Reservation]
		switch {
		case s.Status == Available && !ok:
			v.add("available sandbox %s is set aside for reservation %s, which does not exist", id, s.Reservation)
		case s.Status == Available && r.v.State == ReservationEnded:
			v.add("available sandbox %s is set aside for reservation %s, which ended", id, s.Reservation)
		case s.Status == Stale:
			v.add("stale sandbox %s still names reservation %s", id, s.Reservation)
		default: // available: set aside; any later status: claimed from the set-aside
			counted[s.Reservation]++
		}
	}
	for id, r := range c.reservations {
		// Seats lowered below what was set aside leave set_aside above them until the job
		// returns the excess; a set-aside itself never passes the seats (its condition).
		if r.v.State != ReservationEnded && (counted[id] != r.v.SetAside || r.v.SetAside < 0) {
			v.add("reservation %s counts %d set aside, the records %d (seats %d)", id, r.v.SetAside, counted[id], r.v.Seats)
		}
	}
	return v
}
