package main

import (
	"fmt"
	"strings"
	"time"
)

// The one table the benchmark prints: a row per scenario, size and strategy.

func print(rows []row) {
	fmt.Printf("\n%-16s %5s %-9s %8s %10s %9s %9s %9s %9s %8s %11s\n", "scenario", "B", "strategy", "success", "req/alloc", "RCU/alloc", "WCU/alloc", "p50", "p99", "wall", "p99 ratio")
	fmt.Println(strings.Repeat("-", 114))
	engineP99 := map[string]time.Duration{}
	for _, r := range rows {
		if r.strategy == "engine" {
			engineP99[fmt.Sprint(r.scenario, r.n)] = r.p99
		}
	}
	for _, r := range rows {
		perAlloc, rcu, wcu := "-", "-", "-"
		if r.ok > 0 {
			perAlloc = fmt.Sprintf("%.2f", float64(r.requests)/float64(r.ok))
			rcu = fmt.Sprintf("%.2f", r.rcu/float64(r.ok))
			wcu = fmt.Sprintf("%.2f", r.wcu/float64(r.ok))
		}
		ratio := ""
		if p99, ok := engineP99[fmt.Sprint(r.scenario, r.n)]; ok && r.strategy != "engine" {
			ratio = fmt.Sprintf("%.1fx", float64(r.p99)/float64(p99))
		}
		fmt.Printf("%-16s %5d %-9s %7.1f%% %10s %9s %9s %9s %9s %8s %11s\n", r.scenario, r.n, r.strategy,
			100*float64(r.ok)/float64(r.n), perAlloc, rcu, wcu, round(r.p50), round(r.p99), round(r.wall), ratio)
	}
	fmt.Println("\nreq/alloc: DynamoDB HTTP requests (SDK retries included) per successful allocation.")
	fmt.Println("RCU/WCU per alloc: capacity units priced from request kinds and item sizes (capacity.go), index writes included.")
	fmt.Println("p99 ratio: the row's p99 / the engine's p99 in the same scenario.")
}

func round(d time.Duration) string {
	if d >= time.Second {
		return d.Round(10 * time.Millisecond).String()
	}
	return d.Round(100 * time.Microsecond).String()
}
