// Package pool owns the DynamoDB table behind the broker: its keys and indexes, the item
// types, every state transition of a sandbox (each one conditional write or transaction on
// the state it expects) and the queries the use cases need. No other package builds a
// DynamoDB expression.
package pool
