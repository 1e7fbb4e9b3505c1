package caddymodule

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/mailgate/caddy-mailgate/internal/api"
	"github.com/mailgate/caddy-mailgate/internal/flow"
	"github.com/mailgate/caddy-mailgate/internal/session"
	"github.com/mailgate/caddy-mailgate/internal/web"
)

// ServeHTTP serves mailgate's own endpoints under the prefix and guards
// everything else: the upstream is reached only with a verified session.
func (m *Mailgate) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if p := r.URL.Path; strings.HasPrefix(p, m.Prefix) && (len(p) == len(m.Prefix) || p[len(m.Prefix)] == '/') {
		return m.serveLogged(w, r, p[len(m.Prefix):])
	}
	token := session.FindCookie(r.Header, session.CookieName(m.secure))
	if token == "" {
		return m.unauthenticated(w, r, false)
	}
	s, err := m.sessions.Verify(r.Context(), token)
	if errors.Is(err, session.ErrInvalid) || errors.Is(err, session.ErrRevoked) {
		return m.unauthenticated(w, r, true)
	}
	if err != nil {
		// The revocation list cannot be read: fail closed.
		return caddyhttp.Error(http.StatusServiceUnavailable, err)
	}
	id := s.Data.(*identity)
	m.headers.strip(r.Header)
	m.headers.set(r.Header, id)
	repl := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	repl.Set("http.auth.user.id", id.userID)
	repl.Set("http.auth.user.email", id.userEmail)
	return next.ServeHTTP(w, r)
}

// serveEndpoint routes a request under the prefix: the server-to-server API
// authenticates its clients itself; everything else is a browser page.
func (m *Mailgate) serveEndpoint(w http.ResponseWriter, r *http.Request, sub string) error {
	m.setHSTS(w.Header())
	if sub == "/oauth/token" {
		m.token.ServeHTTP(w, r)
		return nil
	}
	if h, ok := m.api[sub]; ok {
		h.ServeHTTP(w, r)
		return nil
	}
	var we *web.Error
	if err := m.pages.Serve(w, r); errors.As(err, &we) {
		return caddyhttp.Error(we.Status, we.Err)
	} else if err != nil {
		return caddyhttp.Error(http.StatusInternalServerError, err)
	}
	return nil
}

// unauthenticated sends a browser to the login page, keeping where it was
// going, and answers anything else with 401. A cookie that failed is cleared
// so the browser stops sending it.
func (m *Mailgate) unauthenticated(w http.ResponseWriter, r *http.Request, badCookie bool) error {
	if badCookie {
		http.SetCookie(w, session.ClearCookie(m.secure))
	}
	if m.logger.Core().Enabled(zap.DebugLevel) {
		m.logger.Debug("no valid session", zap.String("uri", r.RequestURI), zap.Bool("cookie_present", badCookie))
	}
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	m.setHSTS(h)
	if isNavigation(r) {
		loc := m.loginURL
		// A return path over the bound would only be refused at the login
		// form; the person lands on the home page instead.
		if ret := r.URL.RequestURI(); len(ret) <= flow.MaxReturn {
			loc += "?return=" + url.QueryEscape(ret)
		}
		h.Set("Location", loc)
		w.WriteHeader(http.StatusFound)
		return nil
	}
	h.Set("WWW-Authenticate", m.challenge)
	api.WriteJSON(w, http.StatusUnauthorized, apiError{
		Error:   "unauthenticated",
		Message: "A valid mailgate session is required.",
		Login:   m.loginURL,
	})
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

// apiError is the JSON body of the guard's 401 to a client that is not a
// browser loading a page.
type apiError struct {
	Error   string `json:"error"`
	Message string `json:"message"`
	Login   string `json:"login_url,omitempty"`
}

// isNavigation tells a browser loading a page from an API call: only those
// are redirected to the login page.
func isNavigation(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	for _, a := range r.Header.Values("Accept") {
		if strings.Contains(a, "text/html") {
			return true
		}
	}
	return false
}
