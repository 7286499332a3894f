// Package testkit holds the small helpers many test packages share: a settable clock (one
// that can also play a Lambda freeze, Clock.Thaw), a goroutine-safe buffer for logs, and
// source checks for the tables that carry their code.
package testkit
