// Package printable checks text that reaches logs, answers and the console from outside:
// a header's ID, an operator's message.
package printable

import (
	"unicode"
	"unicode/utf8"
)

// Text reports whether s is valid UTF-8 of at most max bytes with only printable
// characters: no control, format or invisible characters that would make two values look
// alike in a log or break a line of it.
func Text(s string, max int) bool {
	if len(s) > max || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}
