package api

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/sandbox-broker/broker/pkg/pool"
)

// prometheusContentType is the Prometheus text exposition format, version 0.0.4.
const prometheusContentType = "text/plain; version=0.0.4; charset=utf-8"

// poolGauges writes the pool's counts as Prometheus gauges: one per status
// (broker_pool_<status>, the upstream names), broker_pool_total, and
// broker_pool_available_by_prefix with a prefix label, in a stable order, and
// broker_pool_draining per drained prefix.
func poolGauges(st pool.Stats, drains []pool.Drain) []byte {
	var b strings.Builder
	// The HELP texts are fixed here, without backslashes or line feeds to escape.
	gauge := func(name, help string) {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s gauge\n", name, help, name)
	}
	for _, s := range pool.Statuses {
		name := "broker_pool_" + string(s)
		gauge(name, "Sandboxes in status "+string(s)+".")
		fmt.Fprintf(&b, "%s %d\n", name, st.ByStatus[s])
	}
	gauge("broker_pool_total", "Live sandboxes in the pool, every status but the tombstones (deleted, retired).")
	fmt.Fprintf(&b, "broker_pool_total %d\n", st.Total)
	gauge("broker_pool_available_by_prefix", "Available sandboxes by name prefix (the name without its trailing number).")
	for _, prefix := range slices.Sorted(maps.Keys(st.AvailableByPrefix)) {
		fmt.Fprintf(&b, "broker_pool_available_by_prefix{prefix=\"%s\"} %d\n", escapeLabel(prefix), st.AvailableByPrefix[prefix])
	}
	gauge("broker_pool_draining", "1 for each name prefix whose allocations are drained (an empty prefix drains all).")
	for _, d := range drains {
		fmt.Fprintf(&b, "broker_pool_draining{prefix=\"%s\"} 1\n", escapeLabel(d.Prefix))
	}
	return []byte(b.String())
}

// labelEscaper escapes a label value as the text format (version 0.0.4) requires:
// backslash, double quote and line feed. Sandbox names come from the CSP, so a prefix may
// hold any of them.
var labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)

func escapeLabel(s string) string { return labelEscaper.Replace(s) }
