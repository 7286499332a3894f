package events

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	streams "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
)

// Record is one record of the table's stream: one write of one item, with the item as it
// was (Old) and as it became (New). Both the Lambda function (a batch Lambda delivers,
// DecodeBatch) and the local stack's poller (GetRecords, FromStream) make these, and
// Deliver takes them in stream order.
type Record struct {
	// ID is the stream record's own ID: the same on every delivery of the record.
	ID string `json:"event_id"`
	// Name is INSERT, MODIFY or REMOVE.
	Name string `json:"event_name"`
	// Sequence is the record's sequence number in its shard; a batch's failure names it.
	Sequence string `json:"sequence"`
	// Created is when DynamoDB wrote the record (to the second).
	Created  time.Time                       `json:"created"`
	Keys     map[string]types.AttributeValue `json:"-"`
	Old, New map[string]types.AttributeValue `json:"-"`
}

// The stream's record names.
const (
	Insert = "INSERT"
	Modify = "MODIFY"
	Remove = "REMOVE"
)

// Batch is the event Lambda's event source mapping sends the function: a batch of one
// shard's records in order, as its documented JSON.
type Batch struct {
	Records []LambdaRecord `json:"Records"`
}

// LambdaRecord is one record of a Batch.
type LambdaRecord struct {
	EventID   string `json:"eventID"`
	EventName string `json:"eventName"`
	DynamoDB  struct {
		ApproximateCreationDateTime float64                    `json:"ApproximateCreationDateTime"`
		Keys                        map[string]json.RawMessage `json:"Keys"`
		NewImage                    map[string]json.RawMessage `json:"NewImage,omitempty"`
		OldImage                    map[string]json.RawMessage `json:"OldImage,omitempty"`
		SequenceNumber              string                     `json:"SequenceNumber"`
	} `json:"dynamodb"`
	EventSourceARN string `json:"eventSourceARN"`
}

// BatchResponse is the function's answer with ReportBatchItemFailures: the record to
// retry the batch from, none when every record was dealt with.
type BatchResponse struct {
	BatchItemFailures []BatchItemFailure `json:"batchItemFailures"`
}

// BatchItemFailure names a record by its sequence number.
type BatchItemFailure struct {
	ItemIdentifier string `json:"itemIdentifier"`
}

// Decode reads the batch's records, images included.
func (b Batch) Decode() ([]Record, error) {
	out := make([]Record, 0, len(b.Records))
	for _, lr := range b.Records {
		r := Record{ID: lr.EventID, Name: lr.EventName, Sequence: lr.DynamoDB.SequenceNumber,
			Created: time.Unix(int64(lr.DynamoDB.ApproximateCreationDateTime), 0).UTC()}
		var err error
		if r.Keys, err = decodeImage(lr.DynamoDB.Keys); err != nil {
			return nil, fmt.Errorf("events: record %s: keys: %w", lr.EventID, err)
		}
		if r.Old, err = decodeImage(lr.DynamoDB.OldImage); err != nil {
			return nil, fmt.Errorf("events: record %s: old image: %w", lr.EventID, err)
		}
		if r.New, err = decodeImage(lr.DynamoDB.NewImage); err != nil {
			return nil, fmt.Errorf("events: record %s: new image: %w", lr.EventID, err)
		}
		out = append(out, r)
	}
	return out, nil
}

// FromStream is a record as DynamoDB Streams' GetRecords returns it.
func FromStream(sr streams.Record) (Record, error) {
	r := Record{}
	if sr.EventID != nil {
		r.ID = *sr.EventID
	}
	r.Name = string(sr.EventName)
	d := sr.Dynamodb
	if d == nil {
		return r, fmt.Errorf("events: record %s carries no DynamoDB change", r.ID)
	}
	if d.SequenceNumber != nil {
		r.Sequence = *d.SequenceNumber
	}
	if d.ApproximateCreationDateTime != nil {
		r.Created = d.ApproximateCreationDateTime.Truncate(time.Second).UTC()
	}
	var err error
	if r.Keys, err = attributevalue.FromDynamoDBStreamsMap(d.Keys); err != nil {
		return r, err
	}
	if r.Old, err = attributevalue.FromDynamoDBStreamsMap(d.OldImage); err != nil {
		return r, err
	}
	r.New, err = attributevalue.FromDynamoDBStreamsMap(d.NewImage)
	return r, err
}

func decodeImage(raw map[string]json.RawMessage) (map[string]types.AttributeValue, error) {
	if raw == nil {
		return nil, nil
	}
	out := make(map[string]types.AttributeValue, len(raw))
	for name, v := range raw {
		av, err := decodeValue(v)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		out[name] = av
	}
	return out, nil
}

