package pool

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// The pool's signals per name prefix (docs/operations.md, "Pool signals per prefix"): each
// run of the pool-metrics job writes one item per prefix, all under one partition, so the
// console reads them with one query; the stream carries each write, and a change of the
// signal's reasons is an event (pkg/events).
const (
	signalPK     = "SIGNALS"
	prefixSignal = "PREFIX#"
)

// The reasons a prefix is low.
const (
	BelowLowWater   = "below_low_water"  // fewer available than its low-water mark
	EmptiesTooSoon  = "empties_too_soon" // at the recent rate, empty within the lead time
	neverEmpties    = -1                 // MinutesToEmpty with no recent allocation
	signalCondition = "attribute_not_exists(#pk) OR #at < :at"
)

// PrefixSignal is one prefix's level, rate and forecast as one run of the pool-metrics job
// saw them, and whether it is low and why.
type PrefixSignal struct {
	Prefix    string `dynamodbav:"prefix"`
	Available int    `dynamodbav:"available"`
	// PerMinute is the prefix's allocations per minute over the job's rate window.
	PerMinute float64 `dynamodbav:"per_minute"`
	// MinutesToEmpty is Available / PerMinute: when the prefix runs out at that rate;
	// negative when nothing was allocated in the window.
	MinutesToEmpty float64 `dynamodbav:"minutes_to_empty"`
	LowWater       int     `dynamodbav:"low_water"`
	LeadMinutes    float64 `dynamodbav:"lead_minutes"`
	// Reasons are BelowLowWater and EmptiesTooSoon, those that hold; none when it is fine.
	Reasons []string `dynamodbav:"reasons,omitempty"`
	// At is when the job counted, in unix milliseconds.
	At int64 `dynamodbav:"at"`
}

// NewPrefixSignal is the signal of a prefix with available sandboxes, allocated allocations
// per minute, its low-water mark and lead time in minutes, counted at (unix ms).
func NewPrefixSignal(prefix string, available int, perMinute float64, lowWater int, leadMinutes float64, at int64) PrefixSignal {
	s := PrefixSignal{Prefix: prefix, Available: available, PerMinute: perMinute, MinutesToEmpty: neverEmpties,
		LowWater: lowWater, LeadMinutes: leadMinutes, At: at}
	if perMinute > 0 {
		s.MinutesToEmpty = float64(available) / perMinute
	}
	if available < lowWater {
		s.Reasons = append(s.Reasons, BelowLowWater)
	}
	if s.MinutesToEmpty >= 0 && s.MinutesToEmpty < leadMinutes {
		s.Reasons = append(s.Reasons, EmptiesTooSoon)
	}
	return s
}

// Low says whether any reason holds.
func (s PrefixSignal) Low() bool { return len(s.Reasons) > 0 }

// Empties says whether the prefix empties at the recent rate (MinutesToEmpty is a forecast).
func (s PrefixSignal) Empties() bool { return s.MinutesToEmpty >= 0 }

func signalKey(prefix string) map[string]types.AttributeValue {
	return key(signalPK, prefixSignal+prefix)
}

// IsPrefixSignal says whether the item keyed pk, sk is a prefix's signal.
func IsPrefixSignal(pk, sk string) bool { return pk == signalPK && strings.HasPrefix(sk, prefixSignal) }

// PutPrefixSignal stores s as its prefix's signal, unless a signal counted later is stored
// already (a run that was slow to write must not undo a newer one): then ErrConflict.
func (p *Pool) PutPrefixSignal(ctx context.Context, s PrefixSignal) error {
	item, err := attributevalue.MarshalMap(s)
	if err != nil {
		return err
	}
	for k, v := range signalKey(s.Prefix) {
		item[k] = v
	}
	var e expr
	e.set(":at", s.At)
	_, err = p.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(p.table), Item: item,
		ConditionExpression: aws.String(e.use(signalCondition)), ExpressionAttributeNames: e.names, ExpressionAttributeValues: e.values})
	if _, ok := errors.AsType[*types.ConditionalCheckFailedException](err); ok {
		return fmt.Errorf("pool: signal of prefix %s: %w: a later count is stored", s.Prefix, ErrConflict)
	}
	if err != nil {
		return wrapAPIError("put the signal of prefix "+s.Prefix, err)
	}
	return nil
}

// PrefixSignals are the stored signals, by prefix order.
func (p *Pool) PrefixSignals(ctx context.Context) ([]PrefixSignal, error) {
	return collect[PrefixSignal](p.itemsUnder(ctx, signalPK, prefixSignal, &dynamodb.QueryInput{}))
}

// AllocationsSince counts, by name prefix, the allocated sandboxes allocated at or after
// since (unix seconds): StatusIndex's allocated entries, read projected to name and
// allocation time. A sandbox allocated and released again in between is not counted, so
// the rate is a floor (docs/operations.md).
func (p *Pool) AllocationsSince(ctx context.Context, since int64) (map[string]int, error) {
	out := map[string]int{}
	for shard := range Shards {
		in, e := statusQuery(Allocated, shard, 0)
		e.set(":since", since)
		in.FilterExpression = aws.String(e.use("#allocated_at >= :since"))
		in.ProjectionExpression = aws.String(e.use("#name, #allocated_at"))
		for item, err := range decode[Sandbox](p.query(ctx, in, e)) {
			if err != nil {
				return nil, err
			}
			out[NamePrefix(item.Name)]++
		}
	}
	return out, nil
}
