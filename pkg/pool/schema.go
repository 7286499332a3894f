package pool

// KeyType is the DynamoDB scalar type of a key attribute.
type KeyType string

const (
	String KeyType = "S"
	Number KeyType = "N"
)

// Key names one key attribute and its type.
type Key struct {
	Name string
	Type KeyType
}

// Index is a global secondary index. It projects all attributes, or, when Include is set,
// only the table's and its own keys plus Include.
type Index struct {
	Name      string
	Partition Key
	Sort      Key
	Include   []string
}

// TableDef is the table layout. The CDK stack and the local stack both build the table
// from Schema, so a key or index name is written once.
type TableDef struct {
	Partition    Key
	Sort         Key
	TTLAttribute string
	Indexes      []Index
	// StreamView is what the table's stream records of each write: both images, so a
	// consumer (pkg/events) tells every transition from the record alone.
	StreamView string
}

// Attribute and index names. The item types' dynamodbav tags name the other attributes;
// the ones here are the keys, the index keys and those the benchmark's upstream strategy
// (cmd/poolbench) writes by hand.
const (
	AttrPK         = "PK"
	AttrSK         = "SK"
	AttrTTL        = "ttl"
	AttrStatus     = "status"
	AttrStatusKey  = "status_key"
	AttrStatusAt   = "status_at"
	AttrAvailShard = "avail_shard"
	AttrAvailName  = "avail_name"
	// AttrOwner and AttrAllocatedAt are Sandbox.Owner and Sandbox.AllocatedAt.
	AttrOwner       = "allocated_to_track"
	AttrAllocatedAt = "allocated_at"

	// StatusIndex lists sandboxes of one status in status_at order. Its partition key is
	// status_key, the status and the sandbox's shard (StatusKey), so a burst of claims
	// spreads its writes under allocated and available over Shards partition keys each
	// instead of one (docs/operations.md); ByStatus merges the shards. status_at is the
	// moment the status next needs attention: expires_at while allocated, next_attempt_at
	// while pending_deletion, the time it went stale or failed, the time it joined the pool
	// while available. The jobs find due work with one key condition per shard.
	StatusIndex = "StatusIndex"
	// AvailableIndex is sparse: only available sandboxes carry its keys. Its partition key
	// spreads them over Shards partitions so a burst of allocations neither hits one hot
	// partition nor reads one hot head; its sort key is the sandbox name, so a name prefix
	// is a begins_with key condition.
	AvailableIndex = "AvailableIndex"
)

// ClaimAttributes are what a claim needs of a candidate besides the keys (Claim): its ID
// and version for the condition, and what the owner record copies. AvailableIndex projects
// only these, so a candidate page reads about a quarter of the bytes of whole items
// (docs/benchmark.md).
var ClaimAttributes = []string{"sandbox_id", "rev", "name", "external_id", "sfdc_account_id"}

// Shards is how many partition keys AvailableIndex spreads the available sandboxes over,
// and StatusIndex each status. A sandbox has one shard in both, shardOf its ID. Eight
// keep every key under an eighth of a partition's write limit at the default peak and
// suffice up to about 8 000 allocations per second (docs/operations.md).
const Shards = 8

// GeneralPartitions are the general pool's AvailableIndex partitions, 0 to Shards−1 (a
// drain's and the reservations' lie above them).
func GeneralPartitions() []int { return partitionsFrom(0) }

// partitionsFrom are Shards AvailableIndex partitions from first: shard k of them is first + k.
func partitionsFrom(first int) []int {
	out := make([]int, Shards)
	for k := range out {
		out[k] = first + k
	}
	return out
}

// Schema is the one definition of the table.
var Schema = TableDef{
	Partition:    Key{AttrPK, String},
	Sort:         Key{AttrSK, String},
	TTLAttribute: AttrTTL,
	Indexes: []Index{
		{Name: StatusIndex, Partition: Key{AttrStatusKey, String}, Sort: Key{AttrStatusAt, Number}},
		{Name: AvailableIndex, Partition: Key{AttrAvailShard, Number}, Sort: Key{AttrAvailName, String}, Include: ClaimAttributes},
	},
	StreamView: StreamNewAndOldImages,
}

// StreamNewAndOldImages is the stream view of Schema (DynamoDB's StreamViewType).
const StreamNewAndOldImages = "NEW_AND_OLD_IMAGES"

// Attributes lists every key attribute of the table and its indexes once, as CreateTable
// and CloudFormation want them.
func (d TableDef) Attributes() []Key {
	seen := map[string]bool{}
	var out []Key
	add := func(k Key) {
		if !seen[k.Name] {
			seen[k.Name] = true
			out = append(out, k)
		}
	}
	add(d.Partition)
	add(d.Sort)
	for _, ix := range d.Indexes {
		add(ix.Partition)
		add(ix.Sort)
	}
	return out
}

// IAM actions the pool's operations need, for least-privilege policies in the CDK stack.
// Transactions are authorised per item, by the item actions they contain.
var (
	// ReadActions serve reads, queries, listings and statistics.
	ReadActions = []string{"dynamodb:GetItem", "dynamodb:Query"}
	// WriteActions add every write a transition makes; a transaction is authorised by the
	// actions of its items, a ConditionCheck item (sync's check of the drain version,
	// drain.go) by ConditionCheckItem.
	WriteActions = append(append([]string{}, ReadActions...),
		"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:ConditionCheckItem")
	// PingActions serve readiness (Pool.Ping), on the table alone.
	PingActions = []string{"dynamodb:DescribeTable"}
	// StreamReadActions are what Lambda's event source mapping reads the table's stream
	// with, with its function's role, on the stream's ARN; and StreamListAction, which
	// acts on "*" only.
	StreamReadActions = []string{"dynamodb:DescribeStream", "dynamodb:GetShardIterator", "dynamodb:GetRecords"}
	StreamListAction  = "dynamodb:ListStreams"
)
