// Package niosxaasfake is an in-process fake of the NIOSXaaS endpoints the cleanup step
// calls: sign-in, account switch, the universal services listing and delete. It issues
// jwts with an exp claim, can revoke them, counts every call, and injects the failures
// of Faults. Tests and the local stack use it over real HTTP on 127.0.0.1.
package niosxaasfake
