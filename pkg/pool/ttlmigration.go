package pool

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

// The tombstone TTL migration. Before the TTL rule (Sandbox.MayExpire) every tombstone
// and its UUID item got the tombstone TTL, so a retired deletion_failed record or a
// delete booked from a 404 would have left the table while its account may still exist
// upstream, and the next sync would have adopted it again. FixTombstoneTTLs finds those
// tombstones and keeps them (KeepTombstone). It scans the table, since tombstones from
// before the sharded StatusIndex are in no index, and stops for good once two complete
// scans lie ttlMigrationSettle apart: a process of the previous version still running
// while the deploy ends (a cleanup run lasts minutes) may bury one more tombstone with a
// TTL behind the first scan, never behind the second.
const (
	migrationPK        = "MIGRATION#tombstone-ttl"
	skMigration        = "STATE"
	ttlMigrationSettle = time.Hour
)

// ttlMigration is the migration's state: one item, written only by the run that holds
// the stale-cleanup job's lease.
type ttlMigration struct {
	// FirstScan is when the first complete scan started (unix seconds); Done that a
	// complete scan started ttlMigrationSettle or more after it.
	FirstScan int64 `dynamodbav:"first_scan_at,omitempty"`
	Done      bool  `dynamodbav:"done,omitempty"`
	// ScanStarted is when the scan in progress started; CursorPK and CursorSK are the
	// key its last page ended at, where the next run resumes it.
	ScanStarted int64  `dynamodbav:"scan_started_at,omitempty"`
	CursorPK    string `dynamodbav:"cursor_pk,omitempty"`
	CursorSK    string `dynamodbav:"cursor_sk,omitempty"`
}

// TTLFix is what one run of FixTombstoneTTLs did.
type TTLFix struct {
	// Read counts the tombstone records with a TTL the run read; Kept those whose TTL it
	// removed (KeepTombstone); Conflicts those that changed under it.
	Read, Kept, Conflicts int
	// Done: the migration is complete; AlreadyDone: it was before this run, which read
	// nothing.
	Done, AlreadyDone bool
}

// FixTombstoneTTLs continues the tombstone TTL migration: it scans on from where the last
// run stopped, keeps every tombstone with a TTL that must not expire, and stops when the
// scan is complete or stop says so (the cursor is saved after each page).
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
	if m.ScanStarted == 0 {
		m.ScanStarted = p.now().Unix()
	}
	var e expr
	e.set(":meta", skMeta)
	e.set(":deleted", Deleted)
	e.set(":retired", Retired)
	in := &dynamodb.ScanInput{
		TableName:                 aws.String(p.table),
		FilterExpression:          aws.String(e.use("#SK = :meta AND #status IN (:deleted, :retired) AND attribute_exists(#ttl)")),
		ExpressionAttributeNames:  e.names,
		ExpressionAttributeValues: e.values,
	}
	if m.CursorPK != "" {
		in.ExclusiveStartKey = key(m.CursorPK, m.CursorSK)
	}
	if p.pageSize > 0 {
		in.Limit = aws.Int32(p.pageSize)
	}
	for {
		out, err := p.db.Scan(ctx, in)
		if err != nil {
			return res, wrapAPIError("scan tombstones", err)
		}
		for _, item := range out.Items {
			var s Sandbox
			if err := attributevalue.UnmarshalMap(item, &s); err != nil {
				return res, fmt.Errorf("pool: scan tombstones: %w", err)
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
		if len(out.LastEvaluatedKey) == 0 {
			break
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
		if stop() {
			m.CursorPK, m.CursorSK = keyStrings(out.LastEvaluatedKey)
			return res, p.putMigration(ctx, m)
		}
	}
	switch {
	case m.FirstScan == 0:
		m.FirstScan = m.ScanStarted
	case m.ScanStarted >= m.FirstScan+int64(ttlMigrationSettle/time.Second) && res.Conflicts == 0:
		m.Done, res.Done = true, true
	}
	m.ScanStarted, m.CursorPK, m.CursorSK = 0, "", ""
	return res, p.putMigration(ctx, m)
}

func (p *Pool) putMigration(ctx context.Context, m ttlMigration) error {
	item, err := attributevalue.MarshalMap(m)
	if err != nil {
		return err
	}
	for k, v := range key(migrationPK, skMigration) {
		item[k] = v
	}
	if _, err := p.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(p.table), Item: item}); err != nil {
		return wrapAPIError("save the tombstone TTL migration", err)
	}
	return nil
}
