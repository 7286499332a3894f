package api

import (
	"context"
	"errors"
	"net/http"
)

// replayEvents publishes the domain events' dead letters again (docs/events.md): up to
// EVENTS_REPLAY_LIMIT messages per call, each sandbox's events in order. Why a message
// was kept goes to the log, not to the answer.
func (a *API) replayEvents(ctx context.Context, r *request) (reply, error) {
	if _, err := readQuery(r.ev); err != nil {
		return reply{}, err
	}
	if a.events == nil {
		return reply{}, errors.New("api: this function has no event replayer")
	}
	res, kept, err := a.events.Replay(ctx)
	if err != nil {
		return reply{}, err
	}
	for _, why := range kept {
		a.log.Warn("dead letter kept", "request_id", r.id, "reason", why)
	}
	r.outcome = "replayed"
	return reply{status: http.StatusOK, body: res}, nil
}
