package pool

import (
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Change is the transition that wrote a sandbox item's current version: its operation, who
// made it, why and when. It rides on the item (attribute change, read by ChangeOf), not on Sandbox, which stays comparable, so that the table stream's
// record of that write says all of it by itself (pkg/events reads it from the new image:
// a release from an expiry, which operator retried a deletion); the history entry of the
// same transaction is another item, and the stream orders records per item only.
//
// commit stamps it on every transition that keeps history, except sync's: a transition
// to available or stale is always the sync job's, and an available sandbox stays as small
// as the claim's write cost wants it (docs/benchmark.md). The claim's change is its
// allocation entry (Sandbox.Allocation).
type Change struct {
	// Op is the transition's operation: the op of its transaction (OpRelease, OpExpire, …).
	Op        string `dynamodbav:"op"`
	At        int64  `dynamodbav:"at_ms"`
	ActorKind string `dynamodbav:"actor_kind,omitempty"`
	Actor     string `dynamodbav:"actor,omitempty"`
	RequestID string `dynamodbav:"request_id,omitempty"`
	Reason    string `dynamodbav:"reason,omitempty"`
}

// The ops a Change names, one per stamped transition (the transaction's op).
const (
	OpRelease             = "release"
	OpExpire              = "expire"
	OpExtend              = "extend"
	OpRecordDeleteFailure = "record delete failure"
	OpRecordNIOSXaaS      = "record niosxaas"
	OpFailDeletion        = "fail deletion"
	OpRetryDeletion       = "retry deletion"
	OpMarkDeleted         = "mark deleted"
	OpRetire              = "retire"
)

// stamped reports whether a transition to status to carries its Change (see Change).
func stamped(to Status) bool { return to != Available && to != Stale }

// stamp sets the sandbox item's change attribute to c in t's update of it; a transition
// that puts or deletes the whole item has none to stamp.
func (t *tx) stamp(c Change) {
	v, err := attributevalue.Marshal(c)
	if err != nil { // strings and numbers only
		panic(fmt.Sprintf("pool: marshal change: %v", err))
	}
	for i, kind := range t.kinds {
		u := t.items[i].Update
		if kind != ItemSandbox || u == nil {
			continue
		}
		if u.ExpressionAttributeNames == nil {
			u.ExpressionAttributeNames = map[string]string{}
		}
		if u.ExpressionAttributeValues == nil {
			u.ExpressionAttributeValues = map[string]types.AttributeValue{}
		}
		u.ExpressionAttributeNames["#change"] = "change"
		u.ExpressionAttributeValues[":change"] = v
		// An update expression has one SET clause: the change joins it, or starts one.
		set := "SET #change = :change"
		if rest, ok := strings.CutPrefix(*u.UpdateExpression, "SET "); ok {
			set += ", " + rest
		} else {
			set += " " + *u.UpdateExpression
		}
		u.UpdateExpression = &set
	}
}

// RecordOf says what a stream record's keys (PK, SK) name: a sandbox record (its ID), a
// drain history entry (DrainEntry), or neither (an owner record, a history entry, a
// counter, a lease, …), whose writes a stream consumer passes over.
func RecordOf(pk, sk string) (sandboxID string, drainEntry bool) {
	if id, ok := strings.CutPrefix(pk, prefixSandbox); ok && sk == skMeta {
		return id, false
	}
	return "", pk == drainPK && strings.HasPrefix(sk, prefixHistory)
}

// ChangeOf is the change stamped on a sandbox record's item (a stream image): nil when the
// item carries none (a sandbox sync last moved, a record from before changes).
func ChangeOf(item map[string]types.AttributeValue) (*Change, error) {
	av, ok := item["change"]
	if !ok {
		return nil, nil
	}
	var c Change
	if err := attributevalue.Unmarshal(av, &c); err != nil {
		return nil, fmt.Errorf("pool: the record's change: %w", err)
	}
	return &c, nil
}
