// Command coldstart measures what a cold start of each function costs: its bootstrap's
// size per kind of function (app.KindOf), and the time from the start of its process to
// its first request for an event, the init that Lambda reports, split into package init
// and main's composition, on this machine. The Makefile builds the bootstraps with the
// flags of `make build` and passes their folder:
//
//	make bootstrap-sizes   # coldstart sizes -write testdata/bootstrap-sizes.json DIR
//	make cold-start        # coldstart init DIR
//
// docs/benchmark.md ("Cold start") has the figures and how to read them.
package main

import (
	"fmt"
	"os"
)

const usage = `usage:
  coldstart sizes [-write FILE] DIR   sizes of DIR/<goos>/<goarch>/<function> per kind of function
  coldstart init [-runs N] [-each] DIR...  start each DIR/<function> N times as Lambda does; DIR/emptyfunction is each build's baseline
  coldstart part NAME                 (internal) time one part of a composition in this fresh process
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "sizes":
		err = sizes(os.Args[2:])
	case "init":
		err = initTimes(os.Args[2:])
	case "part":
		err = timePart(os.Args[2:])
	default:
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "coldstart:", err)
		os.Exit(1)
	}
}
