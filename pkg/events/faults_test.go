package events_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/sandbox-broker/broker/internal/ddblocal"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/sandbox-broker/broker/internal/eventbridgefake"
	"github.com/sandbox-broker/broker/pkg/broker"
	"github.com/sandbox-broker/broker/pkg/events"
	"github.com/sandbox-broker/broker/pkg/pool"
	"github.com/sandbox-broker/broker/pkg/pool/pooltest"
)

var syncJob = pool.Actor{Kind: "job", Name: "sync", RequestID: "run-sync"}

// fill creates n available sandboxes named lab-00001… and returns their IDs.
func fill(t *testing.T, p *pool.Pool, n int) []string {
	t.Helper()
	ids := make([]string, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		ids[i] = fmt.Sprint(4000000 + i)
		wg.Go(func() {
			_, err := p.Create(ctx, pool.Account{ID: ids[i], Name: fmt.Sprintf("lab-%05d", i),
				ExternalID: fmt.Sprintf("identity/accounts/00000000-0000-4000-8000-%012d", i)}, syncJob)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	return ids
}

// allocateAll allocates one sandbox to each of n students, as a burst: every request
// is sent at once, with at most 48 in flight (the local client's connections), so a
// machine busy with other work slows the burst down rather than timing claims out.
func allocateAll(t *testing.T, b *broker.Broker, n int) []broker.Allocation {
	t.Helper()
	out := make([]broker.Allocation, n)
	var wg sync.WaitGroup
	var failed atomic.Int64
	inFlight := make(chan struct{}, ddblocal.MaxConns)
	for i := range n {
		wg.Go(func() {
			inFlight <- struct{}{}
			defer func() { <-inFlight }()
			a, err := b.Allocate(ctx, broker.AllocateRequest{Student: fmt.Sprintf("student-%04d", i), Client: "instruqt",
				TrackName: "burst-lab", RequestID: fmt.Sprintf("req-%04d", i)})
			if err != nil {
				failed.Add(1)
				t.Errorf("student %d: %v", i, err)
			}
			out[i] = a
		})
	}
	wg.Wait()
	if failed.Load() > 0 {
		t.FailNow()
	}
	return out
}

var errCrash = errors.New("the function died mid-batch")

// crashing is a Publisher that dies (panics) on the calls die picks, after the calls
// before it went through: the function's process ending between two PutEvents.
type crashing struct {
	events.Publisher
	calls atomic.Int64
	die   func(n int64) bool
}

func (c *crashing) Publish(ctx context.Context, evs []events.Event) []error {
	if c.die(c.calls.Add(1)) {
		panic(errCrash)
	}
	return c.Publisher.Publish(ctx, evs)
}

// TestCrashesAndRedeliveriesLoseNothing publishes the 100 transitions of 40 sandboxes
// (40 added, 40 allocated, 20 released) while everything goes wrong between a write and
// its publication: the function dies mid-batch three times (Lambda retries the whole
// batch), PutEvents' answer is lost once after EventBridge took the entries (the SDK puts
// them again), a third of the entries are throttled on their first put, and one sandbox's
// events are throttled for longer than a call retries (the batch is handed back from its
// record). Deduplicated by event ID, the bus holds exactly the 100 events, each delivery
// of an ID identical to the first, each sandbox's in order; nothing is dead-lettered.
func TestCrashesAndRedeliveriesLoseNothing(t *testing.T) {
	b := newBus(t)
	ids := fill(t, b.pool, 40)
	br := broker.New(b.pool, poolCfg)
	allocs := allocateAll(t, br, 40)
	for _, a := range allocs[:20] {
		if _, err := br.Release(ctx, a.SandboxID, pool.Holder{Client: "instruqt", Student: a.Student}, "req-release"); err != nil {
			t.Fatal(err)
		}
	}
	const transitions = 40 + 40 + 20

	crash := &crashing{Publisher: b.deliver.Bus, die: func(n int64) bool { return n == 3 || n == 9 || n == 16 }}
	b.deliver.Bus = crash
	b.poller.BatchSize = 25
	crashes := 0
	b.poller.Deliver = func(ctx context.Context, records []events.Record) (res events.Result, err error) {
		defer func() {
			if p := recover(); p != nil {
				crashes++
				res, err = events.Result{}, errCrash // no answer: Lambda retries the batch
			}
		}()
		return b.deliver.Deliver(ctx, records)
	}
	b.eb.OnCall(func(n int) eventbridgefake.Call {
		if n == 5 {
			return eventbridgefake.LoseAnswer
		}
		return eventbridgefake.Answer
	})
	var mu sync.Mutex
	seen := map[string]int{}
	slow := allocs[7].SandboxID
	b.eb.FailEntries(func(e eventbridgefake.Entry) string {
		mu.Lock()
		defer mu.Unlock()
		seen[e.Detail]++
		switch {
		case strings.Contains(e.Detail, `"id":"`+slow+`"`) && seen[e.Detail] <= 4:
			return "ThrottlingException"
		case len(seen)%3 == 0 && seen[e.Detail] == 1:
			return "InternalFailure"
		}
		return ""
	})

	b.drain(t)
	got := b.published(t)
	u := unique(t, got)
	inOrder(t, u)
	if len(u) != transitions {
		t.Errorf("%d distinct events on the bus, want %d", len(u), transitions)
	}
	for _, id := range ids {
		want := 1 // added
		for i, a := range allocs {
			if a.SandboxID == id {
				want += 1 + map[bool]int{true: 1}[i < 20]
			}
		}
		if n := len(of(u, id)); n != want {
			t.Errorf("sandbox %s: %d events, want %d", id, n, want)
		}
	}
	if crashes != 3 || len(got) == len(u) {
		t.Errorf("%d crashes and %d deliveries of %d events: the faults did not all fire", crashes, len(got), len(u))
	}
	if dead := b.sqs.Bodies(b.dlqURL); len(dead) != 0 {
		t.Errorf("%d dead letters, want none: every failure here passes", len(dead))
	}
	if n := validate(t, b.eb); n != len(got) {
		t.Errorf("validated %d of %d deliveries", n, len(got))
	}
	t.Logf("crash and redelivery: %d transitions, %d deliveries (%d duplicates), %d crashes, %d PutEvents calls, 0 dead letters",
		transitions, len(got), len(got)-len(u), crashes, b.eb.Calls())
	pooltest.Check(t, b.pool)
}

// TestUndeliverableEventsAreDeadLetteredAndReplayed: the bus refuses one sandbox's
// allocation for good (InvalidArgument), throttles another's events past
// DeadLetterAfter, and a hand-written record cannot be read; the event source mapping's
// on-failure destination reports a batch it gave up on. Each lands in the dead-letter
// queue instead of blocking the shard; a replay, once the bus takes them, publishes every
// event (the failed batch's read back from the stream), deletes those messages and keeps
// the unreadable record's, so nothing is lost.
func TestUndeliverableEventsAreDeadLetteredAndReplayed(t *testing.T) {
	b := newBus(t)
	fill(t, b.pool, 10)
	allocs := allocateAll(t, broker.New(b.pool, poolCfg), 10)
	refused, throttled := allocs[0].SandboxID, allocs[1].SandboxID
	// A record this version cannot read: its rev is not a number.
	if _, err := pooltest.Client().PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(b.pool.Table()), Item: map[string]types.AttributeValue{
		pool.AttrPK: &types.AttributeValueMemberS{Value: "SBX#hand-made"}, pool.AttrSK: &types.AttributeValueMemberS{Value: "META"},
		"sandbox_id": &types.AttributeValueMemberS{Value: "hand-made"}, "status": &types.AttributeValueMemberS{Value: "available"},
		"rev": &types.AttributeValueMemberS{Value: "one"},
	}}); err != nil {
		t.Fatal(err)
	}
	b.eb.FailEntries(func(e eventbridgefake.Entry) string {
		switch {
		case strings.Contains(e.Detail, `"id":"`+refused+`"`) && e.DetailType == string(events.Allocated):
			return "InvalidArgument"
		case strings.Contains(e.Detail, `"id":"`+throttled+`"`):
			return "ThrottlingException"
		}
		return ""
	})
	// Seen from an hour later, every record is past DeadLetterAfter.
	b.deliver.Now = func() time.Time { return time.Now().Add(time.Hour) }
	b.drain(t)

	dead := b.sqs.Bodies(b.dlqURL)
	var letters []events.Letter
	for _, body := range dead {
		var l events.Letter
		if err := json.Unmarshal([]byte(body), &l); err != nil {
			t.Fatal(err)
		}
		letters = append(letters, l)
	}
	// refused: its allocation; throttled: its addition and allocation; the hand-made record.
	if len(letters) != 4 {
		t.Fatalf("%d dead letters, want 4: %v", len(letters), dead)
	}
	live := unique(t, b.published(t))
	if len(live) != 20-3 {
		t.Errorf("%d events on the bus before the replay, want 17", len(live))
	}

	// The event source mapping gave up on a batch: the stream's first twelve records.
	first := firstRecords(t, b, 12)
	inBatch := 0
	for _, r := range first.records {
		if _, ok, _ := events.Map(r); ok {
			inBatch++
		}
	}
	b.sqs.Put(b.dlqURL, fmt.Sprintf(`{"requestContext":{"condition":"RetryAttemptsExhausted"},"version":"1.0","DDBStreamBatchInfo":{"shardId":%q,"startSequenceNumber":%q,"endSequenceNumber":%q,"streamArn":%q,"batchSize":12}}`,
		first.shard, first.records[0].Sequence, first.records[11].Sequence, b.poller.StreamARN))

	b.eb.FailEntries(nil)
	res, err := b.replayer.Replay(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Messages != 5 || res.Deleted != 4 || res.Kept != 1 || res.Published != 3+inBatch || inBatch == 0 {
		t.Errorf("replay: %+v, want 5 messages, %d events published, 4 deleted, the unreadable record kept", res, 3+inBatch)
	}
	if left := b.sqs.Bodies(b.dlqURL); len(left) != 1 || !strings.Contains(left[0], "hand-made") {
		t.Errorf("left in the queue: %v", left)
	}
	all := unique(t, b.published(t))
	if len(all) != 20 {
		t.Errorf("%d distinct events after the replay, want 20 (10 added, 10 allocated)", len(all))
	}
	for _, id := range []string{refused, throttled} {
		if evs := of(all, id); !slices.Equal(typesOf(evs), []events.Type{events.Added, events.Allocated}) {
			t.Errorf("sandbox %s after the replay: %v", id, typesOf(evs))
		}
	}
	if n := validate(t, b.eb); n != len(b.eb.Events()) {
		t.Errorf("validated %d of %d deliveries", n, len(b.eb.Events()))
	}
	t.Logf("dead letters: %d kept (1 refused, 2 throttled too long, 1 unreadable record) + 1 failed batch; replay %+v", len(letters), res)
}

type shardRecords struct {
	shard   string
	records []events.Record
}

// firstRecords reads the first n records of the stream's first shard.
func firstRecords(t *testing.T, b *bus, n int) shardRecords {
	t.Helper()
	var out shardRecords
	p := events.Poller{Streams: b.poller.Streams, StreamARN: b.poller.StreamARN, FromStart: true, BatchSize: int32(n),
		Deliver: func(_ context.Context, records []events.Record) (events.Result, error) {
			if out.records == nil {
				out.records = records
			}
			return events.Result{}, nil
		}}
	if _, err := p.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	shards, err := events.Shards(ctx, p.Streams, p.StreamARN)
	if err != nil || len(shards) == 0 {
		t.Fatalf("shards: %v %v", shards, err)
	}
	out.shard = shards[0]
	return out
}

// TestBurstOf500StudentsIs500AllocatedEvents: 500 students allocate at once against a
// pool of 500; the stream yields exactly 500 allocated events, one per sandbox and one
// per student, beside the 500 added ones.
func TestBurstOf500StudentsIs500AllocatedEvents(t *testing.T) {
	b := newBus(t)
	fill(t, b.pool, 500)
	allocateAll(t, broker.New(b.pool, poolCfg), 500)
	b.drain(t)
	u := unique(t, b.published(t))
	inOrder(t, u)
	sandboxes, students := map[string]bool{}, map[string]bool{}
	added := 0
	for _, e := range u {
		switch e.Type {
		case events.Allocated:
			sandboxes[e.Sandbox.ID], students[e.Student] = true, true
		case events.Added:
			added++
		default:
			t.Errorf("unexpected %s", e.Type)
		}
	}
	if len(sandboxes) != 500 || len(students) != 500 || added != 500 || len(u) != 1000 {
		t.Errorf("%d allocated events over %d sandboxes and %d students, %d added, %d in all; want 500, 500, 500, 500, 1000",
			len(u)-added, len(sandboxes), len(students), added, len(u))
	}
	if n := validate(t, b.eb); n != len(b.eb.Events()) {
		t.Errorf("validated %d of %d", n, len(b.eb.Events()))
	}
	t.Logf("burst: 500 allocations, %d allocated events, %d PutEvents calls", len(sandboxes), b.eb.Calls())
	pooltest.Check(t, b.pool)
}
