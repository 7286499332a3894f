package ddblimits_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/sandbox-broker/broker/internal/ddblimits"
	"github.com/sandbox-broker/broker/internal/testkit"
	"github.com/sandbox-broker/broker/pkg/pool"
	"github.com/sandbox-broker/broker/pkg/pool/pooltest"
)

func TestMain(m *testing.M) { pooltest.Main(m) }

var (
	ctx    = context.Background()
	tables atomic.Int64
)

func newClock() *testkit.Clock { return testkit.NewClock(time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)) }

// table is a small table of the tests' own: PK and SK, and an index GSI on the attribute g
// that projects all attributes, so a test decides which index partition an item lands in.
func table(t *testing.T) string {
	t.Helper()
	db := pooltest.Client()
	tbl := fmt.Sprintf("limits-%d-%d", tables.Add(1), time.Now().UnixNano())
	_, err := db.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:   aws.String(tbl),
		BillingMode: types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{
			{AttributeName: aws.String("PK"), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String("SK"), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String("g"), AttributeType: types.ScalarAttributeTypeS},
		},
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String("PK"), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String("SK"), KeyType: types.KeyTypeRange},
		},
		GlobalSecondaryIndexes: []types.GlobalSecondaryIndex{{
			IndexName:  aws.String("GSI"),
			KeySchema:  []types.KeySchemaElement{{AttributeName: aws.String("g"), KeyType: types.KeyTypeHash}},
			Projection: &types.Projection{ProjectionType: types.ProjectionTypeAll},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = db.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(tbl)}) })
	return tbl
}

// start runs a proxy with cfg and returns it with a client of it that makes one attempt
// per call, so each test sees DynamoDB's answers as they come.
func start(t *testing.T, cfg ddblimits.Config) (*ddblimits.Proxy, *dynamodb.Client) {
	t.Helper()
	proxy, err := ddblimits.Start(pooltest.Endpoint(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proxy.Stop)
	db, err := pool.NewClient(ctx, pool.ClientOptions{Endpoint: proxy.URL, Region: "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	return proxy, dynamodb.New(db.Options(), func(o *dynamodb.Options) {
		o.Retryer = retry.NewStandard(func(o *retry.StandardOptions) { o.MaxAttempts = 1 })
		o.DisableValidateResponseChecksum = false
	})
}

func s(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }

func itemOf(pk, g string) map[string]types.AttributeValue {
	it := map[string]types.AttributeValue{"PK": s(pk), "SK": s("x")}
	if g != "" {
		it["g"] = s(g)
	}
	return it
}

func put(db *dynamodb.Client, tbl, pk, g string) error {
	_, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(tbl), Item: itemOf(pk, g)})
	return err
}

func putTx(tbl string, pks ...string) *dynamodb.TransactWriteItemsInput {
	in := &dynamodb.TransactWriteItemsInput{}
	for _, pk := range pks {
		in.TransactItems = append(in.TransactItems, types.TransactWriteItem{Put: &types.Put{TableName: aws.String(tbl), Item: itemOf(pk, "")}})
	}
	return in
}
