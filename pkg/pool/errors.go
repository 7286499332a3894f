package pool

import (
	"errors"
	"fmt"
)

var (
	// ErrConflict matches every *ConditionError: the item was not in the state the
	// transition requires.
	ErrConflict = errors.New("pool: condition failed")
	// ErrNotFound: the sandbox does not exist.
	ErrNotFound = errors.New("pool: sandbox not found")
	// ErrContended: another transaction held one of the items; retrying is safe.
	ErrContended = errors.New("pool: item busy in another transaction")
	// ErrThrottled: DynamoDB refused for capacity even after the SDK's retries.
	ErrThrottled = errors.New("pool: throttled by DynamoDB")
	// ErrItemRefused: DynamoDB refused a transition for what the item would hold (past its
	// 400 KB item limit, a value it does not take): a fault of that record, which a retry
	// repeats, not of the table.
	ErrItemRefused = errors.New("pool: DynamoDB refused the item")
)

// Which item of a transition failed its condition.
const (
	ItemSandbox = "sandbox"
	ItemOwner   = "owner record"
	ItemUUID    = "account uuid"
	ItemCounter = "client counter"
	// ItemDrains: the drains changed since the write read them (drainGate).
	ItemDrains = "drain state"
	// ItemReservation: a reservation item (Reservation).
	ItemReservation = "reservation"
)

// ConditionError says which condition of which transition failed, with the item as it was
// when DynamoDB refused the write.
type ConditionError struct {
	Op        string
	SandboxID string
	Item      string // ItemSandbox, ItemOwner, ItemUUID, ItemCounter or ItemDrains
	Reason    string
	Current   *Sandbox // the sandbox as it was; nil when it does not exist
	Owner     *Owner   // the record that holds the slot, when Item is ItemOwner
	// Counter is the client counter shard as it was, when Item is ItemCounter (nil when it
	// does not exist).
	Counter *CapCounter
	// Reservation is the reservation as it was, when Item is ItemReservation (nil when it
	// does not exist).
	Reservation *Reservation
	// HeldBy is the sandbox that holds the account uuid, when Item is ItemUUID ("" when
	// unknown).
	HeldBy string
}

func (e *ConditionError) Error() string {
	return fmt.Sprintf("pool: %s %s: %s condition failed: %s", e.Op, e.SandboxID, e.Item, e.Reason)
}

// Is makes errors.Is(err, ErrConflict) hold for every condition failure and
// errors.Is(err, ErrNotFound) when the sandbox is missing.
func (e *ConditionError) Is(target error) bool {
	return target == ErrConflict || (target == ErrNotFound && e.Item == ItemSandbox && e.Current == nil)
}

// LostRace reports whether err says that another writer got to the item first: its
// condition failed (ErrConflict) or another transaction held it (ErrContended). The caller
// re-reads, skips or reports, by its own rules.
func LostRace(err error) bool {
	return errors.Is(err, ErrConflict) || errors.Is(err, ErrContended)
}
