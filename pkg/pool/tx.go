package pool

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
)

// tx is one transition, one TransactWriteItems: the sandbox write with its expectation
// (expect), the writes of its companions with their own conditions (owner record, UUID
// item, counter shard), and, through commit, the history entry (the claim keeps its entry
// on the sandbox item). classify turns a refusal into the package's errors, naming the
// item whose condition failed (kinds).
type tx struct {
	op        string
	sandboxID string
	want      expect
	items     []types.TransactWriteItem
	kinds     []string // ItemSandbox, ItemOwner, ItemUUID, ItemCounter, ItemDrains or "" (history, logs), parallel to items
	// counter is the condition of the counter shard the transaction takes, if any.
	counter *capRoom
	// reservation is the condition of the reservation item it writes, if any.
	reservation *reservationAt
}

func (p *Pool) newTx(op, sandboxID string, want expect) *tx {
	return &tx{op: op, sandboxID: sandboxID, want: want}
}

// updateSandbox adds the conditional update of the sandbox item; update uses #names and
// placeholders bound on e.
func (t *tx) updateSandbox(table string, e *expr, update string) {
	cond := t.want.condition(e)
	t.add(ItemSandbox, types.TransactWriteItem{Update: &types.Update{
		TableName:                           aws.String(table),
		Key:                                 key(sandboxPK(t.sandboxID), skMeta),
		UpdateExpression:                    aws.String(e.use(update)),
		ConditionExpression:                 aws.String(cond),
		ExpressionAttributeNames:            e.names,
		ExpressionAttributeValues:           e.values,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	}})
}

// putSandbox adds the conditional put of a whole sandbox item.
func (t *tx) putSandbox(table string, item map[string]types.AttributeValue) {
	var e expr
	cond := t.want.condition(&e)
	t.add(ItemSandbox, types.TransactWriteItem{Put: &types.Put{
		TableName:                           aws.String(table),
		Item:                                item,
		ConditionExpression:                 aws.String(cond),
		ExpressionAttributeNames:            e.names,
		ExpressionAttributeValues:           e.values,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	}})
}

// deleteSandbox adds the conditional delete of the sandbox item.
func (t *tx) deleteSandbox(table string) {
	var e expr
	cond := t.want.condition(&e)
	t.add(ItemSandbox, types.TransactWriteItem{Delete: &types.Delete{
		TableName:                           aws.String(table),
		Key:                                 key(sandboxPK(t.sandboxID), skMeta),
		ConditionExpression:                 aws.String(cond),
		ExpressionAttributeNames:            e.names,
		ExpressionAttributeValues:           e.values,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	}})
}

// putOwner adds the owner record o in its slot, which must be free.
func (t *tx) putOwner(table string, o Owner) error {
	item, err := attributevalue.MarshalMap(o)
	if err != nil {
		return err
	}
	for k, v := range OwnerKey(Holder{Client: o.Client, Student: o.Student}, o.Slot) {
		item[k] = v
	}
	var e expr
	t.add(ItemOwner, types.TransactWriteItem{Put: &types.Put{
		TableName:                           aws.String(table),
		Item:                                item,
		ConditionExpression:                 aws.String(freeSlot{}.condition(&e)),
		ExpressionAttributeNames:            e.names,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	}})
	return nil
}

// dropOwner deletes the owner record of an ending allocation (at its slot, or under its
// idempotency key for an allocation from before slots). A record already gone is fine;
// one pointing at another sandbox is left alone.
func (t *tx) dropOwner(table string, s Sandbox) {
	if s.Owner == "" {
		return
	}
	var e expr
	e.set(":sandbox", t.sandboxID)
	t.add(ItemOwner, types.TransactWriteItem{Delete: &types.Delete{
		TableName:                           aws.String(table),
		Key:                                 ownerKeyOf(s),
		ConditionExpression:                 aws.String(e.use("attribute_not_exists(#PK) OR #sandbox_id = :sandbox")),
		ExpressionAttributeNames:            e.names,
		ExpressionAttributeValues:           e.values,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	}})
}

