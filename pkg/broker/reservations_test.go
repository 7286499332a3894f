package broker_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/smithy-go/middleware"

	"github.com/sandbox-broker/broker/internal/testkit"
	"github.com/sandbox-broker/broker/pkg/broker"
	"github.com/sandbox-broker/broker/pkg/broker/brokertest"
	"github.com/sandbox-broker/broker/pkg/pool"
	"github.com/sandbox-broker/broker/pkg/pool/pooltest"
)

var (
	workshopStart   = time.Date(2026, 12, 8, 9, 0, 0, 0, time.UTC)
	reservationsJob = pool.Actor{Kind: "job", Name: "reservations"}
)

// workshop is a reservation of seats of "lab" for dns-lab, 09:00–12:00, set aside from
// 08:30.
func workshop(seats int, overflow bool) pool.Reservation {
	return pool.Reservation{Lab: "dns-lab", Prefix: "lab", Seats: seats, StartsAt: workshopStart.Unix(),
		EndsAt: workshopStart.Add(3 * time.Hour).Unix(), LeadSeconds: 1800, Overflow: overflow}
}

func labStudents(lab string, n int) []broker.AllocateRequest {
	reqs := make([]broker.AllocateRequest, n)
	for i := range reqs {
		reqs[i] = broker.AllocateRequest{Student: fmt.Sprintf("%s-%d", lab, i), Client: "instruqt", TrackName: lab, NamePrefix: "lab"}
	}
	return reqs
}

// tally counts a rush's answers: sandboxes given (each once), 409s, anything else fails.
func tally(t *testing.T, results []brokertest.Result, seen map[string]string) (got, none int) {
	t.Helper()
	for _, r := range results {
		switch {
		case r.Err == nil:
			if other, dup := seen[r.Alloc.SandboxID]; dup {
				t.Fatalf("sandbox %s given to %s and %s", r.Alloc.SandboxID, other, r.Req.Student)
			}
			seen[r.Alloc.SandboxID] = r.Req.Student
			got++
		case errors.Is(r.Err, broker.ErrNoSandbox):
			none++
		default:
			t.Fatalf("%s: %v", r.Req.Student, r.Err)
		}
	}
	return got, none
}

func keep(t *testing.T, p *pool.Pool) broker.KeepReport {
	t.Helper()
	rep, err := broker.KeepReservations(ctx, p, reservationsJob)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// TestReservationHoldsAgainstARushOfAnotherLab: 30 seats of "lab" set aside for dns-lab
// at its lead time; then dns-lab's 30 students and k8s-lab's 50 rush the 50 sandboxes at
// once, through three brokers (three processes): every dns-lab student gets a sandbox,
// k8s-lab gets exactly the other 20, nobody gets one twice, and the reservation counts
// its 30 seats used.
func TestReservationHoldsAgainstARushOfAnotherLab(t *testing.T) {
	clock := testkit.NewClock(workshopStart.Add(-20 * time.Minute))
	p := pooltest.NewWith(t, pool.Options{Now: clock.Now})
	brokertest.Fill(t, p, "lab", 0, 50)
	b := broker.New(p, poolCfg)
	r, _, err := b.CreateReservation(ctx, workshop(30, false), false, admin)
	if err != nil {
		t.Fatal(err)
	}
	if rep := keep(t, p); rep.SetAside != 30 || len(rep.Short) != 0 {
		t.Fatalf("the set-aside at the lead time: %+v", rep)
	}
	pooltest.Check(t, p)
	brokers := []*broker.Broker{broker.New(p, poolCfg), broker.New(p, poolCfg), broker.New(p, poolCfg)}
	reqs := append(labStudents("dns-lab", 30), labStudents("k8s-lab", 50)...)
	var i atomic.Int64
	results := brokertest.AllocateEach(reqs, func(r broker.AllocateRequest) (broker.Allocation, error) {
		return brokers[i.Add(1)%3].Allocate(ctx, r)
	})
	seen := map[string]string{}
	dns, dnsNone := tally(t, results[:30], seen)
	k8s, k8sNone := tally(t, results[30:], seen)
	if dns != 30 || k8s != 20 || dnsNone != 0 || k8sNone != 30 {
		t.Fatalf("dns-lab got %d (%d refused), k8s-lab %d (%d refused); want 30 and 20", dns, dnsNone, k8s, k8sNone)
	}
	for _, res := range results[:30] {
		if s := mustGet(t, p, res.Alloc.SandboxID); s.Reservation != r.ID {
			t.Fatalf("dns-lab's sandbox %s names reservation %q, want %s", s.ID, s.Reservation, r.ID)
		}
	}
	if cur, _ := p.Reservation(ctx, r.ID); cur.SetAside != 30 {
		t.Fatalf("the reservation counts %d set aside, want its 30 seats, used", cur.SetAside)
	}
	pooltest.Check(t, p)
}

// TestASetAsideSpreadsOverItsPartitions: 120 seats set aside sit in three of the
// reservation's partitions (one per 50 seats), none empty and none holding more than a
// candidate page, so its students' reads spread as the general pool's do; each sandbox
// sits in its own shard's partition (CheckInvariants).
func TestASetAsideSpreadsOverItsPartitions(t *testing.T) {
	clock := testkit.NewClock(workshopStart)
	p := pooltest.NewWith(t, pool.Options{Now: clock.Now})
	brokertest.Fill(t, p, "lab", 0, 200)
	r, _, err := broker.New(p, poolCfg).CreateReservation(ctx, workshop(120, false), false, admin)
	if err != nil {
		t.Fatal(err)
	}
	keep(t, p)
	pooltest.Check(t, p)
	var held []int
	total := 0
	for _, partition := range r.Partitions() {
		page, err := p.Candidates(ctx, partition, "", 100)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, len(page))
		total += len(page)
	}
	if len(held) != 3 || total != 120 || slices.Contains(held, 0) || slices.Max(held) >= 100 {
		t.Fatalf("the set-aside of 120 holds %v per partition, want all 120 over 3", held)
	}
}

