package ddblocal_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/sandbox-broker/broker/internal/ddblocal"
)

// TestAPortTakenByAnotherProcessIsNotDynamoDBLocal: when something else already listens
// on the port DynamoDB Local was to bind, Start must not report ready because the port
// answers: java cannot bind it and exits, and Start says the port was taken (with a port
// of its own choosing it then tries another). Only dialling the port, it returned a
// server whose clients talked to the other listener.
func TestAPortTakenByAnotherProcessIsNotDynamoDBLocal(t *testing.T) {
	other, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, err := ddblocal.Start(ctx, ddblocal.Options{Port: other.Addr().(*net.TCPAddr).Port})
	if err == nil {
		srv.Stop()
		t.Fatalf("Start reported DynamoDB Local ready on %s, where another listener answers", srv.Endpoint)
	}
	if !errors.Is(err, ddblocal.ErrPortTaken) {
		t.Fatalf("Start: %v, want the port taken", err)
	}
}
