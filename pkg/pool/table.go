package pool

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// CreateTable creates the table from Schema (on-demand), its stream included, and waits
// until it is active. It is how tests and the local stack get a table; in AWS the CDK
// stack creates it.
func CreateTable(ctx context.Context, db *dynamodb.Client, name string) error {
	return createTable(ctx, db, name, true)
}

// CreateTableWithoutStream is CreateTable without the table's stream, for a DynamoDB Local
// table whose stream nothing reads: a stream changes none of a table's answers, and
// DynamoDB Local makes each write to a table with a stream scan every stream record it
// keeps from before the table's first write, those of tables since dropped included
// (docs/architecture.md, "Where the local stack and AWS still differ"). Each table with a
// stream of a test binary, or of a warm-up, would tax the writes of every later one.
func CreateTableWithoutStream(ctx context.Context, db *dynamodb.Client, name string) error {
	return createTable(ctx, db, name, false)
}

func createTable(ctx context.Context, db *dynamodb.Client, name string, stream bool) error {
	in := &dynamodb.CreateTableInput{
		TableName:   aws.String(name),
		BillingMode: types.BillingModePayPerRequest,
		KeySchema:   keySchema(Schema.Partition, Schema.Sort),
	}
	if stream {
		in.StreamSpecification = &types.StreamSpecification{
			StreamEnabled: aws.Bool(true), StreamViewType: types.StreamViewType(Schema.StreamView),
		}
	}
	for _, k := range Schema.Attributes() {
		in.AttributeDefinitions = append(in.AttributeDefinitions, types.AttributeDefinition{
			AttributeName: aws.String(k.Name), AttributeType: types.ScalarAttributeType(k.Type),
		})
	}
	for _, ix := range Schema.Indexes {
		projection := &types.Projection{ProjectionType: types.ProjectionTypeAll}
		if len(ix.Include) > 0 {
			projection = &types.Projection{ProjectionType: types.ProjectionTypeInclude, NonKeyAttributes: ix.Include}
		}
		in.GlobalSecondaryIndexes = append(in.GlobalSecondaryIndexes, types.GlobalSecondaryIndex{
			IndexName:  aws.String(ix.Name),
			KeySchema:  keySchema(ix.Partition, ix.Sort),
			Projection: projection,
		})
	}
	if _, err := db.CreateTable(ctx, in); err != nil {
		return fmt.Errorf("pool: create table %s: %w", name, err)
	}
	waiter := dynamodb.NewTableExistsWaiter(db, func(o *dynamodb.TableExistsWaiterOptions) { o.MinDelay = 100 * time.Millisecond })
	if err := waiter.Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)}, time.Minute); err != nil {
		return fmt.Errorf("pool: wait for table %s: %w", name, err)
	}
	_, err := db.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
		TableName: aws.String(name),
		TimeToLiveSpecification: &types.TimeToLiveSpecification{
			AttributeName: aws.String(Schema.TTLAttribute), Enabled: aws.Bool(true),
		},
	})
	if err != nil {
		return fmt.Errorf("pool: enable TTL on %s: %w", name, err)
	}
	return nil
}

// EnsureTable creates the table only when it does not exist yet; it reports whether it did.
func EnsureTable(ctx context.Context, db *dynamodb.Client, name string) (created bool, err error) {
	_, err = db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)})
	var missing *types.ResourceNotFoundException
	switch {
	case err == nil:
		return false, nil
	case errors.As(err, &missing):
		return true, CreateTable(ctx, db, name)
	default:
		return false, fmt.Errorf("pool: describe table %s: %w", name, err)
	}
}

func keySchema(partition, sort Key) []types.KeySchemaElement {
	return []types.KeySchemaElement{
		{AttributeName: aws.String(partition.Name), KeyType: types.KeyTypeHash},
		{AttributeName: aws.String(sort.Name), KeyType: types.KeyTypeRange},
	}
}

// Ping answers whether the table is reachable (readiness).
func (p *Pool) Ping(ctx context.Context) error {
	_, err := p.db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(p.table)})
	var missing *types.ResourceNotFoundException
	if errors.As(err, &missing) {
		return fmt.Errorf("pool: table %s does not exist", p.table)
	}
	return err
}
