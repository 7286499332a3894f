package main

import (
	"fmt"
	"strings"
	"time"
)

// The one table the benchmark prints: a row per DynamoDB, scenario, size and strategy.

func print(rows []row) {
	fmt.Printf("\n%-6s %-18s %4s %-9s %7s %4s %4s %9s %9s %9s %6s %7s %8s %8s %18s\n", "limits", "scenario", "B", "model",
		"success", "409", "5xx", "req/alloc", "RCU/alloc", "WCU/alloc", "lost", "refused", "p50", "p99", "cold starts (init)")
	fmt.Println(strings.Repeat("-", 142))
	for _, r := range rows {
		perAlloc, rcu, wcu := "-", "-", "-"
		if r.ok > 0 {
			perAlloc = fmt.Sprintf("%.2f", float64(r.requests)/float64(r.ok))
		}
		if r.ok > 0 && r.rcu >= 0 {
			rcu = fmt.Sprintf("%.2f", r.rcu/float64(r.ok))
			wcu = fmt.Sprintf("%.2f", r.wcu/float64(r.ok))
		}
		lost := "-"
		if r.lost >= 0 {
			lost = fmt.Sprint(r.lost)
		}
		cold := "-"
		switch {
		case r.initTime > 0:
			cold = fmt.Sprintf("%d (%s)", r.coldStarts, r.initTime.Round(100*time.Microsecond))
		case r.coldStarts > 0:
			cold = fmt.Sprintf("%d (new Broker)", r.coldStarts)
		}
		fmt.Printf("%-6s %-18s %4d %-9s %6.1f%% %4d %4d %9s %9s %9s %6s %7d %8s %8s %18s\n", r.limits, r.scenario, r.n, r.strategy,
			100*float64(r.ok)/float64(r.n), r.conflicts, r.failed, perAlloc, rcu, wcu, lost, r.refused, round(r.p50), round(r.p99), cold)
	}
	fmt.Println("\nmodel: instances = broker.Allocate in Lambda's instance model in this process: an idle Broker (warm) or a new one (cold); http = the local stack's")
	fmt.Println("  allocate function in Lambda's instance model (pkg/local), over HTTP; upstream = the upstream strategy (upstream.go).")
	fmt.Println("1–5 s: each student first sleeps a random 1–5 s, as the Instruqt setup script does; p50/p99 from its request on.")
	fmt.Println("reserved, exact: the B students are one lab's, and a reservation of B seats sets the pool of B aside for it (no overflow).")
	fmt.Println("limits: none = DynamoDB Local alone; AWS = behind internal/ddblimits (partition and new-table throughput, transaction conflicts).")
	fmt.Println("req/alloc: DynamoDB HTTP requests (SDK retries included) per successful allocation; lost: cancelled claims.")
	fmt.Println("RCU/WCU per alloc: priced from request kinds and item sizes (capacity.go, index writes included); http rows: the proxy's pricing.")
	fmt.Println("refused: throttles and transaction conflicts the proxy answered.")
}

func round(d time.Duration) string {
	if d >= time.Second {
		return d.Round(10 * time.Millisecond).String()
	}
	return d.Round(100 * time.Microsecond).String()
}