// TestAStudentPastASmallSetAsideReadsItOnce: a workshop of 10 seats sits in one partition,
// so once its seats are taken the next student of its lab reads that partition once,
// empty, before it overflows to the general pool: three DynamoDB calls in all (with the
// lab settings cached), where a set-aside over all eight partitions cost it eight reads
// of empty partitions.
func TestAStudentPastASmallSetAsideReadsItOnce(t *testing.T) {
	clock := testkit.NewClock(workshopStart)
	p := pooltest.NewWith(t, pool.Options{Now: clock.Now})
	brokertest.Fill(t, p, "lab", 0, 60)
	r, _, err := broker.New(p, poolCfg).CreateReservation(ctx, workshop(10, true), false, admin)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Partitions()) != 1 {
		t.Fatalf("a reservation of 10 seats has %d partitions, want 1", len(r.Partitions()))
	}
	keep(t, p)
	b, counted := countingBroker(t, p, clock)
	for _, req := range labStudents("dns-lab", 10) {
		if _, err := b.Allocate(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	if left, err := p.CountSetAside(ctx, r, ""); err != nil || left != 0 {
		t.Fatalf("%d seats left after 10 students (%v), want 0", left, err)
	}
	before := counted.n.Load()
	got, err := b.Allocate(ctx, broker.AllocateRequest{Student: "the eleventh", Client: "instruqt", TrackName: "dns-lab", NamePrefix: "lab"})
	if err != nil {
		t.Fatal(err)
	}
	if calls := counted.n.Load() - before; calls != 3 {
		t.Fatalf("the student past the seats made %d DynamoDB calls, want 3: the empty set-aside, a general page, the claim", calls)
	}
	if s, err := p.Get(ctx, got.SandboxID); err != nil || s.Reservation != "" {
		t.Fatalf("the student past the seats got %+v (%v), want a general sandbox", s, err)
	}
	pooltest.Check(t, p)
}

// TestSetAsideRacesTwoLabsRushing: the job sets seats aside while both labs rush (the
// lead time passes mid-rush), hammered with -race: whatever interleaving, no sandbox is
// given twice, the reservation counts exactly the records set aside for it and claimed
// from it (CheckInvariants), never more than its seats, and every sandbox is accounted
// for: general + set aside + allocated = the pool.
func TestSetAsideRacesTwoLabsRushing(t *testing.T) {
	for round := range 3 {
		t.Run(fmt.Sprint(round), func(t *testing.T) {
			clock := testkit.NewClock(workshopStart.Add(-20 * time.Minute))
			p := pooltest.NewWith(t, pool.Options{Now: clock.Now})
			brokertest.Fill(t, p, "lab", 0, 60)
			b := broker.New(p, poolCfg)
			r, _, err := b.CreateReservation(ctx, workshop(25, true), false, admin)
			if err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			var results []brokertest.Result
			wg.Go(func() {
				results = brokertest.AllocateAll(broker.New(p, poolCfg), append(labStudents("dns-lab", 25), labStudents("k8s-lab", 40)...))
			})
			for range 3 {
				wg.Go(func() {
					if _, err := broker.KeepReservations(ctx, p, reservationsJob); err != nil {
						t.Error(err)
					}
				})
			}
			wg.Wait()
			got, _ := tally(t, results, map[string]string{})
			cur, err := p.Reservation(ctx, r.ID)
			if err != nil {
				t.Fatal(err)
			}
			general, err := p.CountAvailable(ctx, "")
			if err != nil {
				t.Fatal(err)
			}
			held, err := p.CountSetAside(ctx, cur, "")
			if err != nil {
				t.Fatal(err)
			}
			if cur.SetAside > cur.Seats || general+held+got != 60 {
				t.Fatalf("set_aside %d of %d seats; %d general + %d set aside + %d allocated != 60", cur.SetAside, cur.Seats, general, held, got)
			}
			// The stats count the set-asides as available, but not in any prefix's level.
			st, err := p.Stats(ctx)
			if err != nil || st.ByStatus[pool.Available] != general+held || st.AvailableByPrefix["lab"] != general {
				t.Fatalf("stats %+v, %v; want %d available, %d of them by prefix", st, err, general+held, general)
			}
			t.Logf("round %d: %d allocated, set_aside %d (%d still held), %d general", round, got, cur.SetAside, held, general)
			pooltest.Check(t, p)
		})
	}
}

// TestCancelDuringTheRush: the reservation is cancelled and its set-aside returned while
// its students rush, and one claim is forced to race the return (the hook runs the
// return between the pick of a set-aside candidate and its claim): that claim loses on
// the version and the student gets a general sandbox instead; every student gets one, the
// reservation ends, nothing stays set aside.
func TestCancelDuringTheRush(t *testing.T) {
	clock := testkit.NewClock(workshopStart)
	p := pooltest.NewWith(t, pool.Options{Now: clock.Now})
	brokertest.Fill(t, p, "lab", 0, 40)
	b := broker.New(p, poolCfg)
	r, _, err := b.CreateReservation(ctx, workshop(20, true), false, admin)
	if err != nil {
		t.Fatal(err)
	}
	keep(t, p)
	racer := broker.New(p, poolCfg)
	var picks []pool.Sandbox
	broker.SetAfterPick(racer, func(c pool.Sandbox) {
		if picks = append(picks, c); len(picks) == 1 {
			if _, err := b.CancelReservation(ctx, r.ID, admin); err != nil {
				t.Error(err)
			}
			keep(t, p)
		}
	})
	a, err := racer.Allocate(ctx, labStudents("dns-lab", 1)[0])
	if err != nil {
		t.Fatal(err)
	}
	// The first claim lost, so the allocation picked again; the second pick may be the
	// same sandbox, back in the general pool at its new version (a fair win).
	if len(picks) < 2 {
		t.Fatalf("the claim of %s, returned between its pick and its claim, won", picks[0].ID)
	}
	if s := mustGet(t, p, a.SandboxID); s.Reservation != "" {
		t.Fatalf("the student got %s from reservation %q; want a general sandbox", s.ID, s.Reservation)
	}
	// The others rush while the job ends the reservation.
	var wg sync.WaitGroup
	var results []brokertest.Result
	wg.Go(func() { results = brokertest.AllocateAll(broker.New(p, poolCfg), labStudents("dns-lab", 20)[1:]) })
	wg.Go(func() { keep(t, p) })
	wg.Wait()
	if got, none := tally(t, results, map[string]string{a.SandboxID: "dns-lab-0"}); got != 19 || none != 0 {
		t.Fatalf("%d of 19 got a sandbox, %d refused", got, none)
	}
	keep(t, p)
	cur, err := p.Reservation(ctx, r.ID)
	if err != nil || cur.State != pool.ReservationEnded || cur.SetAside != 0 {
		t.Fatalf("after the cancellation: %+v, %v; want ended with nothing set aside", cur, err)
	}
	pooltest.Check(t, p)
}

// TestCapacityCheck: a dry run counts the general pool, what other overlapping
// reservations still need, and refuses an uncoverable reservation with the numbers
// unless forced; when sync strikes a set-aside sandbox the job sets another aside, and
// once the pool cannot cover it, records the shortfall and reports it (the alarm).
func TestCapacityCheck(t *testing.T) {
	clock := testkit.NewClock(workshopStart.Add(-2 * time.Hour))
	p := pooltest.NewWith(t, pool.Options{Now: clock.Now})
	brokertest.Fill(t, p, "lab", 0, 30)
	b := broker.New(p, poolCfg)
	first, c, err := b.CreateReservation(ctx, workshop(20, true), false, admin)
	if err != nil || !c.Coverable || c.Available != 30 {
		t.Fatalf("20 of 30: %+v, %v", c, err)
	}
	other := workshop(15, true)
	other.Lab = "k8s-lab"
	_, c, err = b.CreateReservation(ctx, other, false, admin)
	var ue *broker.UncoverableError
	if !errors.As(err, &ue) || c.Available != 30 || c.PromisedToOthers != 20 || c.Shortfall != 5 || c.Coverable {
		t.Fatalf("15 more of 30 with 20 promised: %+v, %v; want refused 5 short", c, err)
	}
	if _, c, err = b.CreateReservation(ctx, other, true, admin); err != nil || c.Shortfall != 5 {
		t.Fatalf("forced: %+v, %v", c, err)
	}
	// Within the horizon, ahead of the lead time: both are short by 5 against each other.
	rep := keep(t, p)
	if rep.SetAside != 0 || len(rep.Short) != 2 {
		t.Fatalf("ahead of time: %+v; want both reported short, nothing set aside", rep)
	}
	if cur, _ := p.Reservation(ctx, first.ID); cur.Coverage != pool.CoverageShort || cur.Shortfall != 5 {
		t.Fatalf("the first reservation records %q short %d", cur.Coverage, cur.Shortfall)
	}
	// At the lead time the earlier-created... both start together: start order is stable,
	// the first listed sets aside first. 30 are set aside in all, 5 short.
	clock.Advance(90 * time.Minute)
	rep = keep(t, p)
	if rep.SetAside != 30 {
		t.Fatalf("at the lead time: %+v", rep)
	}
	pooltest.Check(t, p)
	// Sync strikes a set-aside sandbox: the reservation loses it and is short by one more.
	cur, _ := p.Reservation(ctx, first.ID)
	held, err := p.SetAsideOf(ctx, cur, "", 1)
	if err != nil || len(held) != 1 {
		t.Fatal(held, err)
	}
	s := mustGet(t, p, held[0].ID)
	if _, err := p.MarkStale(ctx, s, syncJob); err != nil {
		t.Fatal(err)
	}
	pooltest.Check(t, p)
	after, _ := p.Reservation(ctx, first.ID)
	if after.SetAside != cur.SetAside-1 {
		t.Fatalf("set_aside %d after a strike, want %d", after.SetAside, cur.SetAside-1)
	}
	rep = keep(t, p)
	short := 0
	for _, n := range rep.Short {
		short += n
	}
	if short != 6 {
		t.Fatalf("after the strike: %+v; want 6 seats short in all", rep)
	}
	pooltest.Check(t, p)
}

// TestAReservationClaimCostsWhatAGeneralOneCosts: with the caches warm, an allocation
// from a set-aside makes the same DynamoDB calls as one from the general pool: one
// candidate query and the claim's one transaction.
func TestAReservationClaimCostsWhatAGeneralOneCosts(t *testing.T) {
	clock := testkit.NewClock(workshopStart)
	p := pooltest.NewWith(t, pool.Options{Now: clock.Now})
	// Every general shard and every partition of the reservation holds candidates: the
	// first read finds one.
	brokertest.Fill(t, p, "lab", 0, 400)
	if _, _, err := broker.New(p, poolCfg).CreateReservation(ctx, workshop(200, true), false, admin); err != nil {
		t.Fatal(err)
	}
	keep(t, p)
	b, counted := countingBroker(t, p, clock)
	calls := func(req broker.AllocateRequest) int64 {
		before := counted.n.Load()
		if _, err := b.Allocate(ctx, req); err != nil {
			t.Fatal(err)
		}
		return counted.n.Load() - before
	}
	warm := calls(broker.AllocateRequest{Student: "warm", Client: "instruqt", NamePrefix: "lab"})
	general := calls(broker.AllocateRequest{Student: "g", Client: "instruqt", TrackName: "k8s-lab", NamePrefix: "lab"})
	reserved := calls(broker.AllocateRequest{Student: "r", Client: "instruqt", TrackName: "dns-lab", NamePrefix: "lab"})
	t.Logf("DynamoDB calls: first allocation %d (reads the lab settings), general %d, from a reservation %d", warm, general, reserved)
	if general != 2 || reserved != general {
		t.Fatalf("general allocation %d calls, from a reservation %d; want 2 each", general, reserved)
	}
	pooltest.Check(t, p)
}

// countingBroker is a broker on p's table whose DynamoDB calls counted counts, with its
// lab settings cached for the whole test (their clock stands still).
func countingBroker(t *testing.T, p *pool.Pool, clock *testkit.Clock) (*broker.Broker, *callCounter) {
	t.Helper()
	counted := &callCounter{}
	db, err := pool.NewClient(ctx, pool.ClientOptions{Endpoint: pooltest.Endpoint(), Region: "us-east-1",
		APIOptions: []func(*middleware.Stack) error{counted.register}})
	if err != nil {
		t.Fatal(err)
	}
	b := broker.New(pool.New(db, p.Table(), pool.Options{Now: clock.Now}), poolCfg)
	broker.SetLabSettingsClock(b, testkit.NewClock(time.Now()).Now)
	return b, counted
}

// callCounter counts the DynamoDB calls made through a client, once per call (before the
// SDK's retries).
type callCounter struct{ n atomic.Int64 }

func (c *callCounter) register(stack *middleware.Stack) error {
	return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("CountCalls",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			c.n.Add(1)
			return next.HandleInitialize(ctx, in)
		}), middleware.Before)
}
