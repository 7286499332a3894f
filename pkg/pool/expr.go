package pool

import (
	"regexp"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// expr collects the names and values of one request's expressions. Expressions are written
// as readable strings; every attribute is referenced as #name, so reserved words (status,
// name, ttl) never bite, and the alias map is derived from the text.
type expr struct {
	names  map[string]string
	values map[string]types.AttributeValue
}

var nameRef = regexp.MustCompile(`#[A-Za-z_][A-Za-z0-9_]*`)

// use registers the #names in s and returns s.
func (e *expr) use(s string) string {
	for _, ref := range nameRef.FindAllString(s, -1) {
		if e.names == nil {
			e.names = map[string]string{}
		}
		e.names[ref] = ref[1:]
	}
	return s
}

// set binds a :placeholder to a string, number, Status or marshalled attribute value.
func (e *expr) set(placeholder string, v any) {
	if e.values == nil {
		e.values = map[string]types.AttributeValue{}
	}
	e.values[placeholder] = av(v)
}

// setStatus binds a sandbox's new status, its StatusIndex partition key (StatusKey) and its
// status_at on e, and renders their SET assignments. It is the only way a write sets
// #status, so status_key can never disagree with the status.
func (e *expr) setStatus(id string, to Status, at int64) string {
	e.set(":status", to)
	e.set(":status_key", StatusKey(to, id))
	e.set(":status_at", at)
	return "#status = :status, #status_key = :status_key, #status_at = :status_at"
}

func av(v any) types.AttributeValue {
	switch x := v.(type) {
	case types.AttributeValue:
		return x
	case string:
		return &types.AttributeValueMemberS{Value: x}
	case Status:
		return &types.AttributeValueMemberS{Value: string(x)}
	case int:
		return &types.AttributeValueMemberN{Value: strconv.Itoa(x)}
	case int64:
		return &types.AttributeValueMemberN{Value: strconv.FormatInt(x, 10)}
	}
	panic("pool: unsupported expression value type")
}

func key(pk, sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{AttrPK: av(pk), AttrSK: av(sk)}
}
