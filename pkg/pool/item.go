package pool

import (
	"hash/fnv"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Status is where a sandbox is in its lifecycle (docs/architecture.md §4).
type Status string

const (
	Available       Status = "available"
	Allocated       Status = "allocated"
	PendingDeletion Status = "pending_deletion"
	Stale           Status = "stale"
	DeletionFailed  Status = "deletion_failed"
	// Deleted is the tombstone of an account the CSP confirmed deleted.
	Deleted Status = "deleted"
	// Retired is the tombstone of a record an operator (or auto-delete-stale) took out
	// of the pool without a CSP delete.
	Retired Status = "retired"

	// Removed is not a stored status: it is the to_status of the history entry of a
	// record that was deleted outright (a never-allocated stale record).
	Removed Status = "removed"
)

// Statuses lists every status a stored sandbox can have, live ones first.
var Statuses = append(append([]Status{}, LiveStatuses...), Deleted, Retired)

// LiveStatuses are the statuses the jobs manage. Tombstones are not among them: no job
// reads them.
var LiveStatuses = []Status{Available, Allocated, PendingDeletion, Stale, DeletionFailed}

// Tombstone reports whether s is a tombstone: a record kept (with its history) only so
// the account is never adopted again (docs/architecture.md §4), for good or until its
// TTL (Sandbox.MayExpire).
func (s Status) Tombstone() bool { return s == Deleted || s == Retired }

// DeleteAnswer is what the CSP answered the delete that made a record a deleted
// tombstone.
type DeleteAnswer string

const (
	// DeleteConfirmed: 200 or 204, the CSP deleted the account (MarkDeleted).
	DeleteConfirmed DeleteAnswer = "confirmed"
	// DeleteNotFound: 404, once the cleanup run's probe proved the endpoint right
	// (MarkNotFound). The account is most likely gone already; but a CSP that answers 404
	// for an account it still holds leaves it upstream, with the last student's users in
	// it, so its tombstone must not expire.
	DeleteNotFound DeleteAnswer = "not_found"
)

// Valid reports whether s is a known status.
func (s Status) Valid() bool {
	for _, v := range Statuses {
		if s == v {
			return true
		}
	}
	return false
}

// Sandbox is one pool item. Times are unix seconds, as on the wire.
type Sandbox struct {
	ID         string `dynamodbav:"sandbox_id"`
	Name       string `dynamodbav:"name"`
	ExternalID string `dynamodbav:"external_id"`
	// AccountUUID is AccountUUID(ExternalID), written with the UUID item that makes it
	// unique (uuid.go). Empty on records created before UUID items existed.
	AccountUUID   string `dynamodbav:"account_uuid,omitempty"`
	SFDCAccountID string `dynamodbav:"sfdc_account_id,omitempty"`
	CreatedAt     int64  `dynamodbav:"created_at,omitempty"`

	Status Status `dynamodbav:"status"`
	// StatusAt orders StatusIndex (see its comment).
	StatusAt int64 `dynamodbav:"status_at"`
	// Rev grows by one on every write, so a write can require the version it read.
	Rev int64 `dynamodbav:"rev"`

	Owner          string `dynamodbav:"allocated_to_track,omitempty"`
	IdempotencyKey string `dynamodbav:"idempotency_key,omitempty"`
	TrackName      string `dynamodbav:"track_name,omitempty"`
	Client         string `dynamodbav:"client,omitempty"`
	AllocatedAt    int64  `dynamodbav:"allocated_at,omitempty"`
	ExpiresAt      int64  `dynamodbav:"expires_at,omitempty"`
	// Profile, ExtensionSeconds and MaxExpiresAt are the lab's terms the allocation was
	// made under (Claim.Stamps); empty when it follows the configuration.
	Profile          string `dynamodbav:"profile,omitempty"`
	ExtensionSeconds int64  `dynamodbav:"extension_seconds,omitempty"`
	MaxExpiresAt     int64  `dynamodbav:"max_expires_at,omitempty"`
	// Reservation is the reservation an available sandbox is set aside for (SetAside), and
	// on a sandbox claimed from a set-aside, the reservation whose seat it took; it stays
	// through the sandbox's later statuses, so the seats used are counted from records.
	Reservation string `dynamodbav:"reservation,omitempty"`
	// OwnerSlot is the slot of the owner record of the live allocation (OwnerKey); nil on
	// every other status, and on allocations claimed before slots existed, whose owner
	// record is keyed by the idempotency key (LegacyOwnerKey).
	OwnerSlot *int `dynamodbav:"owner_slot,omitempty"`
	// CapShard is the client counter shard that counts the live allocation (CounterKey):
	// the one its claim took, or the one it was enrolled in (CountAllocation); nil while
	// no counter counts it, and on every other status.
	CapShard *int `dynamodbav:"cap_shard,omitempty"`
	// Allocation is the history entry of the claim while the sandbox is allocated; the
	// transaction that ends the allocation moves it into the history (HistoryEntry). Nil
	// on every other status, and on allocations claimed before it existed (their entry is
	// in the history already).
	Allocation *HistoryEntry `dynamodbav:"allocation,omitempty"`

	// DeleteAnswer is what the CSP answered the delete of a deleted tombstone; empty on
	// every other status, and on tombstones buried before it was recorded.
	DeleteAnswer DeleteAnswer `dynamodbav:"delete_answer,omitempty"`

	DeletionRequestedAt int64  `dynamodbav:"deletion_requested_at,omitempty"`
	Attempts            int    `dynamodbav:"attempts,omitempty"`
	NextAttemptAt       int64  `dynamodbav:"next_attempt_at,omitempty"`
	LastError           string `dynamodbav:"last_error,omitempty"`

	// The outcome of cleanup's NIOSXaaS pre-delete step (RecordNIOSXaaS): one of the
	// NIOSXaaS* values, the services it counted, the failure's reason, when it was
	// recorded, and how many times the step failed.
	NIOSXaaSOutcome  string `dynamodbav:"niosxaas_outcome,omitempty"`
	NIOSXaaSServices int    `dynamodbav:"niosxaas_services,omitempty"`
	NIOSXaaSReason   string `dynamodbav:"niosxaas_reason,omitempty"`
	NIOSXaaSAt       int64  `dynamodbav:"niosxaas_at,omitempty"`
	NIOSXaaSFailures int    `dynamodbav:"niosxaas_failures,omitempty"`

	MissedSyncs int   `dynamodbav:"missed_syncs,omitempty"`
	StaleSince  int64 `dynamodbav:"stale_since,omitempty"`
	LastSynced  int64 `dynamodbav:"last_synced,omitempty"`
	UpdatedAt   int64 `dynamodbav:"updated_at,omitempty"`
	// TTL is when DynamoDB may drop a tombstone (unix seconds); 0 on live records and on
	// tombstones that must never expire (MayExpire).
	TTL int64 `dynamodbav:"ttl,omitempty"`
}

// MayExpire reports whether tombstone s may leave the table at its TTL
// (docs/architecture.md §4): only when its account cannot be in the CSP any more, or
// was never handed out. That is a delete the CSP confirmed, or a retired record that was
// never allocated (retired from stale). Whatever else blocks the re-adoption of an
// ever-allocated account is kept for good: a retired deletion_failed record, a delete
// booked from a 404, and a deleted record from before the answer was recorded (it may
// be either).
func (s Sandbox) MayExpire() bool {
	switch s.Status {
	case Deleted:
		return s.DeleteAnswer == DeleteConfirmed
	case Retired:
		return !s.EverAllocated()
	}
	return false
}

// EverAllocated reports whether the record bears a trace of an allocation: the claim's
// allocated_at stays on the record for good, as does the deletion request of the
// release or expiry that ended it.
func (s Sandbox) EverAllocated() bool {
	return s.AllocatedAt != 0 || s.Allocation != nil || s.DeletionRequestedAt != 0
}

// Holder is who an allocation belongs to: a student as one client (the token's name)
// knows it. Two clients that send the same student ID are two holders.
type Holder struct {
	Client  string
	Student string
}

// Holds reports whether s is allocated to h (or was, until it is deleted).
func (h Holder) Holds(s Sandbox) bool {
	return s.Owner != "" && s.Owner == h.Student && s.Client == h.Client
}

// Owner is the record that ties one of a holder's slots to its live allocation, under
// its idempotency key (docs/architecture.md §5). It is written in the claim transaction
// and deleted in the transaction that ends the allocation, and it carries what a replayed
// allocate returns, so a replay needs no second read.
type Owner struct {
	Student        string `dynamodbav:"student"`
	IdempotencyKey string `dynamodbav:"idempotency_key"`
	// Slot is the record's slot (OwnerKey); 0 on a record from before slots existed.
	Slot          int    `dynamodbav:"slot,omitempty"`
	SandboxID     string `dynamodbav:"sandbox_id"`
	Name          string `dynamodbav:"name"`
	ExternalID    string `dynamodbav:"external_id"`
	SFDCAccountID string `dynamodbav:"sfdc_account_id,omitempty"`
	TrackName     string `dynamodbav:"track_name,omitempty"`
	Client        string `dynamodbav:"client,omitempty"`
	AllocatedAt   int64  `dynamodbav:"allocated_at"`
	ExpiresAt     int64  `dynamodbav:"expires_at"`
}

// Account is what sync knows about a sandbox from the CSP.
type Account struct {
	ID            string
	Name          string
	ExternalID    string
	SFDCAccountID string
	CreatedAt     int64
}

// Actor says who caused a transition; it is recorded in the sandbox's history.
type Actor struct {
	Kind      string // "student", "client", "job" or "admin"
	Name      string
	RequestID string
	Reason    string
}

const (
	prefixSandbox = "SBX#"
	prefixOwner   = "OWNER#"
	skMeta        = "META"
	prefixSlot    = "SLOT#"
	// prefixIdem is the sort key of an owner record from before slots existed.
	prefixIdem    = "IDEM#"
	prefixHistory = "HIST#"
	prefixUUID    = "UUID#"
	skUUID        = "UUID"
	prefixCap     = "CAP#"
	skLive        = "LIVE"
	// ownerSep separates the client from the student in an owner record's key. A client
	// is a token name, which cannot contain it (pkg/auth's tokenName; the local stack's
	// names are constants of that syntax), so the first one after the prefix ends the
	// client whatever the student ID holds.
	ownerSep = "#"
)

// AccountUUID is the CSP account's uuid: the last path segment of its external ID
// ("identity/accounts/<uuid>"), lower-cased. It is the account's identity across
// listings, whatever sandbox ID (csp_id, or the uuid itself) a listing shows it under and
// however the CSP spells the hex digits; csp.Account.UUID is the same value for a listed
// account (a broker test holds the two to it).
func AccountUUID(externalID string) string {
	return strings.ToLower(externalID[strings.LastIndexByte(externalID, '/')+1:])
}

func sandboxPK(id string) string { return prefixSandbox + id }

// SandboxKey is the primary key of a sandbox's item.
func SandboxKey(id string) map[string]types.AttributeValue { return key(sandboxPK(id), skMeta) }

// OwnerKey is the primary key of a holder's owner record in slot.
func OwnerKey(h Holder, slot int) map[string]types.AttributeValue {
	return key(ownerPK(h), slotSK(slot))
}

// LegacyOwnerKey is the key of an owner record written before slots existed: one per
// (student, idempotency key), whatever the client.
func LegacyOwnerKey(student, idempotencyKey string) map[string]types.AttributeValue {
	return key(prefixOwner+student, prefixIdem+idempotencyKey)
}

func ownerPK(h Holder) string { return prefixOwner + h.Client + ownerSep + h.Student }

func slotSK(slot int) string { return prefixSlot + strconv.Itoa(slot) }

// ownerKeyOf is the key of the owner record of s's live allocation.
func ownerKeyOf(s Sandbox) map[string]types.AttributeValue {
	if s.OwnerSlot == nil {
		return LegacyOwnerKey(s.Owner, s.IdempotencyKey)
	}
	return OwnerKey(Holder{Client: s.Client, Student: s.Owner}, *s.OwnerSlot)
}

// recordItem is the whole stored item of sandbox record s: its key, its attributes, its
// StatusIndex partition key and, while available, its AvailableIndex keys in availShard.
func recordItem(s Sandbox, availShard int) (map[string]types.AttributeValue, error) {
	item, err := attributevalue.MarshalMap(s)
	if err != nil {
		return nil, err
	}
	for k, v := range key(sandboxPK(s.ID), skMeta) {
		item[k] = v
	}
	item[AttrStatusKey] = av(StatusKey(s.Status, s.ID))
	if s.Status == Available {
		item[AttrAvailShard] = av(availShard)
		item[AttrAvailName] = av(s.Name)
	}
	return item, nil
}

// StatusKey is the StatusIndex partition key of a sandbox of this status: the status and
// the sandbox's shard ("allocated#5"). setStatus writes it with every status.
func StatusKey(status Status, id string) string { return StatusShardKey(status, shardOf(id)) }

// StatusShardKey is the StatusIndex partition key of one shard of a status.
func StatusShardKey(status Status, shard int) string {
	return string(status) + "#" + strconv.Itoa(shard)
}

// shardOf spreads sandboxes evenly and stably over the shards of both indexes.
func shardOf(id string) int {
	h := fnv.New32a()
	h.Write([]byte(id))
	return int(h.Sum32() % Shards)
}
