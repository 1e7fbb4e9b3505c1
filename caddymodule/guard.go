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
)

// guard is the hot path, crossed by every proxied request: find the
// session cookie, verify it (a cache hit after its first request), take
// mailgate's cookies out of the request, replace the identity headers and
// set the placeholders, then pass the request on.
// Anything else is refused, and the upstream is never reached.
func (m *Mailgate) guard(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
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
		m.decisions.unavailable.Inc()
		return m.unavailable(w, r, err, false)
	}
	m.refresh(w, s)
	id := s.Data.(*identity)
	assertion := ""
	if m.assertions != nil {
		if assertion, err = m.assertions.value(s, id); err != nil {
			// The upstream may rely on it: fail closed.
			return m.unavailable(w, r, err, false)
		}
	}
	session.StripOwnCookies(r.Header, m.secure)
	m.headers.strip(r.Header)
	m.headers.set(r.Header, id, assertion)
	repl := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	repl.Set("http.auth.user.id", id.userID)
	repl.Set("http.auth.user.email", id.userEmail)
	m.decisions.allowed.Inc()
	return next.ServeHTTP(w, r)
}

// refresh sets the cookie of a session in use anew, with a new inactivity
// deadline, once a minute when session_idle is on; otherwise it costs a
// comparison. A refresh that fails leaves the session as it is, still
// valid until its deadline, and is logged: the request goes on.
func (m *Mailgate) refresh(w http.ResponseWriter, s *session.Session) {
	renewal, err := m.sessions.Refresh(s)
	if err != nil {
		m.logger.Warn("refreshing a session for session_idle", zap.Error(err))
	}
	if renewal != nil {
		renewal.SetCookie(w.Header(), m.secure)
	}
}

// unauthenticated sends a browser to the login page, keeping where it was
// going, and answers anything else with 401. A cookie that failed is cleared
// so the browser stops sending it.
//
// A site with handle_errors gets the 401 as an error, as it gets the
// guard's 503, to answer it its own way; the headers set here stay. Caddy
// answers an error that no handle_errors route matches with its status and
// no body, so the JSON body is written here for a site without any.
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
		m.decisions.redirected.Inc()
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
	m.decisions.refused.Inc()
	h.Set("WWW-Authenticate", m.challenge)
	if handlesErrors(r) {
		return caddyhttp.Error(http.StatusUnauthorized, errUnauthenticated)
	}
	api.WriteJSON(w, http.StatusUnauthorized, apiError{
		Error:   "unauthenticated",
		Message: "A valid mailgate session is required.",
		Login:   m.loginURL,
	})
	return nil
}

// errUnauthenticated is the guard's 401 to handle_errors, whose
// {http.error.message} it is.
var errUnauthenticated = errors.New("a valid mailgate session is required")

// handlesErrors reports whether the server that r came to has handle_errors
// routes.
func handlesErrors(r *http.Request) bool {
	srv, ok := r.Context().Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server)
	return ok && srv.Errors != nil && len(srv.Errors.Routes) > 0
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