// addToCounter adds n to the live count of the client's counter shard k, on the
// condition room when it is not nil (a claim's: the shard has room under the cap).
func (t *tx) addToCounter(table, client string, k, n int, room *capRoom) {
	var e expr
	u := &types.Update{TableName: aws.String(table), Key: CounterKey(client, k)}
	if room != nil {
		t.counter = room
		u.ConditionExpression = aws.String(room.condition(&e))
		u.ReturnValuesOnConditionCheckFailure = types.ReturnValuesOnConditionCheckFailureAllOld
	}
	e.set(":client", client)
	e.set(":shard", k)
	e.set(":n", n)
	u.UpdateExpression = aws.String(e.use("SET #client = :client, #shard = :shard ADD #live :n"))
	u.ExpressionAttributeNames, u.ExpressionAttributeValues = e.names, e.values
	t.add(ItemCounter, types.TransactWriteItem{Update: u})
}

// returnCounter gives back the counter shard that counts an ending allocation. It has no
// condition: the sandbox's own condition (still allocated, with the entry and the counter
// shard that were read) already makes it happen once per allocation, and a counter an
// operator broke must not block releases (CheckInvariants reports a negative shard).
func (t *tx) returnCounter(table string, s Sandbox) {
	if s.CapShard != nil {
		t.addToCounter(table, s.Client, *s.CapShard, -1, nil)
	}
}

func (t *tx) put(kind, table string, item map[string]types.AttributeValue, cond string) {
	w := &types.Put{TableName: aws.String(table), Item: item}
	if cond != "" {
		var e expr
		w.ConditionExpression = aws.String(e.use(cond))
		w.ExpressionAttributeNames = e.names
		w.ReturnValuesOnConditionCheckFailure = types.ReturnValuesOnConditionCheckFailureAllOld
	}
	t.add(kind, types.TransactWriteItem{Put: w})
}

func (t *tx) add(kind string, item types.TransactWriteItem) {
	t.items = append(t.items, item)
	t.kinds = append(t.kinds, kind)
}

// commit runs the transaction with the history entry of from → to appended, and the
// transition's Change stamped on the sandbox item.
func (p *Pool) commit(ctx context.Context, t *tx, from, to Status, by Actor) error {
	h := p.entry(from, to, by)
	if stamped(to) {
		t.stamp(Change{Op: t.op, At: h.At, ActorKind: h.ActorKind, Actor: h.Actor, RequestID: h.RequestID, Reason: h.Reason})
	}
	t.put("", p.table, p.historyItem(t.sandboxID, h, p.now()), "")
	return p.run(ctx, t)
}

// run executes the transaction as it is: writes that change no status keep no history.
// DynamoDB cancels a transaction it throttles (ThrottlingError in its cancellation
// reasons), and the SDK does not retry a cancelled transaction as it retries a throttled
// request; run does, with the client's retryer's attempts and throttling backoff, so that
// ErrThrottled means what it says: refused even after the SDK's retries.
func (p *Pool) run(ctx context.Context, t *tx) error {
	retryer := p.db.Options().Retryer
	for attempt := 1; ; attempt++ {
		_, err := p.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{
			TransactItems: t.items,
			// The SDK retries a timed-out call; the token makes that retry a no-op instead
			// of a failed condition.
			ClientRequestToken: aws.String(requestToken()),
		})
		err = t.classify(err)
		if !errors.Is(err, errThrottledCancellation) || attempt >= retryer.MaxAttempts() {
			return err
		}
		delay, _ := retryer.RetryDelay(attempt, &types.ThrottlingException{})
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return fmt.Errorf("%w (%w)", err, ctx.Err())
		}
	}
}

// errThrottledCancellation marks an ErrThrottled that is a cancelled transaction, not a
// throttled request the SDK has retried already.
var errThrottledCancellation = errors.New("transaction cancelled for throughput")

