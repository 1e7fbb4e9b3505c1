package caddymodule

import (
	"errors"
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/mailgate/caddy-mailgate/internal/flow"
	"github.com/mailgate/caddy-mailgate/internal/web"
)

// ServeHTTP serves mailgate's own endpoints under the prefix and guards
// everything else: the upstream is reached only with a verified session.
func (m *Mailgate) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if p := r.URL.Path; strings.HasPrefix(p, m.Prefix) && (len(p) == len(m.Prefix) || p[len(m.Prefix)] == '/') {
		return m.serveLogged(w, r)
	}
	return m.guard(w, r, next)
}

// serveEndpoint routes a request under the prefix to the contract whose
// routes have its path: the server-to-server API, the client-side API, or
// else the pages, which answer the 404 of a path nobody serves.
func (m *Mailgate) serveEndpoint(w http.ResponseWriter, r *http.Request) error {
	m.warnForeignHost(r)
	m.setHSTS(w.Header())
	// Who asked, for the audit trail: the flows' observer reads it.
	r = r.WithContext(flow.WithActor(r.Context(), flow.Actor{IP: clientIP(r)}))
	if r.URL.Path == m.Prefix+"/health" {
		return m.serveHealth(w, r)
	}
	w = m.recordSessions(w, r)
	for _, contract := range [...]*http.ServeMux{m.api, m.clientAPI} {
		if _, pattern := contract.Handler(r); pattern != "" {
			contract.ServeHTTP(w, r)
			return nil
		}
	}
	var we *web.Error
	if err := m.pages.Serve(w, r); errors.As(err, &we) && we.Status == http.StatusServiceUnavailable {
		return m.unavailable(w, r, we.Err, true)
	} else if errors.As(err, &we) {
		return caddyhttp.Error(we.Status, we.Err)
	} else if err != nil {
		return caddyhttp.Error(http.StatusInternalServerError, err)
	}
	return nil
}

// setHSTS marks every answer of mailgate's own, over HTTPS, with HSTS, so
// that a browser never again sends the session cookie's site in the clear.
// Subdomains are the operator's decision, not mailgate's.
func (m *Mailgate) setHSTS(h http.Header) {
	if m.secure {
		h.Set("Strict-Transport-Security", "max-age=31536000")
	}
}

// clientIP is Caddy's resolved client IP: the peer, or what a trusted proxy
// (trusted_proxies) says, never a raw X-Forwarded-For.
func clientIP(r *http.Request) string {
	ip, _ := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string)
	return ip
}
