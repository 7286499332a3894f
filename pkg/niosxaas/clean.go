package niosxaas

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// externalIDPrefix is how every CSP sandbox account id starts; NIOSXaaS takes the whole
// id in the account switch.
const externalIDPrefix = "identity/accounts/"

// service is one entry of the universal services listing.
type service struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

const servicesPath = "/api/universalinfra/v1/universalservices"

// Clean runs the step for the sandbox whose CSP account is externalID
// (identity/accounts/<uuid>): switch to the account, list its universal services and
// delete those named like the configured service (all when the name is empty), or in
// shadow mode only report them. It never returns an error: the Outcome says what happened,
// and a Failed one carries a short reason fit to store.
func (c *Client) Clean(ctx context.Context, externalID string) Outcome {
	uuid, ok := strings.CutPrefix(externalID, externalIDPrefix)
	if !ok || uuid == "" || strings.ContainsAny(uuid, "/?#") || strings.ContainsFunc(uuid, isSpaceOrControl) {
		return failed(nil, "invalid external id: want "+externalIDPrefix+" followed by the account uuid")
	}
	token, err := c.switchAccount(ctx, externalID)
	if err != nil {
		return failed(nil, err.Error())
	}
	var listing struct {
		Results []service `json:"results"`
	}
	if err := c.do(ctx, request{op: "list services", method: http.MethodGet, path: servicesPath, bearer: token, out: &listing}); err != nil {
		return failed(nil, err.Error())
	}
	var matching []service
	for _, s := range listing.Results {
		if c.serviceName == "" || s.Name == c.serviceName {
			matching = append(matching, s)
		}
	}
	kept := len(listing.Results) - len(matching)
	if len(matching) == 0 {
		return Outcome{Result: NoneToClean, Kept: kept}
	}
	ids := make([]string, 0, len(matching))
	if c.shadow {
		for _, s := range matching {
			c.log.Info("niosxaas shadow mode: would delete service", "external_id", externalID, "service_id", s.ID, "service_name", s.Name)
			ids = append(ids, s.ID)
		}
		return Outcome{Result: Shadow, Services: len(ids), ServiceIDs: ids, Kept: kept}
	}
	for _, s := range matching {
		if err := c.deleteService(ctx, token, s); err != nil {
			return failed(ids, fmt.Sprintf("deleted %d of %d services; %v", len(ids), len(matching), err))
		}
		c.log.Info("niosxaas deleted service", "external_id", externalID, "service_id", s.ID, "service_name", s.Name)
		ids = append(ids, s.ID)
	}
	return Outcome{Result: Cleaned, Services: len(ids), ServiceIDs: ids, Kept: kept}
}

// switchAccount returns a jwt scoped to the sandbox's account. A 401 means the shared
// session was revoked or expired early: it costs one new sign-in and one retry.
func (c *Client) switchAccount(ctx context.Context, externalID string) (string, error) {
	for retried := false; ; retried = true {
		s, err := c.session(ctx)
		if err != nil {
			return "", err
		}
		var out jwtAnswer
		err = c.do(ctx, request{
			op: "account switch", method: http.MethodPost, path: "/v2/session/account_switch",
			bearer: s.jwt, body: map[string]string{"id": externalID}, out: &out,
		})
		var se *statusError
		if !retried && errors.As(err, &se) && se.Status == http.StatusUnauthorized {
			c.reject(s)
			continue
		}
		if err != nil {
			return "", err
		}
		if out.JWT == "" {
			return "", errors.New("account switch: the answer has no jwt")
		}
		return out.JWT, nil
	}
}

func (c *Client) deleteService(ctx context.Context, token string, s service) error {
	id := s.ID[strings.LastIndex(s.ID, "/")+1:]
	if id == "" {
		return fmt.Errorf("service %q has no usable id", s.Name)
	}
	return c.do(ctx, request{
		op: "delete service " + id, method: http.MethodDelete, path: servicesPath + "/" + url.PathEscape(id),
		bearer: token, accept: []int{http.StatusOK, http.StatusNoContent, http.StatusNotFound},
	})
}

func isSpaceOrControl(r rune) bool { return r <= ' ' || r == 0x7f }
