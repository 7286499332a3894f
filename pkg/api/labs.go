package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/sandbox-broker/broker/pkg/api/wire"
	"github.com/sandbox-broker/broker/pkg/pool"
)

func wireProfile(p pool.Profile) wire.Profile {
	return wire.Profile{
		Lab: p.Lab, Prefix: p.Prefix, LabDurationMinutes: p.LabDurationMinutes, ExtensionMinutes: p.ExtensionMinutes,
		MaxDurationMinutes: p.MaxDurationMinutes, StudentLimit: p.StudentLimit, LowWater: p.LowWater,
		NoSandboxMessage: p.NoSandboxMessage, UpdatedAt: optionalTime(p.UpdatedAt), UpdatedBy: optional(p.UpdatedBy),
	}
}

// listProfiles shows every lab profile.
func (a *API) listProfiles(ctx context.Context, r *request) (reply, error) {
	if _, err := readQuery(r.ev); err != nil {
		return reply{}, err
	}
	profiles, err := a.broker.Profiles(ctx)
	if err != nil {
		return reply{}, err
	}
	body := wire.Profiles{Profiles: make([]wire.Profile, 0, len(profiles))}
	for _, p := range profiles {
		body.Profiles = append(body.Profiles, wireProfile(p))
	}
	return reply{status: http.StatusOK, body: body}, nil
}

// putProfile creates or replaces the profile of the body's lab and prefix.
func (a *API) putProfile(ctx context.Context, r *request) (reply, error) {
	if _, err := readQuery(r.ev); err != nil {
		return reply{}, err
	}
	var body wire.Profile
	if err := decodeBody(r, &body); err != nil {
		return reply{}, validationError(`The body must be a profile: {"lab", "prefix", "lab_duration_minutes", "extension_minutes", ` +
			`"max_duration_minutes", "student_limit", "low_water", "no_sandbox_message"}`)
	}
	p := pool.Profile{
		Lab: body.Lab, Prefix: body.Prefix, LabDurationMinutes: body.LabDurationMinutes, ExtensionMinutes: body.ExtensionMinutes,
		MaxDurationMinutes: body.MaxDurationMinutes, StudentLimit: body.StudentLimit, LowWater: body.LowWater,
		NoSandboxMessage: body.NoSandboxMessage,
	}
	if err := p.Validate(); err != nil {
		return reply{}, validationError("Invalid profile: %s", err)
	}
	saved, err := a.broker.PutProfile(ctx, p, r.admin())
	if err != nil {
		return reply{}, err
	}
	r.outcome = "saved"
	return reply{status: http.StatusOK, body: wireProfile(saved)}, nil
}

// deleteProfile removes the profile of ?lab=&prefix= (either may be absent, not both).
func (a *API) deleteProfile(ctx context.Context, r *request) (reply, error) {
	q, qErr := readQuery(r.ev, "lab", "prefix")
	if qErr != nil {
		return reply{}, qErr
	}
	lab, qErr := q.text("lab", maxTextLength)
	if qErr != nil {
		return reply{}, qErr
	}
	prefix, qErr := q.text("prefix", maxTextLength)
	if qErr != nil {
		return reply{}, qErr
	}
	if lab == "" && prefix == "" {
		return reply{}, validationError("Query parameter lab or prefix is required: the profile's key")
	}
	err := a.broker.DeleteProfile(ctx, lab, prefix)
	if errors.Is(err, pool.ErrNoProfile) {
		return reply{}, errProfileNotFound
	}
	if err != nil {
		return reply{}, err
	}
	r.outcome = "deleted"
	return reply{status: http.StatusOK, body: wire.ProfileKey{Lab: lab, Prefix: prefix}}, nil
}

// decodeBody reads the request's JSON body into v strictly: one value, no unknown fields.
func decodeBody(r *request, v any) error {
	dec := json.NewDecoder(bytes.NewReader([]byte(r.ev.Body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("more than one value")
	}
	return nil
}
