// Package eventcheck holds the tests' events to their schemas: each event, as EventBridge
// delivers it to a target (or the local stack writes it), against the schema of its
// detail-type as the stack registers it (api/events, eventschema.For).
package eventcheck

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"

	eventschema "github.com/sandbox-broker/broker/api/events"
)

var (
	once    sync.Once
	schemas map[string]*jsonschema.Schema
	loadErr error
)

func load() {
	types, err := eventschema.Types()
	if err != nil {
		loadErr = err
		return
	}
	schemas = map[string]*jsonschema.Schema{}
	c := jsonschema.NewCompiler()
	for _, ty := range types {
		raw, err := eventschema.For(ty)
		if err != nil {
			loadErr = err
			return
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
		if err != nil {
			loadErr = err
			return
		}
		if err := c.AddResource(ty+".json", doc); err != nil {
			loadErr = err
			return
		}
		if schemas[ty], err = c.Compile(ty + ".json"); err != nil {
			loadErr = fmt.Errorf("eventcheck: schema of %s: %w", ty, err)
			return
		}
	}
}

// Validate checks one event (a JSON object with detail-type and detail) against the
// schema of its detail-type.
func Validate(event []byte) error {
	once.Do(load)
	if loadErr != nil {
		return loadErr
	}
	var head struct {
		DetailType string `json:"detail-type"`
	}
	if err := json.Unmarshal(event, &head); err != nil {
		return err
	}
	s := schemas[head.DetailType]
	if s == nil {
		return fmt.Errorf("eventcheck: no schema for detail-type %q", head.DetailType)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(event))
	if err != nil {
		return err
	}
	if err := s.Validate(inst); err != nil {
		return fmt.Errorf("%s does not match its schema: %v", head.DetailType, err)
	}
	return nil
}
