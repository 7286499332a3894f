package pool

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Lease is a background job's exclusive right to run until ExpiresAt (unix seconds). It
// is one item, PK LEASE#<job>, so a scheduled run and an admin-triggered run of the same
// job never overlap, whichever process they run in (docs/upstream.md D13). The
// enrolment of a capped client's allocations takes one too, under a name of its own
// (docs/architecture.md §5, "The client cap").
type Lease struct {
	Job        string `dynamodbav:"job"`
	Holder     string `dynamodbav:"holder"`
	AcquiredAt int64  `dynamodbav:"acquired_at"`
	ExpiresAt  int64  `dynamodbav:"expires_at"`
}

// ErrLeaseHeld: another run holds the job's lease.
var ErrLeaseHeld = errors.New("pool: job lease held by another run")

// LeaseHeldError says which run holds the lease and until when. errors.Is(err,
// ErrLeaseHeld) holds for it.
type LeaseHeldError struct {
	Current Lease
}

func (e *LeaseHeldError) Error() string {
	return fmt.Sprintf("pool: job %s: lease held by run %s until %s", e.Current.Job, e.Current.Holder,
		time.Unix(e.Current.ExpiresAt, 0).UTC().Format(time.RFC3339))
}

func (e *LeaseHeldError) Is(target error) bool { return target == ErrLeaseHeld }

const (
	prefixLease = "LEASE#"
	skLease     = "LEASE"
)

// AcquireLease takes the job's lease for holder for ttl: one conditional put that succeeds
// only when no lease exists or the existing one has expired. A lease held by another run
// returns a *LeaseHeldError. A lease already held by holder is this run's own: the SDK
// retried a put whose first attempt landed but whose answer was lost, and the retry then
// fails the condition on the item the first attempt wrote. It is returned as acquired.
func (p *Pool) AcquireLease(ctx context.Context, job, holder string, ttl time.Duration) (Lease, error) {
	now := p.now()
	l := Lease{Job: job, Holder: holder, AcquiredAt: now.Unix(), ExpiresAt: now.Add(ttl).Unix()}
	item, err := attributevalue.MarshalMap(l)
	if err != nil {
		return Lease{}, err
	}
	for k, v := range key(prefixLease+job, skLease) {
		item[k] = v
	}
	var e expr
	e.set(":now", now.Unix())
	_, err = p.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                           aws.String(p.table),
		Item:                                item,
		ConditionExpression:                 aws.String(e.use("attribute_not_exists(#PK) OR #expires_at < :now")),
		ExpressionAttributeNames:            e.names,
		ExpressionAttributeValues:           e.values,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	var failed *types.ConditionalCheckFailedException
	if errors.As(err, &failed) {
		var cur Lease
		if err := attributevalue.UnmarshalMap(failed.Item, &cur); err != nil {
			return Lease{}, fmt.Errorf("pool: decode lease of job %s: %w", job, err)
		}
		if cur.Holder == holder {
			return cur, nil
		}
		return Lease{}, &LeaseHeldError{Current: cur}
	}
	if err != nil {
		return Lease{}, wrapAPIError("acquire lease "+job, err)
	}
	return l, nil
}

// ReleaseLease gives the lease back, only if l's holder still holds it: a run whose lease
// expired and was taken over must not free its successor's. A lease already gone is
// released; one now held by another run returns a *LeaseHeldError.
func (p *Pool) ReleaseLease(ctx context.Context, l Lease) error {
	var e expr
	e.set(":holder", l.Holder)
	_, err := p.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName:                           aws.String(p.table),
		Key:                                 key(prefixLease+l.Job, skLease),
		ConditionExpression:                 aws.String(e.use("#holder = :holder")),
		ExpressionAttributeNames:            e.names,
		ExpressionAttributeValues:           e.values,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	var failed *types.ConditionalCheckFailedException
	if errors.As(err, &failed) {
		if len(failed.Item) == 0 {
			return nil
		}
		var cur Lease
		if err := attributevalue.UnmarshalMap(failed.Item, &cur); err != nil {
			return fmt.Errorf("pool: decode lease of job %s: %w", l.Job, err)
		}
		return &LeaseHeldError{Current: cur}
	}
	if err != nil {
		return wrapAPIError("release lease "+l.Job, err)
	}
	return nil
}

// CurrentLease reads the job's lease; found is false when no run holds one, including a
// lease whose holder died and whose expiry has passed.
func (p *Pool) CurrentLease(ctx context.Context, job string) (l Lease, found bool, err error) {
	found, err = p.getItem(ctx, prefixLease+job, skLease, &l)
	if err != nil || !found || l.ExpiresAt <= p.now().Unix() {
		return Lease{}, false, err
	}
	return l, true, nil
}
