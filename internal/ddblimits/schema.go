package ddblimits

import (
	"context"
	"net/http"
	"sync"
)

// tableSchema is what the proxy needs of a table: its keys, its global secondary indexes
// and its ARN (the resource a throttling reason names).
type tableSchema struct {
	arn        string
	hash, sort string
	indexes    []indexSchema
}

type indexSchema struct {
	name       string
	hash, sort string
	// projected is nil for ProjectionType ALL, else the attributes an entry carries: the
	// table's and the index's keys, plus the included ones.
	projected map[string]bool
}

// describeTableOutput is the part of DescribeTable's answer the proxy reads.
type describeTableOutput struct {
	Table struct {
		TableArn               string
		KeySchema              []keySchemaElement
		GlobalSecondaryIndexes []struct {
			IndexName  string
			KeySchema  []keySchemaElement
			Projection struct {
				ProjectionType   string
				NonKeyAttributes []string
			}
		}
	}
}

type keySchemaElement struct {
	AttributeName string
	KeyType       string
}

func keyNames(elems []keySchemaElement) (hash, sort string) {
	for _, e := range elems {
		switch e.KeyType {
		case "HASH":
			hash = e.AttributeName
		case "RANGE":
			sort = e.AttributeName
		}
	}
	return hash, sort
}

func newTableSchema(d describeTableOutput) *tableSchema {
	t := &tableSchema{arn: d.Table.TableArn}
	t.hash, t.sort = keyNames(d.Table.KeySchema)
	for _, gsi := range d.Table.GlobalSecondaryIndexes {
		ix := indexSchema{name: gsi.IndexName}
		ix.hash, ix.sort = keyNames(gsi.KeySchema)
		if gsi.Projection.ProjectionType != "ALL" {
			ix.projected = map[string]bool{}
			for _, name := range append([]string{t.hash, t.sort, ix.hash, ix.sort}, gsi.Projection.NonKeyAttributes...) {
				if name != "" {
					ix.projected[name] = true
				}
			}
		}
		t.indexes = append(t.indexes, ix)
	}
	return t
}

// key is the primary key of an item (or its Key parameter).
func (t *tableSchema) key(it item) item {
	k := item{}
	for _, name := range []string{t.hash, t.sort} {
		if v, ok := it[name]; ok && name != "" {
			k[name] = v
		}
	}
	return k
}

// index returns the index named name, or nil.
func (t *tableSchema) index(name string) *indexSchema {
	for i := range t.indexes {
		if t.indexes[i].name == name {
			return &t.indexes[i]
		}
	}
	return nil
}

// entry is the item's entry in the index, or nil when the item lacks one of the index's
// keys (the index is sparse).
func (ix *indexSchema) entry(it item) item {
	if it == nil {
		return nil
	}
	for _, name := range []string{ix.hash, ix.sort} {
		if _, ok := it[name]; name != "" && !ok {
			return nil
		}
	}
	if ix.projected == nil {
		return it
	}
	e := item{}
	for name := range ix.projected {
		if v, ok := it[name]; ok {
			e[name] = v
		}
	}
	return e
}

// schemas caches DescribeTable per DynamoDB Local namespace and table. DynamoDB Local keeps
// the tables of each access key and region apart (unless started with -sharedDb), so a
// namespace is the credential scope of the requests.
type schemas struct {
	mu     sync.Mutex
	tables map[string]*tableSchema
}

// get returns the schema of table as seen by the namespace, describing it on first use.
func (s *schemas) get(ctx context.Context, up *upstream, auth http.Header, namespace, table string) (*tableSchema, error) {
	cacheKey := namespace + "\x00" + table
	s.mu.Lock()
	t := s.tables[cacheKey]
	s.mu.Unlock()
	if t != nil {
		return t, nil
	}
	var out describeTableOutput
	if err := up.call(ctx, auth, "DescribeTable", map[string]string{"TableName": table}, &out); err != nil {
		return nil, err
	}
	t = newTableSchema(out)
	s.mu.Lock()
	s.tables[cacheKey] = t
	s.mu.Unlock()
	return t, nil
}

// forget drops a table whose definition a request may change (CreateTable, DeleteTable,
// UpdateTable).
func (s *schemas) forget(namespace, table string) {
	s.mu.Lock()
	delete(s.tables, namespace+"\x00"+table)
	s.mu.Unlock()
}
