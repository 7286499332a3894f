package ddblimits_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/sandbox-broker/broker/internal/ddblimits"
)

// milli scales AWS's per-key limits to 1 write unit and 3 read units a second, so a test
// reaches them with a handful of requests; the clock stands still unless advanced.
const milli = 0.001

// A partition key value serves KeyWriteUnits a second: once its second is spent, a write
// to it is refused with ProvisionedThroughputExceededException naming the table and the
// key range reason, while another key is served; a second later it is served again.
func TestPartitionKeyWriteLimit(t *testing.T) {
	clk := newClock()
	proxy, db := start(t, ddblimits.Config{PartitionLimits: true, Scale: milli, Now: clk.Now})
	tbl := table(t)
	if err := put(db, tbl, "hot", ""); err != nil {
		t.Fatal(err)
	}
	err := put(db, tbl, "hot", "")
	var pte *types.ProvisionedThroughputExceededException
	if !errors.As(err, &pte) {
		t.Fatalf("second write of the hot key in its second: %v, want ProvisionedThroughputExceededException", err)
	}
	if len(pte.ThrottlingReasons) != 1 || aws.ToString(pte.ThrottlingReasons[0].Reason) != "TableWriteKeyRangeThroughputExceeded" ||
		!strings.HasSuffix(aws.ToString(pte.ThrottlingReasons[0].Resource), ":table/"+tbl) {
		t.Fatalf("throttling reasons %+v", pte.ThrottlingReasons)
	}
	if err := put(db, tbl, "cold", ""); err != nil {
		t.Fatalf("another key: %v", err)
	}
	clk.Advance(time.Second)
	if err := put(db, tbl, "hot", ""); err != nil {
		t.Fatalf("the hot key a second later: %v", err)
	}
	c := proxy.Counts()
	if c.Total(ddblimits.Throttle) != 1 || c.Units[tbl+" write"] != 3 {
		t.Fatalf("counts:\n%s", c)
	}
}

// A write to distinct table keys whose index entries share a partition key is throttled
// by the index partition, and says so (IndexWriteKeyRangeThroughputExceeded, the index's
// ARN); a write without an entry in the index is not.
func TestIndexPartitionThrottlesTableWrites(t *testing.T) {
	clk := newClock()
	_, db := start(t, ddblimits.Config{PartitionLimits: true, Scale: milli, Now: clk.Now})
	tbl := table(t)
	if err := put(db, tbl, "a", "shard-1"); err != nil {
		t.Fatal(err)
	}
	err := put(db, tbl, "b", "shard-1")
	var pte *types.ProvisionedThroughputExceededException
	if !errors.As(err, &pte) || aws.ToString(pte.ThrottlingReasons[0].Reason) != "IndexWriteKeyRangeThroughputExceeded" ||
		!strings.HasSuffix(aws.ToString(pte.ThrottlingReasons[0].Resource), ":table/"+tbl+"/index/GSI") {
		t.Fatalf("write behind a hot index partition: %v", err)
	}
	if err := put(db, tbl, "c", "shard-2"); err != nil {
		t.Fatalf("another index partition: %v", err)
	}
	if err := put(db, tbl, "d", ""); err != nil {
		t.Fatalf("no index entry: %v", err)
	}
}

// A transaction touching a throttled key is cancelled with ThrottlingError on that item
// and None on the others, as an on-demand table cancels it.
func TestThrottledTransactionIsCancelledPerItem(t *testing.T) {
	clk := newClock()
	_, db := start(t, ddblimits.Config{PartitionLimits: true, Scale: milli, Now: clk.Now})
	tbl := table(t)
	if err := put(db, tbl, "hot", ""); err != nil {
		t.Fatal(err)
	}
	_, err := db.TransactWriteItems(ctx, putTx(tbl, "cold", "hot"))
	assertCancelled(t, err, ddblimits.ReasonNone, ddblimits.ReasonThrottlingError)
}

