package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/sandbox-broker/broker/pkg/api/wire"
	"github.com/sandbox-broker/broker/pkg/broker"
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

func wireReservation(r pool.Reservation) wire.Reservation {
	return wire.Reservation{
		ID: r.ID, Lab: r.Lab, Client: r.Client, Prefix: r.Prefix, Seats: r.Seats, StartsAt: r.StartsAt, EndsAt: r.EndsAt,
		LeadMinutes: int(r.LeadSeconds / 60), Overflow: r.Overflow, State: string(r.State), SetAside: r.SetAside,
		Coverage: r.Coverage, Shortfall: r.Shortfall,
	}
}

func wireCapacity(c broker.Capacity) wire.Capacity {
	return wire.Capacity{
		Prefix: c.Prefix, Seats: c.Seats, At: c.At, Available: c.Available, PromisedToOthers: c.PromisedToOthers,
		HeldByOthers: c.HeldByOthers, PendingDeletion: c.PendingDeletion, Shortfall: c.Shortfall, Coverable: c.Coverable,
	}
}

// listReservations shows every reservation, the ended ones until they are dropped.
func (a *API) listReservations(ctx context.Context, r *request) (reply, error) {
	if _, err := readQuery(r.ev); err != nil {
		return reply{}, err
	}
	all, err := a.broker.Reservations(ctx)
	if err != nil {
		return reply{}, err
	}
	body := wire.Reservations{Reservations: make([]wire.Reservation, 0, len(all))}
	for _, res := range all {
		body.Reservations = append(body.Reservations, wireReservation(res))
	}
	return reply{status: http.StatusOK, body: body}, nil
}

// createReservation checks the body's reservation against the pool and creates it; an
// uncoverable one is refused with the numbers unless ?force=true.
func (a *API) createReservation(ctx context.Context, r *request) (reply, error) {
	q, qErr := readQuery(r.ev, "force")
	if qErr != nil {
		return reply{}, qErr
	}
	force := q["force"] == "true"
	if v, ok := q["force"]; ok && v != "true" && v != "false" {
		return reply{}, validationError("Query parameter force must be true or false")
	}
	var body wire.Reservation
	if err := decodeBody(r, &body); err != nil || body.ID != "" || body.State != "" || body.SetAside != 0 || body.Coverage != "" {
		return reply{}, validationError(`The body must be {"lab", "client", "prefix", "seats", "starts_at", "ends_at", "lead_minutes", "overflow"}`)
	}
	res := pool.Reservation{Lab: body.Lab, Client: body.Client, Prefix: body.Prefix, Seats: body.Seats, StartsAt: body.StartsAt,
		EndsAt: body.EndsAt, LeadSeconds: int64(body.LeadMinutes) * 60, Overflow: body.Overflow}
	if err := res.Validate(); err != nil {
		return reply{}, validationError("Invalid reservation: %s", err)
	}
	created, c, err := a.broker.CreateReservation(ctx, res, force, r.admin())
	var ue *broker.UncoverableError
	if errors.As(err, &ue) {
		return reply{}, &Error{http.StatusConflict, CodeReservationUncoverable, fmt.Sprintf(
			"%d seats of prefix %q cannot be covered at %s: %d available, %d promised to other reservations, %d pending deletion "+
				"(which cover nothing): %d short. Add accounts, lower the seats, or create it with force=true",
			c.Seats, c.Prefix, time.Unix(c.At, 0).UTC().Format(time.RFC3339), c.Available, c.PromisedToOthers, c.PendingDeletion, c.Shortfall), 0}
	}
	if err != nil {
		return reply{}, err
	}
	r.outcome = "created"
	return reply{status: http.StatusCreated, body: wire.ReservationCreated{Reservation: wireReservation(created), Capacity: wireCapacity(c)}}, nil
}

// cancelReservation cancels the reservation {id}; the reservations job returns its
// set-aside within a minute.
func (a *API) cancelReservation(ctx context.Context, r *request) (reply, error) {
	if _, err := readQuery(r.ev); err != nil {
		return reply{}, err
	}
	id := r.ev.PathParameters["id"]
	if !broker.ValidID(id) {
		return reply{}, validationError("The reservation ID must be %s", broker.IDSyntax)
	}
	res, err := a.broker.CancelReservation(ctx, id, r.admin())
	if errors.Is(err, pool.ErrNoReservation) {
		return reply{}, errReservationNotFound
	}
	if err != nil {
		return reply{}, err
	}
	r.outcome = "cancelled"
	return reply{status: http.StatusOK, body: wireReservation(res)}, nil
}

// checkCapacity is the dry run: ?prefix=&seats=&starts_at=&ends_at=&lead_minutes=.
func (a *API) checkCapacity(ctx context.Context, r *request) (reply, error) {
	q, qErr := readQuery(r.ev, "prefix", "seats", "starts_at", "ends_at", "lead_minutes")
	if qErr != nil {
		return reply{}, qErr
	}
	for name, what := range map[string]string{"seats": "how many seats", "starts_at": "unix seconds", "ends_at": "unix seconds"} {
		if err := q.need(name, what); err != nil {
			return reply{}, err
		}
	}
	prefix, qErr := q.text("prefix", maxTextLength)
	if qErr != nil {
		return reply{}, qErr
	}
	seats, qErr := q.integer("seats", 0, 1, pool.MaxReservationSeats)
	if qErr != nil {
		return reply{}, qErr
	}
	lead, qErr := q.integer("lead_minutes", 0, 0, int(pool.MaxReservationLead/time.Minute))
	if qErr != nil {
		return reply{}, qErr
	}
	var at [2]int64
	for i, name := range []string{"starts_at", "ends_at"} {
		v, qErr := q.integer(name, 0, 1, 1<<40)
		if qErr != nil {
			return reply{}, qErr
		}
		at[i] = int64(v)
	}
	res := pool.Reservation{Lab: "-", Prefix: prefix, Seats: seats, StartsAt: at[0], EndsAt: at[1], LeadSeconds: int64(lead) * 60}
	if err := res.Validate(); err != nil {
		return reply{}, validationError("Invalid window: %s", err)
	}
	c, err := a.broker.CheckCapacity(ctx, res)
	if err != nil {
		return reply{}, err
	}
	return reply{status: http.StatusOK, body: wireCapacity(c)}, nil
}