// decodeValue reads one attribute value in DynamoDB's JSON ({"S":"x"}, {"N":"1"}, …).
func decodeValue(raw json.RawMessage) (types.AttributeValue, error) {
	var v map[string]json.RawMessage
	if err := json.Unmarshal(raw, &v); err != nil || len(v) != 1 {
		return nil, fmt.Errorf("not an attribute value: %.40s", raw)
	}
	for kind, body := range v {
		switch kind {
		case "S":
			var s string
			err := json.Unmarshal(body, &s)
			return &types.AttributeValueMemberS{Value: s}, err
		case "N":
			var n string
			if err := json.Unmarshal(body, &n); err != nil {
				return nil, err
			}
			if _, err := strconv.ParseFloat(n, 64); err != nil {
				return nil, fmt.Errorf("number %q: %w", n, err)
			}
			return &types.AttributeValueMemberN{Value: n}, nil
		case "B":
			var b []byte // base64 in JSON
			err := json.Unmarshal(body, &b)
			return &types.AttributeValueMemberB{Value: b}, err
		case "BOOL":
			var b bool
			err := json.Unmarshal(body, &b)
			return &types.AttributeValueMemberBOOL{Value: b}, err
		case "NULL":
			return &types.AttributeValueMemberNULL{Value: true}, nil
		case "SS", "NS":
			var ss []string
			if err := json.Unmarshal(body, &ss); err != nil {
				return nil, err
			}
			if kind == "NS" {
				return &types.AttributeValueMemberNS{Value: ss}, nil
			}
			return &types.AttributeValueMemberSS{Value: ss}, nil
		case "BS":
			var enc []string
			if err := json.Unmarshal(body, &enc); err != nil {
				return nil, err
			}
			bs := make([][]byte, len(enc))
			for i, e := range enc {
				b, err := base64.StdEncoding.DecodeString(e)
				if err != nil {
					return nil, err
				}
				bs[i] = b
			}
			return &types.AttributeValueMemberBS{Value: bs}, nil
		case "M":
			var m map[string]json.RawMessage
			if err := json.Unmarshal(body, &m); err != nil {
				return nil, err
			}
			inner, err := decodeImage(m)
			if inner == nil {
				inner = map[string]types.AttributeValue{}
			}
			return &types.AttributeValueMemberM{Value: inner}, err
		case "L":
			var l []json.RawMessage
			if err := json.Unmarshal(body, &l); err != nil {
				return nil, err
			}
			out := make([]types.AttributeValue, len(l))
			for i, e := range l {
				av, err := decodeValue(e)
				if err != nil {
					return nil, err
				}
				out[i] = av
			}
			return &types.AttributeValueMemberL{Value: out}, nil
		}
		return nil, fmt.Errorf("unknown attribute type %q", kind)
	}
	return nil, nil
}

// Lambda is r as a record of a Batch: how a dead letter keeps a record it could not read,
// to be read again by Replay.
func (r Record) Lambda() LambdaRecord {
	var lr LambdaRecord
	lr.EventID, lr.EventName = r.ID, r.Name
	lr.DynamoDB.ApproximateCreationDateTime = float64(r.Created.Unix())
	lr.DynamoDB.SequenceNumber = r.Sequence
	lr.DynamoDB.Keys, lr.DynamoDB.OldImage, lr.DynamoDB.NewImage = encodeImage(r.Keys), encodeImage(r.Old), encodeImage(r.New)
	return lr
}

func encodeImage(item map[string]types.AttributeValue) map[string]json.RawMessage {
	if item == nil {
		return nil
	}
	out := make(map[string]json.RawMessage, len(item))
	for name, v := range item {
		out[name] = encodeValue(v)
	}
	return out
}

// encodeValue writes one attribute value in DynamoDB's JSON, the inverse of decodeValue.
func encodeValue(v types.AttributeValue) json.RawMessage {
	var kind string
	var body any
	switch x := v.(type) {
	case *types.AttributeValueMemberS:
		kind, body = "S", x.Value
	case *types.AttributeValueMemberN:
		kind, body = "N", x.Value
	case *types.AttributeValueMemberB:
		kind, body = "B", x.Value
	case *types.AttributeValueMemberBOOL:
		kind, body = "BOOL", x.Value
	case *types.AttributeValueMemberNULL:
		kind, body = "NULL", true
	case *types.AttributeValueMemberSS:
		kind, body = "SS", x.Value
	case *types.AttributeValueMemberNS:
		kind, body = "NS", x.Value
	case *types.AttributeValueMemberBS:
		kind, body = "BS", x.Value
	case *types.AttributeValueMemberM:
		kind, body = "M", encodeImage(x.Value)
	case *types.AttributeValueMemberL:
		l := make([]json.RawMessage, len(x.Value))
		for i, e := range x.Value {
			l[i] = encodeValue(e)
		}
		kind, body = "L", l
	default:
		kind, body = "NULL", true
	}
	raw, _ := json.Marshal(map[string]any{kind: body}) // strings, numbers, bytes and maps of them
	return raw
}
