package ddblimits_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/sandbox-broker/broker/internal/ddblimits"
	"github.com/sandbox-broker/broker/pkg/broker"
	"github.com/sandbox-broker/broker/pkg/config"
	"github.com/sandbox-broker/broker/pkg/pool"
	"github.com/sandbox-broker/broker/pkg/pool/pooltest"
)

// reported sums the write capacity DynamoDB Local reports, per table and index, for every
// write whose input it asks to report it (ReturnConsumedCapacity INDEXES). For the table's
// share of a transaction it takes AWS's rule instead, 2 units per item of at most 1 KB (every
// item of the broker is), because DynamoDB Local reports less: 2 units for a transaction
// of three small items, where AWS bills 6 (developer guide, "Capacity management for
// transactions"); and it reports nothing for a cancelled transaction, which AWS bills
// all the same (the table only: nothing was written to an index).
type reported struct {
	mu    sync.Mutex
	units map[string]float64
}

func (r *reported) add(cc types.ConsumedCapacity, txItems int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	table := aws.ToString(cc.TableName)
	switch {
	case txItems > 0:
		r.units[table+" write"] += 2 * float64(txItems)
	case cc.Table != nil:
		r.units[table+" write"] += aws.ToFloat64(cc.Table.CapacityUnits)
	}
	for ix, c := range cc.GlobalSecondaryIndexes {
		r.units[table+"/"+ix+" write"] += aws.ToFloat64(c.CapacityUnits)
	}
}

func (r *reported) middleware() func(*middleware.Stack) error {
	return func(stack *middleware.Stack) error {
		return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("reported", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			switch v := in.Parameters.(type) {
			case *dynamodb.PutItemInput:
				v.ReturnConsumedCapacity = types.ReturnConsumedCapacityIndexes
			case *dynamodb.UpdateItemInput:
				v.ReturnConsumedCapacity = types.ReturnConsumedCapacityIndexes
			case *dynamodb.DeleteItemInput:
				v.ReturnConsumedCapacity = types.ReturnConsumedCapacityIndexes
			case *dynamodb.TransactWriteItemsInput:
				v.ReturnConsumedCapacity = types.ReturnConsumedCapacityIndexes
			}
			out, md, err := next.HandleInitialize(ctx, in)
			switch v := out.Result.(type) {
			case *dynamodb.PutItemOutput:
				r.add(*v.ConsumedCapacity, 0)
			case *dynamodb.UpdateItemOutput:
				r.add(*v.ConsumedCapacity, 0)
			case *dynamodb.DeleteItemOutput:
				r.add(*v.ConsumedCapacity, 0)
			case *dynamodb.TransactWriteItemsOutput:
				items := len(in.Parameters.(*dynamodb.TransactWriteItemsInput).TransactItems)
				for _, cc := range v.ConsumedCapacity { // one table: all its items
					r.add(cc, items)
				}
			}
			var cancelled *types.TransactionCanceledException
			if tx, ok := in.Parameters.(*dynamodb.TransactWriteItemsInput); ok && errors.As(err, &cancelled) {
				r.add(types.ConsumedCapacity{TableName: tableOf(tx.TransactItems[0])}, len(tx.TransactItems))
			}
			return out, md, err
		}), middleware.Before)
	}
}

func tableOf(w types.TransactWriteItem) *string {
	switch {
	case w.Put != nil:
		return w.Put.TableName
	case w.Update != nil:
		return w.Update.TableName
	case w.Delete != nil:
		return w.Delete.TableName
	}
	return w.ConditionCheck.TableName
}

// The proxy bills the broker's writes as DynamoDB Local reports them, table and each index:
// the sync's creates, allocations by a capped client (sandbox, owner record, counter shard,
// and the index entries that move) and releases, one at a time and below the cap. A claim
// that fails (the broker's dealer may offer a sandbox released since its page was read)
// is billed as AWS bills it.
func TestBillsTheBrokersWritesAsDynamoDBLocalReportsThem(t *testing.T) {
	rep := &reported{units: map[string]float64{}}
	p, proxy := pooltest.NewBehindLimits(t, ddblimits.AsAWS(), pool.Options{}, rep.middleware())
	sync := pool.Actor{Kind: "job", Name: "sync"}
	for i := range 12 {
		if _, err := p.Create(ctx, pool.Account{ID: fmt.Sprint(3000000 + i), Name: fmt.Sprintf("lab-%05d", i),
			ExternalID: fmt.Sprintf("identity/accounts/00000000-0000-4000-8000-%012d", i)}, sync); err != nil {
			t.Fatal(err)
		}
	}
	b := broker.New(p, config.Pool{LabDuration: 48 * time.Hour, Grace: 30 * time.Minute})
	for i := range 8 {
		a, err := b.Allocate(ctx, broker.AllocateRequest{Student: fmt.Sprint("student-", i), Client: "capped", ClientCap: 10})
		if err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			if _, err := b.Release(ctx, a.SandboxID, pool.Holder{Client: "capped", Student: fmt.Sprint("student-", i)}, "r"); err != nil {
				t.Fatal(err)
			}
		}
	}
	got := proxy.Counts().Units
	for res, want := range rep.units {
		if got[res] != want {
			t.Errorf("%s: proxy billed %g, DynamoDB Local reports %g", res, got[res], want)
		}
	}
	if len(rep.units) < 3 {
		t.Fatalf("DynamoDB Local reported writes to %v only", rep.units)
	}
	t.Logf("write units: %v", rep.units)
}
