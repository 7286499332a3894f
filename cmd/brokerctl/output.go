package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sandbox-broker/broker/pkg/api/wire"
)

// printJSON prints an answer for --json, or passes err on.
func (x *invocation) printJSON(body []byte, err error) error {
	if err != nil {
		return err
	}
	_, err = x.stdout.Write(indented(body))
	return err
}

// table writes aligned columns (tab-separated cells).
func (x *invocation) table(fill func(w io.Writer)) error {
	w := tabwriter.NewWriter(x.stdout, 0, 0, 2, ' ', 0)
	fill(w)
	return w.Flush()
}

func text(s *string) string {
	if s == nil || *s == "" {
		return "-"
	}
	return *s
}

func unix(t *int64) string {
	if t == nil {
		return "-"
	}
	return time.Unix(*t, 0).UTC().Format(time.RFC3339)
}

func counts(c map[string]int) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(c)) {
		parts = append(parts, fmt.Sprintf("%s %d", k, c[k]))
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ", ")
}

func because(r wire.JobRun) string {
	var s string
	if r.Reason != nil {
		s += "; " + *r.Reason
	}
	if r.Alarm != nil {
		s += "; alarm " + *r.Alarm
	}
	return s
}

// partial says, for a partial bulk answer, the command that deletes the rest.
func partial(res wire.Bulk, rest string) string {
	if res.Status == "partial" {
		return "; more are left: " + rest
	}
	return ""
}

// indented re-indents a JSON answer for --json output.
func indented(body []byte) []byte {
	var b bytes.Buffer
	if err := json.Indent(&b, body, "", "  "); err != nil {
		return body
	}
	b.WriteByte('\n')
	return b.Bytes()
}
