// Package testkit holds the small helpers many test packages share: a settable clock (one
// that can also play a Lambda freeze, Clock.Thaw), a goroutine-safe buffer for logs, waits
// bounded by the test's timeout rather than by a guess at the machine's speed, the Lambda
// runtime emulator, and source checks for the tables that carry their code.
package testkit
