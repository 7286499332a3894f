package pool

import (
	"context"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

// OwnerRecord finds the holder's owner record under an idempotency key, strongly
// consistent: one query of the holder's slots.
func (p *Pool) OwnerRecord(ctx context.Context, h Holder, idempotencyKey string) (Owner, bool, error) {
	owners, err := p.OwnerRecords(ctx, h)
	if err != nil {
		return Owner{}, false, err
	}
	for _, o := range owners {
		if o.IdempotencyKey == idempotencyKey {
			return o, true, nil
		}
	}
	return Owner{}, false, nil
}

// OwnerRecords lists every live allocation of a holder, one per slot in slot order
// (records from before slots are not among them: they are keyed by the student alone).
func (p *Pool) OwnerRecords(ctx context.Context, h Holder) ([]Owner, error) {
	owners, err := collect[Owner](p.itemsUnder(ctx, ownerPK(h), prefixSlot, &dynamodb.QueryInput{ConsistentRead: aws.Bool(true)}))
	slices.SortFunc(owners, func(a, b Owner) int { return a.Slot - b.Slot })
	return owners, err
}
