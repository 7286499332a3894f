package broker

import (
	"crypto/rand"
	"encoding/hex"
	"regexp"
)

// IDSyntax says, for error messages, what ValidID accepts.
const IDSyntax = "1-64 characters of A-Z a-z 0-9 - _"

// idSyntax is the one syntax of the identifiers callers hand the broker: sandbox IDs, job
// names and run IDs. CSP IDs are digits; letters, '-' and '_' leave room without letting
// anything odd reach a key or a log line.
var idSyntax = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// ValidID reports whether id has the identifier syntax (IDSyntax).
func ValidID(id string) bool { return idSyntax.MatchString(id) }

// NewID makes a random identifier, valid by ValidID: a job's run ID, a lease's holder.
func NewID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
