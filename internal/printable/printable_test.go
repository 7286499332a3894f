package printable

import (
	"strings"
	"testing"
)

func TestText(t *testing.T) {
	for _, tt := range []struct {
		s    string
		max  int
		want bool
	}{
		{"student-0001", 64, true},
		{"Ask your instructor — the lab is full", 64, true},
		{"", 64, true},
		{strings.Repeat("a", 65), 64, false},
		{"tab\there", 64, false},
		{"zero\u200bwidth", 64, false},
		{"new\nline", 64, false},
		{"\xff\xfe", 64, false},
	} {
		if got := Text(tt.s, tt.max); got != tt.want {
			t.Errorf("Text(%q, %d) = %v, want %v", tt.s, tt.max, got, tt.want)
		}
	}
}
