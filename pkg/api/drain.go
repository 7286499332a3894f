package api

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"

	"github.com/sandbox-broker/broker/internal/printable"
	"github.com/sandbox-broker/broker/pkg/api/wire"
	"github.com/sandbox-broker/broker/pkg/pool"
)

const maxDrainReasonLength = 200

func wireDrains(drains []pool.Drain) []wire.Drain {
	out := make([]wire.Drain, 0, len(drains))
	for _, d := range drains {
		out = append(out, wire.Drain{Prefix: d.Prefix, Reason: optional(d.Reason), By: optional(d.By), Since: d.Since})
	}
	return out
}

// drainState shows the drains in force and the history of drains started and ended.
func (a *API) drainState(ctx context.Context, r *request) (reply, error) {
	if _, err := readQuery(r.ev); err != nil {
		return reply{}, err
	}
	drains, history, err := a.broker.DrainState(ctx)
	if err != nil {
		return reply{}, err
	}
	return reply{status: http.StatusOK, body: wire.DrainState{Drains: wireDrains(drains), History: historyEntries(history)}}, nil
}

// startDrain takes {"prefix": "lab-a" | "", "reason": "…"} and answers once the drain is
// in force: no claim of a sandbox it covers can land any more (broker.StartDrain).
func (a *API) startDrain(ctx context.Context, r *request) (reply, error) {
	if _, err := readQuery(r.ev); err != nil {
		return reply{}, err
	}
	var body struct {
		Prefix *string `json:"prefix"`
		Reason string  `json:"reason"`
	}
	dec := json.NewDecoder(bytes.NewReader([]byte(r.ev.Body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil || dec.More() {
		return reply{}, validationError(`The body must be {"prefix": "<name prefix, or empty for all>", "reason": "<text>"}`)
	}
	switch {
	case body.Prefix == nil:
		return reply{}, validationError(`"prefix" is required ("" drains every allocation)`)
	case !printable.Text(*body.Prefix, maxTextLength):
		return reply{}, validationError("The prefix must be at most %d printable characters", maxTextLength)
	case !printable.Text(body.Reason, maxDrainReasonLength):
		return reply{}, validationError("The reason must be at most %d printable characters", maxDrainReasonLength)
	}
	d, err := a.broker.StartDrain(ctx, *body.Prefix, body.Reason, r.admin())
	if err != nil {
		return reply{}, err
	}
	return reply{status: http.StatusOK, body: wireDrains([]pool.Drain{d})[0]}, nil
}

// endDrains ends the drain of ?prefix=, or every drain without it (an empty value counts
// as absent, so the drain of "" ends with the others).
func (a *API) endDrains(ctx context.Context, r *request) (reply, error) {
	q, qErr := readQuery(r.ev, "prefix")
	if qErr != nil {
		return reply{}, qErr
	}
	prefix, qErr := q.text("prefix", maxTextLength)
	if qErr != nil {
		return reply{}, qErr
	}
	ended, err := a.broker.EndDrains(ctx, prefix, prefix == "", r.admin())
	if err != nil {
		return reply{}, err
	}
	return reply{status: http.StatusOK, body: wire.DrainsEnded{Ended: ended}}, nil
}
