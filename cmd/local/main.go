// Command local runs the whole broker on this machine (make run): DynamoDB Local, the fake
// CSP, the background jobs and an API Gateway emulator on 127.0.0.1. SIGINT or SIGTERM
// stops all of it.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/sandbox-broker/broker/pkg/local"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := local.Run(ctx, os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "local stack:", err)
		os.Exit(1)
	}
}
