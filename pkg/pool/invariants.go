package pool

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

// Census is what a full read of the table found.
type Census struct {
	ByStatus map[Status]int
	Owners   int
	History  int
}

// CheckInvariants reads the whole table and checks docs/architecture.md §5 (1)–(3) and the index
// keys: every allocated sandbox has exactly the owner record that points back at it, every
// owner record points at a sandbox allocated to its student under its key, and only
// available sandboxes carry AvailableIndex keys, in the right shard. It is the proof the
// concurrency tests run after each scenario, and an operator's consistency check.
func (p *Pool) CheckInvariants(ctx context.Context) (Census, error) {
	census := Census{ByStatus: map[Status]int{}}
	sandboxes := map[string]Sandbox{}
	avail := map[string]map[string]any{}
	var owners []Owner
	pages := dynamodb.NewScanPaginator(p.db, &dynamodb.ScanInput{TableName: aws.String(p.table), ConsistentRead: aws.Bool(true)})
	for pages.HasMorePages() {
		out, err := pages.NextPage(ctx)
		if err != nil {
			return census, wrapAPIError("scan", err)
		}
		for _, item := range out.Items {
			var k struct{ PK, SK string }
			var s Sandbox
			var o Owner
			var keys map[string]any
			if err := attributevalue.UnmarshalMap(item, &k); err != nil {
				return census, err
			}
			switch {
			case strings.HasPrefix(k.PK, prefixSandbox) && k.SK == skMeta:
				if err := attributevalue.UnmarshalMap(item, &s); err != nil {
					return census, err
				}
				if err := attributevalue.UnmarshalMap(item, &keys); err != nil {
					return census, err
				}
				sandboxes[s.ID] = s
				avail[s.ID] = keys
				census.ByStatus[s.Status]++
			case strings.HasPrefix(k.PK, prefixSandbox) && strings.HasPrefix(k.SK, prefixHistory):
				census.History++
			case strings.HasPrefix(k.PK, prefixOwner):
				if err := attributevalue.UnmarshalMap(item, &o); err != nil {
					return census, err
				}
				owners = append(owners, o)
				census.Owners++
			}
		}
	}

	var problems []error
	bad := func(format string, args ...any) { problems = append(problems, fmt.Errorf(format, args...)) }
	claimedBy := map[string]Owner{}
	for _, o := range owners {
		if prev, dup := claimedBy[o.SandboxID]; dup {
			bad("sandbox %s has two owner records (%q/%q and %q/%q)", o.SandboxID, prev.Student, prev.IdempotencyKey, o.Student, o.IdempotencyKey)
		}
		claimedBy[o.SandboxID] = o
		s, ok := sandboxes[o.SandboxID]
		switch {
		case !ok:
			bad("owner record %q/%q points at missing sandbox %s", o.Student, o.IdempotencyKey, o.SandboxID)
		case s.Status != Allocated:
			bad("owner record %q/%q points at sandbox %s in status %s", o.Student, o.IdempotencyKey, s.ID, s.Status)
		case s.Owner != o.Student || s.IdempotencyKey != o.IdempotencyKey:
			bad("owner record %q/%q points at sandbox %s allocated to %q/%q", o.Student, o.IdempotencyKey, s.ID, s.Owner, s.IdempotencyKey)
		}
	}
	for id, s := range sandboxes {
		if !s.Status.Valid() {
			bad("sandbox %s has unknown status %q", id, s.Status)
		}
		if _, owned := claimedBy[id]; s.Status == Allocated && !owned {
			bad("allocated sandbox %s has no owner record", id)
		}
		_, hasShard := avail[id][AttrAvailShard]
		if s.Status == Available {
			if !hasShard || fmt.Sprint(avail[id][AttrAvailShard]) != fmt.Sprint(shardOf(id)) || avail[id][AttrAvailName] != s.Name {
				bad("available sandbox %s has wrong AvailableIndex keys", id)
			}
		} else if hasShard {
			bad("%s sandbox %s still carries AvailableIndex keys", s.Status, id)
		}
	}
	return census, errors.Join(problems...)
}
