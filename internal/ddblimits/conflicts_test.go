package ddblimits_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/sandbox-broker/broker/internal/ddblimits"
)

// assertCancelled checks a TransactionCanceledException and its reason per item.
func assertCancelled(t *testing.T, err error, codes ...string) {
	t.Helper()
	var tce *types.TransactionCanceledException
	if !errors.As(err, &tce) || len(tce.CancellationReasons) != len(codes) {
		t.Fatalf("%v, want TransactionCanceledException with reasons %v", err, codes)
	}
	for i, r := range tce.CancellationReasons {
		if aws.ToString(r.Code) != codes[i] {
			t.Fatalf("reasons %+v, want %v", tce.CancellationReasons, codes)
		}
	}
}

// While a transaction holds an item (the window after DynamoDB Local answered it, here
// frozen by the clock), another transaction touching it is cancelled with
// TransactionConflict for that item only, and a single-item write to it gets
// TransactionConflictException; a read and a write of another item go through, and a
// transaction refused holds nothing. Once the window has passed, the item is free.
func TestTransactionHoldsItsItemsForTheWindow(t *testing.T) {
	clk := newClock()
	proxy, db := start(t, ddblimits.Config{Conflicts: true, ConflictWindow: 20 * time.Millisecond, Now: clk.Now})
	tbl := table(t)
	if _, err := db.TransactWriteItems(ctx, putTx(tbl, "x")); err != nil {
		t.Fatal(err)
	}
	_, err := db.TransactWriteItems(ctx, putTx(tbl, "y", "x"))
	assertCancelled(t, err, ddblimits.ReasonNone, ddblimits.ReasonTransactionConflict)
	var tce *types.TransactionConflictException
	if err := put(db, tbl, "x", ""); !errors.As(err, &tce) {
		t.Fatalf("a write of a held item: %v, want TransactionConflictException", err)
	}
	if _, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(tbl), Key: map[string]types.AttributeValue{"PK": s("x"), "SK": s("x")}}); err != nil {
		t.Fatalf("a read of a held item: %v", err)
	}
	if err := put(db, tbl, "y", ""); err != nil {
		t.Fatalf("the other item of the refused transaction: %v", err)
	}
	clk.Advance(20 * time.Millisecond)
	if _, err := db.TransactWriteItems(ctx, putTx(tbl, "y", "x")); err != nil {
		t.Fatalf("after the window: %v", err)
	}
	if c := proxy.Counts(); c.Total(ddblimits.Conflict) != 2 {
		t.Fatalf("counts:\n%s", c)
	}
}

// A transaction in flight holds its items: while the first one waits on the injected
// latency (the proxy counts it delayed before it waits), a second one on the same item is
// cancelled at once. The first one's client then gives up, which ends its wait.
func TestTransactionInFlightHoldsItsItems(t *testing.T) {
	proxy, db := start(t, ddblimits.Config{Conflicts: true, LatencyRate: 1, Latency: time.Hour})
	tbl := table(t)
	firstCtx, giveUp := context.WithCancel(ctx)
	first := make(chan error, 1)
	go func() {
		_, err := db.TransactWriteItems(firstCtx, putTx(tbl, "x"))
		first <- err
	}()
	for proxy.Counts().Delayed == 0 {
		time.Sleep(time.Millisecond)
	}
	_, err := db.TransactWriteItems(ctx, putTx(tbl, "x"))
	assertCancelled(t, err, ddblimits.ReasonTransactionConflict)
	giveUp()
	if err := <-first; !errors.Is(err, context.Canceled) {
		t.Fatalf("the transaction in flight: %v", err)
	}
}
