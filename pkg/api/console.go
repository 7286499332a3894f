package api

import (
	"context"
	"net/http"

	"github.com/sandbox-broker/broker/pkg/console"
)

var errNoSuchAsset = &Error{http.StatusNotFound, CodeNotFound, "No such console asset", 0}

// consolePage is GET /console: the operator console's page, never cached. It is public:
// the page holds no data, and asks the operator for the admin token the API then checks.
func (a *API) consolePage(_ context.Context, r *request) (reply, error) {
	if _, err := readQuery(r.ev); err != nil {
		return reply{}, err
	}
	return reply{status: http.StatusOK, contentType: console.PageContentType, text: console.Default().Page(),
		headers: consoleHeaders(console.PageCacheControl)}, nil
}

// consoleAsset is GET /console/{asset}: a script or style under its content-hashed name,
// cached for good.
func (a *API) consoleAsset(_ context.Context, r *request) (reply, error) {
	if _, err := readQuery(r.ev); err != nil {
		return reply{}, err
	}
	asset, ok := console.Default().Asset(r.ev.PathParameters["asset"])
	if !ok {
		return reply{}, errNoSuchAsset
	}
	return reply{status: http.StatusOK, contentType: asset.ContentType, text: asset.Body,
		headers: consoleHeaders(console.AssetCacheControl)}, nil
}

func consoleHeaders(cacheControl string) map[string]string {
	return map[string]string{"Content-Security-Policy": console.ContentSecurityPolicy, "Cache-Control": cacheControl}
}
