package caddymodule

import (
	"net/http"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/mailgate/caddy-mailgate/internal/api"
	"github.com/mailgate/caddy-mailgate/internal/web"
)

// unavailable answers a request that cannot be served now because the
// store, the storage or the keys cannot be read: 503 with Retry-After. A
// site with handle_errors gets the error to answer its own way; otherwise a
// browser gets a page that says so (page: a navigation, or any of
// mailgate's own pages) and anything else JSON, since Caddy would answer a
// bare status, which tells a person nothing. The error is logged here then,
// as Caddy would have logged it.
func (m *Mailgate) unavailable(w http.ResponseWriter, r *http.Request, err error, page bool) error {
	h := w.Header()
	h.Set("Retry-After", web.RetryAfterUnavailable)
	h.Set("Cache-Control", "no-store")
	if handlesErrors(r) {
		return caddyhttp.Error(http.StatusServiceUnavailable, err)
	}
	// The path only: a query under the prefix may hold a link's secret.
	m.logger.Error("request refused with 503: mailgate's state cannot be read now",
		zap.String("path", r.URL.Path), zap.Error(err))
	if page || isNavigation(r) {
		return m.pages.Unavailable(w, r)
	}
	api.WriteJSON(w, http.StatusServiceUnavailable, apiError{
		Error:   "temporarily_unavailable",
		Message: "mailgate cannot check sessions right now; try again after Retry-After seconds",
	})
	return nil
}
