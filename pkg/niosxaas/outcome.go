package niosxaas

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Result is the kind of an Outcome.
type Result string

const (
	// Cleaned: the matching services were deleted before the account delete.
	Cleaned Result = "cleaned"
	// NoneToClean: the account had no service with the configured name (or none at all).
	NoneToClean Result = "none_to_clean"
	// Shadow: shadow mode found matching services and deleted none of them.
	Shadow Result = "shadow"
	// Failed: the step did not finish; Reason says why.
	Failed Result = "failed"
)

// Outcome is what one sandbox's step came to.
type Outcome struct {
	Result Result
	// Services is how many matching services were deleted (Cleaned), would have been
	// deleted (Shadow), or were deleted before the step failed (Failed).
	Services int
	// ServiceIDs are the ids of those services, for the sandbox's history.
	ServiceIDs []string
	// Kept is how many listed services did not match the configured name.
	Kept int
	// Reason, for Failed only, is a short printable sentence: never a credential, a
	// token or a response body.
	Reason string
}

// maxReason bounds Reason, which is stored on the sandbox and shown by admin inspect.
const maxReason = 200

func failed(done []string, reason string) Outcome {
	return Outcome{Result: Failed, Services: len(done), ServiceIDs: done, Reason: boundedReason(reason)}
}

// boundedReason keeps printable text only, one space between words, at most maxReason
// runes.
func boundedReason(s string) string {
	var b strings.Builder
	n := 0
	for _, word := range strings.FieldsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) }) {
		if !utf8.ValidString(word) {
			word = strings.ToValidUTF8(word, "")
		}
		if n > 0 {
			word = " " + word
		}
		if n+utf8.RuneCountInString(word) > maxReason {
			b.WriteString("…")
			break
		}
		b.WriteString(word)
		n += utf8.RuneCountInString(word)
	}
	return b.String()
}
