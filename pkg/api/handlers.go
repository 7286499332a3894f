package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/sandbox-broker/broker/pkg/broker"
	"github.com/sandbox-broker/broker/pkg/obs"
	"github.com/sandbox-broker/broker/pkg/pool"
)

// allocationBody is the answer of POST /v1/allocate (upstream-compatible field names and
// types: unix seconds as integers, absent optional fields as null).
type allocationBody struct {
	SandboxID     string  `json:"sandbox_id"`
	Name          string  `json:"name"`
	ExternalID    string  `json:"external_id"`
	AllocatedAt   int64   `json:"allocated_at"`
	ExpiresAt     int64   `json:"expires_at"`
	TrackName     *string `json:"track_name"`
	SFDCAccountID *string `json:"sfdc_account_id"`
}

// sandboxBody is the answer of GET /v1/sandboxes/{id} and of POST .../extend.
type sandboxBody struct {
	SandboxID        string  `json:"sandbox_id"`
	Name             string  `json:"name"`
	ExternalID       string  `json:"external_id"`
	Status           string  `json:"status"`
	AllocatedToTrack string  `json:"allocated_to_track"`
	AllocatedAt      int64   `json:"allocated_at"`
	ExpiresAt        int64   `json:"expires_at"`
	TrackName        *string `json:"track_name"`
	SFDCAccountID    *string `json:"sfdc_account_id"`
}

func studentView(s pool.Sandbox) sandboxBody {
	return sandboxBody{
		SandboxID: s.ID, Name: s.Name, ExternalID: s.ExternalID, Status: string(s.Status), AllocatedToTrack: s.Owner,
		AllocatedAt: s.AllocatedAt, ExpiresAt: s.ExpiresAt, TrackName: optional(s.TrackName), SFDCAccountID: optional(s.SFDCAccountID),
	}
}

// deletionBody is the answer of POST /v1/sandboxes/{id}/mark-for-deletion.
type deletionBody struct {
	SandboxID           string `json:"sandbox_id"`
	Status              string `json:"status"`
	DeletionRequestedAt int64  `json:"deletion_requested_at"`
}

// allocate gives the student a sandbox: 201 for a new allocation, 200 for a replay of the
// same (student, idempotency key) (decision on docs/upstream.md D21), with Location either way.
func (a *API) allocate(ctx context.Context, r *request) (reply, error) {
	req, err := allocateRequest(r.ev)
	if err != nil {
		return reply{}, err
	}
	r.student = req.Student
	req.Client, req.ClientCap, req.RequestID = r.client, r.clientCap, r.id

	start := time.Now()
	alloc, allocErr := a.broker.Allocate(ctx, req)
	outcome := allocationOutcome(alloc, allocErr)
	a.metrics.Allocation(outcome, time.Since(start))
	r.outcome = string(outcome)
	if allocErr != nil {
		return reply{}, allocErr
	}
	r.sandboxID = alloc.SandboxID
	status := http.StatusOK
	if alloc.Created {
		status = http.StatusCreated
	}
	o := alloc.Owner
	return reply{
		status: status,
		body: allocationBody{
			SandboxID: o.SandboxID, Name: o.Name, ExternalID: o.ExternalID, AllocatedAt: o.AllocatedAt, ExpiresAt: o.ExpiresAt,
			TrackName: optional(o.TrackName), SFDCAccountID: optional(o.SFDCAccountID),
		},
		location: sandboxLocation(o.SandboxID),
	}, nil
}

func allocationOutcome(alloc broker.Allocation, err error) obs.AllocationOutcome {
	switch {
	case err == nil && alloc.Created:
		return obs.AllocationCreated
	case err == nil:
		return obs.AllocationReplay
	case errors.Is(err, broker.ErrNoSandbox):
		return obs.AllocationNoSandbox
	case errors.Is(err, broker.ErrStudentLimit), errors.Is(err, broker.ErrClientLimit):
		return obs.AllocationLimit
	case errors.Is(err, broker.ErrBusy), errors.Is(err, pool.ErrThrottled):
		return obs.AllocationBusy
	default:
		return obs.AllocationError
	}
}

// getSandbox shows the student its sandbox, also after release until it is deleted.
func (a *API) getSandbox(ctx context.Context, r *request) (reply, error) {
	id, holder, err := r.sandboxAndHolder()
	if err != nil {
		return reply{}, err
	}
	s, sErr := a.broker.Sandbox(ctx, id, holder)
	if sErr != nil {
		return reply{}, sErr
	}
	return reply{status: http.StatusOK, body: studentView(s)}, nil
}

