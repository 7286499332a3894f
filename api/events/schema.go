// Package eventschema holds the JSON Schemas of the broker's domain events: one document,
// events.v1.json, whose definitions named by a detail-type ("sandbox.allocated") are the
// event types and the others their parts. The CDK stack registers one schema per type
// (For) in the stack's schema registry; the tests validate every event they produce.
package eventschema

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// Version is the schemas' version, in the document's name and in every event's detail.
const Version = "1"

//go:embed events.v1.json
var document []byte

type doc struct {
	Schema      string                     `json:"$schema"`
	Title       string                     `json:"title"`
	Description string                     `json:"description"`
	Definitions map[string]json.RawMessage `json:"definitions"`
}

// Types lists the detail-types the document defines, sorted.
func Types() ([]string, error) {
	var d doc
	if err := json.Unmarshal(document, &d); err != nil {
		return nil, fmt.Errorf("eventschema: events.v1.json: %w", err)
	}
	var out []string
	for name := range d.Definitions {
		if strings.Contains(name, ".") {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out, nil
}

// For is the schema of one detail-type as a document of its own (JSON Schema draft 4, as
// the EventBridge schema registry takes it): the type's definition as its root, with
// every definition beside it for the references.
func For(detailType string) ([]byte, error) {
	var d doc
	if err := json.Unmarshal(document, &d); err != nil {
		return nil, fmt.Errorf("eventschema: events.v1.json: %w", err)
	}
	if _, ok := d.Definitions[detailType]; !ok || !strings.Contains(detailType, ".") {
		return nil, fmt.Errorf("eventschema: no event type %q", detailType)
	}
	return json.Marshal(map[string]any{
		"$schema":     d.Schema,
		"title":       detailType + " v" + Version,
		"definitions": d.Definitions,
		"allOf":       []any{map[string]string{"$ref": "#/definitions/" + detailType}},
	})
}
