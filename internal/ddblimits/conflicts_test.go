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

// Two transactions on one item at once, under a clock that stands still so that neither
// ends: the one that comes second is cancelled with TransactionConflict on that item alone
// (whichever it is), and holds nothing; while the other is in flight, a single-item write
// of the item gets TransactionConflictException and a read of it goes through. When the
// clock reaches the end of its TransactionTime, the one in flight commits.
func TestConcurrentTransactionsOnOneItem(t *testing.T) {
	clk := newClock()
	proxy, db := start(t, ddblimits.Config{Conflicts: true, Now: clk.Now})
	tbl := table(t)
	type outcome struct {
		name string
		err  error
	}
	done := make(chan outcome, 2)
	for name, pks := range map[string][]string{"x": {"x"}, "y,x": {"y", "x"}} {
		go func() {
			_, err := db.TransactWriteItems(ctx, putTx(tbl, pks...))
			done <- outcome{name, err}
		}()
	}
	second := <-done
	if second.name == "x" {
		assertCancelled(t, second.err, ddblimits.ReasonTransactionConflict)
	} else {
		assertCancelled(t, second.err, ddblimits.ReasonNone, ddblimits.ReasonTransactionConflict)
		if err := put(db, tbl, "y", ""); err != nil {
			t.Fatalf("the other item of the cancelled transaction: %v", err)
		}
	}
	var tce *types.TransactionConflictException
	if err := put(db, tbl, "x", ""); !errors.As(err, &tce) {
		t.Fatalf("a write of the item in flight: %v, want TransactionConflictException", err)
	}
	if _, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(tbl), Key: map[string]types.AttributeValue{"PK": s("x"), "SK": s("x")}}); err != nil {
		t.Fatalf("a read of the item in flight: %v", err)
	}
	select {
	case first := <-done:
		t.Fatalf("%s ended before its transaction time: %v", first.name, first.err)
	default:
	}
	clk.Advance(ddblimits.DefaultTransactionTime)
	if first := <-done; first.err != nil {
		t.Fatalf("%s: %v", first.name, first.err)
	}
	if err := put(db, tbl, "x", ""); err != nil {
		t.Fatalf("the item after the commit: %v", err)
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
