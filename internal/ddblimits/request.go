package ddblimits

import (
	"encoding/json"
	"regexp"
	"strings"
)

// request is a data-plane request the proxy applies limits to: item writes (one, or the
// items of a TransactWriteItems) or one read. Other operations (the control plane, batch
// and PartiQL operations, TransactGetItems) are forwarded without limits.
type request struct {
	transactional bool
	writes        []write
	read          *read
}

// write is one item a request writes: a Put, Update, Delete or a transaction's
// ConditionCheck.
type write struct {
	table string
	kind  string
	// key is the item's primary key; a Put's is taken from its item once the table's
	// schema is known.
	key item
	put item
}

// read is a GetItem, Query or Scan: the table or index it reads and what it knows of the
// key: a GetItem's key, or the attributes a Query's key condition sets equal to a value
// (the partition key's among them). A Scan reads every partition key.
type read struct {
	table, index string
	equal        item
	consistent   bool
	scan         bool
	// capacityReturned: the client asked for the consumed capacity (TOTAL or INDEXES).
	capacityReturned bool
}

type tableItem struct {
	TableName string
	Item      item
	Key       item
}

// parseRequest decodes the body of a data-plane operation; nil for an operation the proxy
// forwards without limits, or a body it cannot read (DynamoDB Local will answer it).
func parseRequest(op string, body []byte) *request {
	switch op {
	case "PutItem", "UpdateItem", "DeleteItem":
		var in tableItem
		if json.Unmarshal(body, &in) != nil {
			return nil
		}
		return &request{writes: []write{{table: in.TableName, kind: strings.TrimSuffix(op, "Item"), key: in.Key, put: in.Item}}}
	case "TransactWriteItems":
		var in struct {
			TransactItems []map[string]tableItem
		}
		if json.Unmarshal(body, &in) != nil {
			return nil
		}
		r := &request{transactional: true}
		for _, ti := range in.TransactItems {
			for kind, w := range ti { // exactly one of Put, Update, Delete, ConditionCheck
				r.writes = append(r.writes, write{table: w.TableName, kind: kind, key: w.Key, put: w.Item})
			}
		}
		return r
	case "GetItem":
		var in struct {
			TableName              string
			Key                    item
			ConsistentRead         bool
			ReturnConsumedCapacity string
		}
		if json.Unmarshal(body, &in) != nil {
			return nil
		}
		return &request{read: &read{table: in.TableName, equal: in.Key, consistent: in.ConsistentRead,
			capacityReturned: returned(in.ReturnConsumedCapacity)}}
	case "Query", "Scan":
		var in struct {
			TableName, IndexName      string
			KeyConditionExpression    string
			ExpressionAttributeNames  map[string]string
			ExpressionAttributeValues item
			ConsistentRead            bool
			ReturnConsumedCapacity    string
		}
		if json.Unmarshal(body, &in) != nil {
			return nil
		}
		rd := &read{table: in.TableName, index: in.IndexName, consistent: in.ConsistentRead, scan: op == "Scan",
			capacityReturned: returned(in.ReturnConsumedCapacity)}
		if !rd.scan {
			rd.equal = equalities(in.KeyConditionExpression, in.ExpressionAttributeNames, in.ExpressionAttributeValues)
		}
		return &request{read: rd}
	}
	return nil
}

func returned(returnConsumedCapacity string) bool {
	return returnConsumedCapacity == "TOTAL" || returnConsumedCapacity == "INDEXES"
}

var (
	andSep   = regexp.MustCompile(`(?i)\s+AND\s+`)
	equality = regexp.MustCompile(`^\(*\s*(#?[A-Za-z0-9_.\-]+)\s*=\s*(:[A-Za-z0-9_]+)\s*\)*$`)
)

// equalities returns the attributes a key condition sets equal to a value ("#pk = :pk AND
// begins_with(#sk, :prefix)" gives the partition key's). A condition it cannot read gives
// none, and the Query is limited only by the table's throughput.
func equalities(cond string, names map[string]string, values item) item {
	equal := item{}
	for _, part := range andSep.Split(strings.TrimSpace(cond), -1) {
		m := equality.FindStringSubmatch(strings.TrimSpace(part))
		if m == nil {
			continue
		}
		name := m[1]
		if strings.HasPrefix(name, "#") {
			name = names[name]
		}
		if v, ok := values[m[2]]; ok {
			equal[name] = v
		}
	}
	return equal
}