// The table's throughput as a whole (here 2 write units a second) refuses writes to
// distinct keys once spent, with ThrottlingException; reads draw from their own bucket.
func TestTableThroughput(t *testing.T) {
	clk := newClock()
	proxy, db := start(t, ddblimits.Config{TableWriteUnits: 2, TableReadUnits: 1, Now: clk.Now})
	tbl := table(t)
	for _, pk := range []string{"a", "b"} {
		if err := put(db, tbl, pk, ""); err != nil {
			t.Fatal(err)
		}
	}
	err := put(db, tbl, "c", "")
	var te *types.ThrottlingException
	if !errors.As(err, &te) || aws.ToString(te.ThrottlingReasons[0].Reason) != "TableWriteKeyRangeThroughputExceeded" {
		t.Fatalf("third write in the table's second: %v, want ThrottlingException", err)
	}
	get := func() error {
		_, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(tbl), Key: map[string]types.AttributeValue{"PK": s("a"), "SK": s("x")}, ConsistentRead: aws.Bool(true)})
		return err
	}
	if err := get(); err != nil {
		t.Fatalf("a read beside spent writes: %v", err)
	}
	if err := get(); !errors.As(err, &te) || aws.ToString(te.ThrottlingReasons[0].Reason) != "TableReadKeyRangeThroughputExceeded" {
		t.Fatalf("second strongly consistent read in a second of 1 unit: %v", err)
	}
	if c := proxy.Counts(); c.Total(ddblimits.Throttle) != 2 || c.Units[tbl+" read"] != 1 {
		t.Fatalf("counts:\n%s", c)
	}
}

// A Query draws from the partition key its key condition names, whichever way it is
// written, and costs what DynamoDB Local reports; an eventually consistent read costs
// half. The proxy asks DynamoDB Local for the consumed capacity and hands it on only to a
// client that asked for it.
func TestQueryDrawsFromItsPartitionKey(t *testing.T) {
	clk := newClock()
	proxy, db := start(t, ddblimits.Config{PartitionLimits: true, Scale: milli, Now: clk.Now})
	tbl := table(t)
	if err := put(db, tbl, "a", "shard-1"); err != nil {
		t.Fatal(err)
	}
	query := func(cond string, consistent bool, capacity types.ReturnConsumedCapacity) (*dynamodb.QueryOutput, error) {
		values := map[string]types.AttributeValue{":pk": s("a")}
		if strings.Contains(cond, ":sk") {
			values[":sk"] = s("x")
		}
		return db.Query(ctx, &dynamodb.QueryInput{
			TableName: aws.String(tbl), KeyConditionExpression: aws.String(cond), ConsistentRead: aws.Bool(consistent),
			ExpressionAttributeNames: map[string]string{"#pk": "PK"}, ExpressionAttributeValues: values,
			ReturnConsumedCapacity: capacity,
		})
	}
	// 3 units a second: three strongly consistent reads, then the key is spent.
	for i, cond := range []string{"#pk = :pk", "(#pk = :pk) AND SK = :sk", "SK = :sk AND #pk = :pk"} {
		out, err := query(cond, true, "")
		if err != nil || len(out.Items) != 1 || out.ConsumedCapacity != nil {
			t.Fatalf("read %d (%s): %+v %v", i, cond, out, err)
		}
	}
	var pte *types.ProvisionedThroughputExceededException
	if _, err := query("#pk = :pk", false, ""); !errors.As(err, &pte) || aws.ToString(pte.ThrottlingReasons[0].Reason) != "TableReadKeyRangeThroughputExceeded" {
		t.Fatalf("fourth read: %v", err)
	}
	clk.Advance(time.Second)
	out, err := query("#pk = :pk", false, types.ReturnConsumedCapacityTotal)
	if err != nil || out.ConsumedCapacity == nil || aws.ToFloat64(out.ConsumedCapacity.CapacityUnits) != 0.5 {
		t.Fatalf("an eventually consistent read that asks for its capacity: %+v %v", out, err)
	}
	if got := proxy.Counts().Units[tbl+" read"]; got != 3.5 {
		t.Fatalf("read units %g, want 3.5", got)
	}
}
