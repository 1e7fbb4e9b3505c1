package caddymodule

import (
	"cmp"
	"encoding/json"
	"errors"
	"net/http"
	"slices"

	"github.com/caddyserver/caddy/v2"
)

func init() { caddy.RegisterModule(adminHealth{}) }

// adminHealth serves GET /mailgate/health on Caddy's admin endpoint: the
// detail behind each mailgate handler's public {prefix}/health (store and
// its latency, keys and their age, revocation feed lag, mail queue depth),
// which the public endpoint does not give away. Like reverseproxy's
// /reverse_proxy/upstreams, it reads the handlers that run now.
type adminHealth struct{}

// CaddyModule returns the Caddy module information.
func (adminHealth) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.mailgate",
		New: func() caddy.Module { return new(adminHealth) },
	}
}

// Routes returns the admin routes.
func (a adminHealth) Routes() []caddy.AdminRoute {
	return []caddy.AdminRoute{{Pattern: "/mailgate/health", Handler: caddy.AdminHandlerFunc(a.serveHealth)}}
}

// serveHealth answers a JSON array with a healthReport per running
// mailgate handler.
func (adminHealth) serveHealth(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet {
		return caddy.APIError{HTTPStatus: http.StatusMethodNotAllowed, Err: errors.New("method not allowed")}
	}
	reports := []healthReport{}
	for _, m := range liveHandlers() {
		reports = append(reports, m.checkHealth(r.Context()))
	}
	slices.SortFunc(reports, func(a, b healthReport) int {
		return cmp.Or(cmp.Compare(a.Realm, b.Realm), cmp.Compare(a.BaseURL, b.BaseURL))
	})
	w.Header().Set("Content-Type", "application/json")
	return json.NewEncoder(w).Encode(reports)
}

// Interface guards
var _ caddy.AdminRouter = adminHealth{}
