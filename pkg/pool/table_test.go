package pool_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/sandbox-broker/broker/pkg/pool"
	"github.com/sandbox-broker/broker/pkg/pool/pooltest"
)

// The tables of the tests that read no stream (pooltest.NewTable) are the schema's table
// without its stream: the same keys, indexes, projections, billing and TTL.
func TestCreateTableWithoutStreamLeavesOutOnlyTheStream(t *testing.T) {
	t.Parallel()
	type shape struct {
		keys       []types.KeySchemaElement
		attributes map[string]types.ScalarAttributeType
		indexes    map[string]string
		billing    types.BillingMode
		ttl        string
		stream     *types.StreamSpecification
	}
	describe := func(table string) shape {
		out, err := pooltest.Client().DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)})
		if err != nil {
			t.Fatal(err)
		}
		ttl, err := pooltest.Client().DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(table)})
		if err != nil {
			t.Fatal(err)
		}
		d := out.Table
		s := shape{keys: d.KeySchema, attributes: map[string]types.ScalarAttributeType{}, indexes: map[string]string{},
			billing: d.BillingModeSummary.BillingMode, stream: d.StreamSpecification,
			ttl: string(ttl.TimeToLiveDescription.TimeToLiveStatus) + " " + aws.ToString(ttl.TimeToLiveDescription.AttributeName)}
		for _, a := range d.AttributeDefinitions {
			s.attributes[*a.AttributeName] = a.AttributeType
		}
		for _, ix := range d.GlobalSecondaryIndexes {
			s.indexes[*ix.IndexName] = aws.ToString(ix.KeySchema[0].AttributeName) + "/" + aws.ToString(ix.KeySchema[1].AttributeName) +
				" " + string(ix.Projection.ProjectionType) + " " + strings.Join(ix.Projection.NonKeyAttributes, ",")
		}
		return s
	}
	with, without := describe(pooltest.NewTableWithStream(t)), describe(pooltest.NewTable(t))
	if with.stream == nil || !aws.ToBool(with.stream.StreamEnabled) || string(with.stream.StreamViewType) != pool.StreamNewAndOldImages {
		t.Fatalf("CreateTable's stream: %+v", with.stream)
	}
	if without.stream != nil && aws.ToBool(without.stream.StreamEnabled) {
		t.Fatalf("CreateTableWithoutStream's table has a stream: %+v", without.stream)
	}
	if len(with.indexes) != len(pool.Schema.Indexes) || with.ttl != "ENABLED "+pool.Schema.TTLAttribute {
		t.Fatalf("CreateTable's table: %+v", with)
	}
	with.stream, without.stream = nil, nil
	if !reflect.DeepEqual(with, without) {
		t.Fatalf("the tables differ beyond the stream:\nwith    %+v\nwithout %+v", with, without)
	}
}
