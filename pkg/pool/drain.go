package pool

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Drain stops new allocations of sandboxes whose name prefix it matches (an empty Prefix
// matches every request), while sync, cleanup and expiry go on. Each drain is one item
// under the partition drainPK; the history of starting and ending drains lives beside
// them, as a sandbox's history lives beside it.
type Drain struct {
	Prefix string `dynamodbav:"prefix"`
	Reason string `dynamodbav:"reason,omitempty"`
	// By is the admin client that started it; Since when (unix seconds).
	By    string `dynamodbav:"by,omitempty"`
	Since int64  `dynamodbav:"since"`
}

const (
	drainPK          = "DRAIN"
	prefixDrainEntry = "PREFIX#"
)

// StartDrain writes the drain (a drain of the same prefix is replaced: its reason and
// start change) with a history entry, in one transaction.
func (p *Pool) StartDrain(ctx context.Context, d Drain, by Actor) (Drain, error) {
	d.Since = p.now().Unix()
	item := key(drainPK, prefixDrainEntry+d.Prefix)
	item["prefix"] = av(d.Prefix)
	item["since"] = av(d.Since)
	for name, v := range map[string]string{"reason": d.Reason, "by": d.By} {
		if v != "" {
			item[name] = av(v)
		}
	}
	t := p.newTx("start drain", drainPK, expect{})
	t.put("", p.table, item, "")
	by.Reason = fmt.Sprintf("drain started for prefix %q: %s", d.Prefix, d.Reason)
	t.put("", p.table, p.drainHistoryItem(by), "")
	return d, p.run(ctx, t)
}

// EndDrains ends the drain of prefix, or every drain when all is set, each in a
// transaction of its own with a history entry. It returns the prefixes it ended; ending a
// drain that does not exist ends nothing, and a drain another call ended meanwhile is
// not among them. On an error the drains before it stay ended.
func (p *Pool) EndDrains(ctx context.Context, prefix string, all bool, by Actor) ([]string, error) {
	drains, err := p.Drains(ctx)
	if err != nil {
		return nil, err
	}
	ended := []string{}
	for _, d := range drains {
		if !all && d.Prefix != prefix {
			continue
		}
		t := p.newTx("end drain", drainPK, expect{})
		var e expr
		t.add("", types.TransactWriteItem{Delete: &types.Delete{
			TableName:                aws.String(p.table),
			Key:                      key(drainPK, prefixDrainEntry+d.Prefix),
			ConditionExpression:      aws.String(e.use("attribute_exists(#PK)")),
			ExpressionAttributeNames: e.names,
		}})
		entry := by
		entry.Reason = fmt.Sprintf("drain ended for prefix %q", d.Prefix)
		t.put("", p.table, p.drainHistoryItem(entry), "")
		err := p.run(ctx, t)
		var ce *ConditionError
		switch {
		case errors.As(err, &ce): // ended meanwhile by another call
		case err != nil:
			return ended, err
		default:
			ended = append(ended, d.Prefix)
		}
	}
	return ended, nil
}

// Drains lists the drains in force, strongly consistent: a read that starts after a
// drain was written sees it (allocate's admission relies on this).
func (p *Pool) Drains(ctx context.Context) ([]Drain, error) {
	return collect[Drain](p.itemsUnder(ctx, drainPK, prefixDrainEntry, &dynamodb.QueryInput{ConsistentRead: aws.Bool(true)}))
}

// DrainHistory lists the starts and ends of drains, newest first.
func (p *Pool) DrainHistory(ctx context.Context) ([]HistoryEntry, error) {
	return collect[HistoryEntry](p.itemsUnder(ctx, drainPK, prefixHistory, &dynamodb.QueryInput{ScanIndexForward: aws.Bool(false)}))
}

// drainHistoryItem is a history entry (no status change) in the drains' partition.
func (p *Pool) drainHistoryItem(by Actor) map[string]types.AttributeValue {
	item := p.historyItem("", p.entry("", "", by), p.now())
	item[AttrPK] = av(drainPK)
	return item
}
