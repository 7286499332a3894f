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
}

// Option adjusts a Pool.
type Option func(*Pool)

// WithClock replaces time.Now for updated_at and history timestamps.
func WithClock(now func() time.Time) Option { return func(p *Pool) { p.now = now } }

// WithHistoryTTL sets how long transition history is kept (default 180 days).
func WithHistoryTTL(d time.Duration) Option { return func(p *Pool) { p.historyTTL = d } }

// WithTombstoneTTL sets how long a deleted or retired record is kept (default 90 days).
// It must not exceed the history TTL (pkg/config checks): a tombstone's history must not
// expire before the tombstone does.
func WithTombstoneTTL(d time.Duration) Option { return func(p *Pool) { p.tombstoneTTL = d } }

// WithPageSize caps the items per query page (0: DynamoDB's 1 MB pages). Tests use it
// to prove that every listing follows LastEvaluatedKey to the end.
func WithPageSize(n int) Option { return func(p *Pool) { p.pageSize = int32(n) } }

// New returns the pool stored in table.
func New(db *dynamodb.Client, table string, opts ...Option) *Pool {
	p := &Pool{db: db, table: table, now: time.Now, historyTTL: 180 * 24 * time.Hour, tombstoneTTL: 90 * 24 * time.Hour}
	for _, o := range opts {
		o(p)
	}
	return p
}

// Table is the table name.
func (p *Pool) Table() string { return p.table }