func (t *tx) classify(err error) error {
	if err == nil {
		return nil
	}
	var canceled *types.TransactionCanceledException
	if !errors.As(err, &canceled) {
		if api, ok := errors.AsType[smithy.APIError](err); ok && api.ErrorCode() == "ValidationException" {
			return fmt.Errorf("pool: %s %s: %w: %s", t.op, t.sandboxID, ErrItemRefused, api.ErrorMessage())
		}
		return wrapAPIError(t.op, err)
	}
	for i, r := range canceled.CancellationReasons {
		if i >= len(t.kinds) {
			break
		}
		switch aws.ToString(r.Code) {
		case "ConditionalCheckFailed":
			return t.conditionError(t.kinds[i], r.Item)
		case "TransactionConflict":
			return fmt.Errorf("pool: %s %s: %w", t.op, t.sandboxID, ErrContended)
		case "ThrottlingError", "ProvisionedThroughputExceeded":
			return fmt.Errorf("pool: %s %s: %w (%w)", t.op, t.sandboxID, ErrThrottled, errThrottledCancellation)
		case "ValidationError":
			return fmt.Errorf("pool: %s %s: %w: %s", t.op, t.sandboxID, ErrItemRefused, aws.ToString(r.Message))
		}
	}
	return fmt.Errorf("pool: %s %s: %w", t.op, t.sandboxID, err)
}

func (t *tx) conditionError(kind string, item map[string]types.AttributeValue) error {
	ce := &ConditionError{Op: t.op, SandboxID: t.sandboxID, Item: kind}
	switch kind {
	case ItemSandbox:
		if len(item) > 0 {
			var cur Sandbox
			if err := attributevalue.UnmarshalMap(item, &cur); err == nil {
				ce.Current = &cur
			}
		}
		ce.Reason = t.want.explain(ce.Current)
	case ItemOwner:
		if len(item) > 0 {
			var o Owner
			if err := attributevalue.UnmarshalMap(item, &o); err == nil {
				ce.Owner = &o
			}
		}
		ce.Reason = freeSlot{}.explain(ce.Owner)
	case ItemCounter:
		if len(item) > 0 {
			var c CapCounter
			if err := attributevalue.UnmarshalMap(item, &c); err == nil {
				ce.Counter = &c
			}
		}
		ce.Reason = "the counter changed since it was read"
		if t.counter != nil {
			ce.Reason = t.counter.explain(ce.Counter)
		}
	case ItemDrains:
		ce.Reason = "a drain started or ended since the drains were read"
	case ItemReservation:
		if len(item) > 0 {
			var r Reservation
			if err := attributevalue.UnmarshalMap(item, &r); err == nil {
				ce.Reservation = &r
			}
		}
		ce.Reason = "the reservation changed since it was read"
		if t.reservation != nil {
			ce.Reason = t.reservation.explain(ce.Reservation)
		}
	case ItemUUID:
		ce.Reason = "held by another record"
		if len(item) > 0 {
			var u uuidItem
			if err := attributevalue.UnmarshalMap(item, &u); err == nil {
				ce.HeldBy = u.SandboxID
				ce.Reason = fmt.Sprintf("account %s is held by sandbox %s", u.UUID, u.SandboxID)
			}
		}
	}
	return ce
}

func wrapAPIError(op string, err error) error {
	var api smithy.APIError
	if errors.As(err, &api) {
		switch api.ErrorCode() {
		case "ThrottlingException", "ProvisionedThroughputExceededException", "RequestLimitExceeded":
			return fmt.Errorf("pool: %s: %w: %v", op, ErrThrottled, err)
		case "TransactionConflictException", "TransactionInProgressException":
			return fmt.Errorf("pool: %s: %w: %v", op, ErrContended, err)
		}
	}
	return fmt.Errorf("pool: %s: %w", op, err)
}

func requestToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
