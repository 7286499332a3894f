package pool

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// ErrInvalidCursor: a list cursor that this table did not hand out for this listing.
var ErrInvalidCursor = errors.New("pool: invalid cursor")

// ListFilter selects sandboxes for the admin listing. An empty Status lists every status,
// one after the other; Prefix keeps names that start with it.
type ListFilter struct {
	Status Status
	Prefix string
}

// Page is one page of a listing; Cursor is empty on the last page.
type Page struct {
	Sandboxes []Sandbox
	Cursor    string
}

// cursorState is what a cursor carries: the listing it belongs to, which StatusIndex shard
// of which status it is in (Index: the status's place in the listing × Shards + the
// shard), and where that shard's query stopped.
type cursorState struct {
	Version  int    `json:"v"`
	Status   Status `json:"s,omitempty"`
	Prefix   string `json:"p,omitempty"`
	Index    int    `json:"i"`
	PK       string `json:"pk"`
	StatusAt int64  `json:"at"`
}

// List returns up to limit sandboxes in StatusIndex order, starting after cursor: status by
// status, each shard by shard, in status_at order within a shard (a cursor holds one
// shard's position, so the shards are not merged as ByStatus merges them). Only sandbox
// items are read (never history, owner or job items), and the page is filled across
// DynamoDB pages, shards and statuses so a short page means the end.
func (p *Pool) List(ctx context.Context, f ListFilter, limit int, cursor string) (Page, error) {
	if f.Status != "" && !f.Status.Valid() {
		return Page{}, fmt.Errorf("pool: list: unknown status %q", f.Status)
	}
	statuses := Statuses
	if f.Status != "" {
		statuses = []Status{f.Status}
	}
	at := cursorState{Version: cursorVersion, Status: f.Status, Prefix: f.Prefix}
	if cursor != "" {
		var err error
		if at, err = p.decodeCursor(cursor, f, len(statuses)*Shards); err != nil {
			return Page{}, err
		}
	}
	var page Page
	var start map[string]types.AttributeValue
	if at.PK != "" {
		start = map[string]types.AttributeValue{
			AttrPK: av(at.PK), AttrSK: av(skMeta), AttrStatusAt: av(at.StatusAt),
			AttrStatusKey: av(StatusShardKey(statuses[at.Index/Shards], at.Index%Shards)),
		}
	}
	next := func(i int, start map[string]types.AttributeValue) string {
		return p.encodeCursor(cursorState{Version: cursorVersion, Status: f.Status, Prefix: f.Prefix, Index: i,
			PK: stringAttr(start[AttrPK]), StatusAt: numberAttr(start[AttrStatusAt])})
	}
	for i := at.Index; i < len(statuses)*Shards; i, start = i+1, nil {
		if len(page.Sandboxes) == limit {
			page.Cursor = next(i, nil)
			break
		}
		in, e := statusQuery(statuses[i/Shards], i%Shards, 0)
		if f.Prefix != "" {
			e.set(":name_prefix", f.Prefix)
			in.FilterExpression = aws.String(e.use("begins_with(#name, :name_prefix)"))
		}
		p.prepare(in, e)
		for {
			// Asking for exactly the missing count makes DynamoDB stop at the last item
			// returned, so its LastEvaluatedKey is a cursor that skips nothing.
			in.Limit = aws.Int32(int32(limit - len(page.Sandboxes)))
			in.ExclusiveStartKey = start
			out, err := p.db.Query(ctx, in)
			if err != nil {
				return Page{}, wrapAPIError("list", err)
			}
			var items []Sandbox
			if err := attributevalue.UnmarshalListOfMaps(out.Items, &items); err != nil {
				return Page{}, fmt.Errorf("pool: list: %w", err)
			}
			page.Sandboxes = append(page.Sandboxes, items...)
			if start = out.LastEvaluatedKey; len(start) == 0 {
				break
			}
			if len(page.Sandboxes) == limit {
				page.Cursor = next(i, start)
				return page, nil
			}
		}
	}
	return page, nil
}

// A cursor is base64url(JSON state) "." base64url(checksum). The checksum covers the table
// name, so a cursor from another table, another listing or with a changed byte is refused
// with ErrInvalidCursor instead of reaching DynamoDB. It is not a secret: a hand-made cursor
// can only move the start of a listing the caller may read anyway.
func (p *Pool) encodeCursor(c cursorState) string {
	payload, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(payload) + "." + base64.RawURLEncoding.EncodeToString(p.cursorSum(payload))
}

// cursorVersion 2: Index counts shards within statuses (version 1 counted statuses only).
const cursorVersion = 2

func (p *Pool) decodeCursor(cursor string, f ListFilter, positions int) (cursorState, error) {
	body, sum, ok := strings.Cut(cursor, ".")
	payload, err1 := base64.RawURLEncoding.DecodeString(body)
	gotSum, err2 := base64.RawURLEncoding.DecodeString(sum)
	if !ok || len(cursor) > 1024 || err1 != nil || err2 != nil || !slices.Equal(gotSum, p.cursorSum(payload)) {
		return cursorState{}, ErrInvalidCursor
	}
	var c cursorState
	if err := json.Unmarshal(payload, &c); err != nil || c.Version != cursorVersion || c.Status != f.Status || c.Prefix != f.Prefix ||
		c.Index < 0 || c.Index >= positions || (c.PK != "" && !strings.HasPrefix(c.PK, prefixSandbox)) {
		return cursorState{}, ErrInvalidCursor
	}
	return c, nil
}

func (p *Pool) cursorSum(payload []byte) []byte {
	h := sha256.New()
	h.Write([]byte("sandbox-broker list cursor\x00" + p.table + "\x00"))
	h.Write(payload)
	return h.Sum(nil)[:12]
}

func stringAttr(v types.AttributeValue) string {
	if s, ok := v.(*types.AttributeValueMemberS); ok {
		return s.Value
	}
	return ""
}

func numberAttr(v types.AttributeValue) int64 {
	if n, ok := v.(*types.AttributeValueMemberN); ok {
		i, _ := strconv.ParseInt(n.Value, 10, 64)
		return i
	}
	return 0
}
