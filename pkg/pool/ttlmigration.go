package pool

import (
	"context"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

// The tombstone TTL migration. Before the TTL rule (Sandbox.MayExpire) every tombstone
// and its UUID item got the tombstone TTL, so a retired deletion_failed record or a
// delete booked from a 404 would have left the table while its account may still exist
// upstream, and the next sync would have adopted it again. FixTombstoneTTLs finds those
// tombstones and keeps them (KeepTombstone). It reads every StatusIndex shard of both
// tombstone statuses (the filter returns only those with a TTL), and stops for good once
// two complete passes started ttlMigrationSettle apart: a process of the previous version
// still running while the deploy ends (a cleanup run lasts minutes) may bury one more
// tombstone with a TTL behind the first pass, never behind the second.
const (
	migrationPK        = "MIGRATION#tombstone-ttl"
	skMigration        = "STATE"
	ttlMigrationSettle = time.Hour
)

// ttlMigration is the migration's state: one item, written only by the run that holds
// the stale-cleanup job's lease.
type ttlMigration struct {
	// FirstPass is when the first complete pass started (unix seconds); Done that a
	// complete pass started ttlMigrationSettle or more after it.
	FirstPass int64 `dynamodbav:"first_pass_at,omitempty"`
	Done      bool  `dynamodbav:"done,omitempty"`
}

// TTLFix is what one run of FixTombstoneTTLs did.
type TTLFix struct {
	// Read counts the tombstones with a TTL the pass read; Kept those whose TTL it
	// removed (KeepTombstone); Conflicts those that changed under it.
	Read, Kept, Conflicts int
	// Complete: the pass read every shard. Done: the migration is complete;
	// AlreadyDone: it was before this run, which read nothing else.
	Complete, Done, AlreadyDone bool
}

// FixTombstoneTTLs makes one pass of the tombstone TTL migration, unless it is done: it
// keeps every tombstone with a TTL that must not expire, until the pass is complete or
// stop says to leave the rest to the next one.
func (p *Pool) FixTombstoneTTLs(ctx context.Context, stop func() bool) (TTLFix, error) {
	var res TTLFix
	var m ttlMigration
	if _, err := p.getItem(ctx, migrationPK, skMigration, &m); err != nil {
		return res, err
	}
	if m.Done {
		res.Done, res.AlreadyDone = true, true
		return res, nil
	}
	started := p.now().Unix()
	for _, status := range []Status{Deleted, Retired} {
		for shard := range Shards {
			if stop() {
				return res, nil
			}
			in, e := statusQuery(status, shard, 0)
			in.FilterExpression = aws.String(e.use("attribute_exists(#ttl)"))
			for s, err := range decode[Sandbox](p.query(ctx, in, e)) {
				if err != nil {
					return res, err
				}
				res.Read++
				if s.MayExpire() {
					continue
				}
				switch err := p.KeepTombstone(ctx, s); {
				case err == nil:
					res.Kept++
				case LostRace(err):
					res.Conflicts++
				default:
					return res, err
				}
			}
		}
	}
	res.Complete = true
	switch {
	case res.Conflicts > 0:
		return res, nil
	case m.FirstPass == 0:
		m.FirstPass = started
	case started >= m.FirstPass+int64(ttlMigrationSettle/time.Second):
		m.Done, res.Done = true, true
	default:
		return res, nil
	}
	item, err := attributevalue.MarshalMap(m)
	if err != nil {
		return res, err
	}
	for k, v := range key(migrationPK, skMigration) {
		item[k] = v
	}
	if _, err := p.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(p.table), Item: item}); err != nil {
		return res, wrapAPIError("save the tombstone TTL migration", err)
	}
	return res, nil
}
