package cspfake

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"strings"
	"time"
)

// Account is one account as the fake serves it in a listing.
type Account struct {
	AccountType   string `json:"account_type"`
	State         string `json:"state"`
	ID            string `json:"id"` // "identity/accounts/<uuid>"; deletes match its last segment
	Name          string `json:"name"`
	CSPID         int64  `json:"csp_id,omitempty"` // 0 leaves csp_id out
	CreatedAt     string `json:"created_at,omitempty"`
	SFDCAccountID string `json:"sfdc_account_id,omitempty"`

	// Raw, when set, is served verbatim instead of the fields above, so
	// fixtures keep odd JSON (numbers as strings, nulls, missing fields)
	// exactly as written. ID should still be set for deletes to find it.
	Raw json.RawMessage `json:"-"`
}

// UUID is the last segment of ID, the key of DELETE /sandbox/accounts/{uuid}.
func (a Account) UUID() string {
	return a.ID[strings.LastIndex(a.ID, "/")+1:]
}

// generateEpoch anchors generated created_at values, so a local stack
// restarted with the same seed lists the same accounts.
var generateEpoch = time.Date(2025, 10, 6, 8, 0, 0, 0, time.UTC)

// Generate returns n active sandbox accounts named "<prefix>-0001",
// "<prefix>-0002", … with the prefixes taken round-robin (each prefix
// numbered on its own; "lab" when prefixes is empty). The output depends on
// n and prefixes only, so IDs are stable across runs. Call it once for a
// whole pool: two calls reuse the same csp_id values.
func Generate(n int, prefixes []string) []Account {
	if len(prefixes) == 0 {
		prefixes = []string{"lab"}
	}
	counts := make(map[string]int, len(prefixes))
	out := make([]Account, 0, max(n, 0))
	for i := range max(n, 0) {
		prefix := prefixes[i%len(prefixes)]
		counts[prefix]++
		name := fmt.Sprintf("%s-%04d", prefix, counts[prefix])
		sum := sha256.Sum256([]byte("cspfake/" + name))
		out = append(out, Account{
			AccountType:   "sandbox",
			State:         "active",
			ID:            "identity/accounts/" + uuidFrom(sum),
			Name:          name,
			CSPID:         3_000_001 + int64(i),
			CreatedAt:     generateEpoch.Add(time.Duration(i)*time.Minute + time.Duration(sum[20])*time.Millisecond).Format(time.RFC3339Nano),
			SFDCAccountID: fmt.Sprintf("0015g%010X", uint64(sum[24])<<32|uint64(sum[25])<<24|uint64(sum[26])<<16|uint64(sum[27])<<8|uint64(sum[28])),
		})
	}
	return out
}

// Hostile returns active sandbox entries that a broker must never adopt, each with its
// own uuid and csp_id (apart from Generate's), named "lab-a-bad-…" so that a broker that
// adopted one would hand it to the usual "lab" prefix. They are what a CSP was seen to
// list: a 300 KB sfdc_account_id (past DynamoDB's 400 KB item limit with the rest of a
// record, well before it), 64 KB of junk before identity/accounts/<uuid>, and names that
// a shell acts on (the upstream client writes the name unquoted into the sandbox_env.sh
// that a lab sources).
func Hostile() []Account {
	hostile := []struct{ name, sfdc, idPrefix string }{
		{name: "lab-a-bad-sfdc", sfdc: strings.Repeat("0015g00000AbCdE", 300<<10/15)},
		{name: "lab-a-bad-prefix", idPrefix: strings.Repeat("junk/", 64<<10/5)},
		{name: "lab-a-bad-$(touch /tmp/sandbox-broker-pwned)"},
		{name: "lab-a-bad-`id`;x"},
		{name: "lab-a-bad two words"},
	}
	out := make([]Account, 0, len(hostile))
	for i, h := range hostile {
		sum := sha256.Sum256([]byte(fmt.Sprintf("cspfake/hostile/%d", i)))
		out = append(out, Account{
			AccountType: "sandbox", State: "active",
			ID:   h.idPrefix + "identity/accounts/" + uuidFrom(sum),
			Name: h.name, CSPID: 4_000_001 + int64(i), CreatedAt: generateEpoch.Format(time.RFC3339),
			SFDCAccountID: h.sfdc,
		})
	}
	return out
}

// uuidFrom formats 16 bytes of a hash as a version-4-shaped UUID.
func uuidFrom(sum [32]byte) string {
	b := sum[:16]
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// LoadFixture reads a listing captured in the CSP's own shape,
// {"results": [...]}. Every entry keeps its raw JSON; the typed fields are
// filled where the JSON allows, so deletes can find the entry by uuid.
func LoadFixture(path string) ([]Account, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cspfake: load fixture: %w", err)
	}
	var doc struct {
		Results []json.RawMessage `json:"results"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("cspfake: load fixture %s: %w", path, err)
	}
	if doc.Results == nil {
		return nil, fmt.Errorf("cspfake: load fixture %s: no \"results\" list", path)
	}
	out := make([]Account, 0, len(doc.Results))
	for _, raw := range doc.Results {
		out = append(out, accountFromRaw(raw))
	}
	return out, nil
}

func accountFromRaw(raw json.RawMessage) Account {
	a := Account{Raw: raw}
	var m map[string]any
	if json.Unmarshal(raw, &m) != nil {
		return a
	}
	str := func(k string) string { s, _ := m[k].(string); return s }
	a.AccountType, a.State, a.ID, a.Name = str("account_type"), str("state"), str("id"), str("name")
	a.CreatedAt, a.SFDCAccountID = str("created_at"), str("sfdc_account_id")
	if f, ok := m["csp_id"].(float64); ok && f == math.Trunc(f) {
		a.CSPID = int64(f)
	}
	return a
}
