package ddblimits

import (
	"encoding/base64"
	"math"
	"reflect"
	"strings"
)

// value is one attribute value as DynamoDB's JSON protocol carries it ({"S":"…"}, {"N":"…"},
// …). The proxy decodes values only to size them and to read keys; it forwards the
// client's bytes unchanged.
type value struct {
	S    *string          `json:"S,omitempty"`
	N    *string          `json:"N,omitempty"`
	B    []byte           `json:"B,omitempty"`
	BOOL *bool            `json:"BOOL,omitempty"`
	NULL *bool            `json:"NULL,omitempty"`
	M    map[string]value `json:"M,omitempty"`
	L    []value          `json:"L,omitempty"`
	SS   []string         `json:"SS,omitempty"`
	NS   []string         `json:"NS,omitempty"`
	BS   [][]byte         `json:"BS,omitempty"`
}

// item is an item, a key or an index entry: attribute name → value.
type item map[string]value

// size is the item's size as DynamoDB bills it: every attribute's name plus its value
// (developer guide, "Item sizes and formats").
func (it item) size() int {
	n := 0
	for name, v := range it {
		n += len(name) + v.size()
	}
	return n
}

// size of one value: a string or binary its bytes; a number about one byte per two
// significant digits plus one; a boolean or null one byte; a list or map 3 bytes plus one
// per element plus its elements (and a map's names); a set its elements.
func (v value) size() int {
	switch {
	case v.S != nil:
		return len(*v.S)
	case v.N != nil:
		return numberSize(*v.N)
	case v.B != nil:
		return len(v.B)
	case v.BOOL != nil, v.NULL != nil:
		return 1
	case v.M != nil:
		n := 3
		for name, e := range v.M {
			n += len(name) + e.size() + 1
		}
		return n
	case v.L != nil:
		n := 3
		for _, e := range v.L {
			n += e.size() + 1
		}
		return n
	}
	n := 0
	for _, s := range v.SS {
		n += len(s)
	}
	for _, s := range v.NS {
		n += numberSize(s)
	}
	for _, b := range v.BS {
		n += len(b)
	}
	return n
}

// numberSize: leading and trailing zeros do not count, nor do the sign, the decimal point
// or an exponent.
func numberSize(n string) int {
	if i := strings.IndexAny(n, "eE"); i >= 0 {
		n = n[:i]
	}
	digits := strings.Trim(strings.NewReplacer("-", "", "+", "", ".", "").Replace(n), "0")
	return (len(digits)+1)/2 + 1
}

// keyString identifies a key value: its type and its value (a binary in base64).
func (v value) keyString() string {
	switch {
	case v.S != nil:
		return "S:" + *v.S
	case v.N != nil:
		return "N:" + *v.N
	case v.B != nil:
		return "B:" + base64.StdEncoding.EncodeToString(v.B)
	}
	return "?"
}

// writeUnits is what writing size bytes costs: one unit per KB, at least one.
func writeUnits(size int) float64 { return math.Max(1, math.Ceil(float64(size)/1024)) }

// projectedEqual reports whether two images agree on every attribute in names (all when
// names is nil): an update that leaves an index's projection as it was does not write the
// index.
func projectedEqual(a, b item, names map[string]bool) bool {
	for _, it := range []item{a, b} {
		for name := range it {
			if names != nil && !names[name] {
				continue
			}
			if !reflect.DeepEqual(a[name], b[name]) {
				return false
			}
		}
	}
	return true
}