// markForDeletion is the student's release. A repeat by the owner answers the same 200
// with the stored deletion time (docs/upstream.md D11), so a retried deallocation script succeeds.
func (a *API) markForDeletion(ctx context.Context, r *request) (reply, error) {
	id, holder, err := r.sandboxAndHolder()
	if err != nil {
		return reply{}, err
	}
	s, relErr := a.broker.Release(ctx, id, holder, r.id)
	if relErr != nil {
		return reply{}, relErr
	}
	r.outcome = "released"
	return reply{status: http.StatusOK, body: deletionBody{SandboxID: s.ID, Status: string(s.Status), DeletionRequestedAt: s.DeletionRequestedAt}}, nil
}

// extend moves the owner's expires_at on by LAB_EXTENSION_HOURS, up to
// MAX_LAB_DURATION_HOURS after allocation; the answer is the sandbox as GET shows it.
func (a *API) extend(ctx context.Context, r *request) (reply, error) {
	id, holder, err := r.sandboxAndHolder()
	if err != nil {
		return reply{}, err
	}
	s, extErr := a.broker.Extend(ctx, id, holder, r.id)
	switch {
	case errors.Is(extErr, broker.ErrWrongStatus):
		return reply{}, fmt.Errorf("%w: %w", errNotExtendable, extErr)
	case extErr != nil:
		return reply{}, extErr
	}
	r.outcome = "extended"
	return reply{status: http.StatusOK, body: studentView(s)}, nil
}

// allocateRequest reads the allocation headers: the student ID and the optional lab
// slug, name prefix and idempotency key.
func allocateRequest(ev *events.APIGatewayProxyRequest) (broker.AllocateRequest, *Error) {
	var req broker.AllocateRequest
	var err *Error
	if req.Student, err = studentID(ev.Headers, ev.MultiValueHeaders); err != nil {
		return broker.AllocateRequest{}, err
	}
	for _, h := range []struct {
		name string
		max  int
		into *string
	}{
		{HeaderTrackName, maxTextLength, &req.TrackName},
		{HeaderNamePrefix, maxTextLength, &req.NamePrefix},
		{HeaderIdempotencyKey, maxIDLength, &req.IdempotencyKey},
	} {
		if *h.into, err = textHeader(ev.Headers, ev.MultiValueHeaders, h.name, h.max); err != nil {
			return broker.AllocateRequest{}, err
		}
	}
	return req, nil
}

// sandboxRequest reads the {id} path parameter and the student ID.
func sandboxRequest(ev *events.APIGatewayProxyRequest) (id, student string, err *Error) {
	if student, err = studentID(ev.Headers, ev.MultiValueHeaders); err != nil {
		return "", "", err
	}
	id = ev.PathParameters["id"]
	if !broker.ValidID(id) {
		return "", "", validationError("The sandbox ID must be %s", broker.IDSyntax)
	}
	return id, student, nil
}

// sandboxAndHolder is sandboxRequest, noting both for the request log; the student is
// the calling client's (pool.Holder).
func (r *request) sandboxAndHolder() (string, pool.Holder, error) {
	id, student, err := sandboxRequest(r.ev)
	if err != nil {
		return "", pool.Holder{}, err
	}
	r.student, r.sandboxID = student, id
	return id, pool.Holder{Client: r.client, Student: student}, nil
}

// healthz is the static liveness answer.
func (a *API) healthz(context.Context, *request) (reply, error) {
	return reply{status: http.StatusOK, body: map[string]any{"status": "healthy", "timestamp": a.now().Unix()}}, nil
}

// readyTimeout keeps /readyz well inside a health checker's timeout.
const readyTimeout = 3 * time.Second

// readyz answers 200 when the pool's table answers. The 503 says so without the cause,
// which goes to the log.
func (a *API) readyz(ctx context.Context, _ *request) (reply, error) {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	if err := a.ready(ctx); err != nil {
		return reply{}, fmt.Errorf("%w: %w", errNotReady, err)
	}
	return reply{status: http.StatusOK, body: map[string]any{
		"status": "ready", "timestamp": a.now().Unix(), "checks": map[string]string{"dynamodb": "ok"},
	}}, nil
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func sandboxLocation(id string) string { return "/v1/sandboxes/" + url.PathEscape(id) }
