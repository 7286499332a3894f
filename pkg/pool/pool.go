package pool

import (
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

// Pool is the sandbox pool in one DynamoDB table.
type Pool struct {
	db           *dynamodb.Client
	table        string
	now          func() time.Time
	historyTTL   time.Duration
	tombstoneTTL time.Duration
	pageSize     int32
	gates        gateCache
}

// Options adjust a Pool; the zero value gives the defaults.
type Options struct {
	// Now is the clock for updated_at, status_at and history timestamps (nil: time.Now).
	// Everything built on the pool reads the same clock (Pool.Now): the broker, the jobs.
	Now func() time.Time
	// HistoryTTL is how long transition history is kept (0: 180 days).
	HistoryTTL time.Duration
	// TombstoneTTL is how long a deleted or retired record is kept (0: 90 days). It must
	// not exceed the history TTL (pkg/config checks): a tombstone's history must not
	// expire before the tombstone does.
	TombstoneTTL time.Duration
	// PageSize caps the items per query page (0: DynamoDB's 1 MB pages). Tests use it to
	// prove that every listing follows LastEvaluatedKey to the end.
	PageSize int
}

// New returns the pool stored in table, read and written through db. A Pool holds no
// state of the table: it is safe for concurrent use, and any number of Pools, in any
// number of processes, may share one table (the package doc, "Calling a transition").
func New(db *dynamodb.Client, table string, o Options) *Pool {
	p := &Pool{db: db, table: table, now: o.Now, historyTTL: o.HistoryTTL, tombstoneTTL: o.TombstoneTTL, pageSize: int32(o.PageSize)}
	if p.now == nil {
		p.now = time.Now
	}
	if p.historyTTL == 0 {
		p.historyTTL = 180 * 24 * time.Hour
	}
	if p.tombstoneTTL == 0 {
		p.tombstoneTTL = 90 * 24 * time.Hour
	}
	return p
}

// Now is the pool's clock.
func (p *Pool) Now() time.Time { return p.now() }

// Table is the table name.
func (p *Pool) Table() string { return p.table }
