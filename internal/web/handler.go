package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/mailgate/caddy-mailgate/internal/flow"
	"github.com/mailgate/caddy-mailgate/internal/limit"
	"github.com/mailgate/caddy-mailgate/internal/locale"
	"github.com/mailgate/caddy-mailgate/internal/session"
)

// Links is the mailed-link flow as the pages use it.
type Links interface {
	Request(ctx context.Context, who flow.Requester, email, returnPath, locale string) error
	Account(ctx context.Context, secret string) (string, error)
	Redeem(ctx context.Context, secret string, use func(flow.Login) error) error
}

// Codes is the login by mailed code: the form's "email me a code", and
// the confirmation of the links that come with an app's codes (seed 003's
// send_link).
type Codes interface {
	Start(ctx context.Context, r flow.CodeRequest) (string, error)
	CompleteOperation(ctx context.Context, project, id, code string) (flow.CodeLogin, error)
	LinkAccount(ctx context.Context, secret string) (string, error)
	ConfirmLink(ctx context.Context, secret string) (string, error)
}

// Sessions starts, checks and ends sessions.
type Sessions interface {
	IssueWith(userID string, o session.IssueOptions) (token string, expiry time.Time, err error)
	Verify(ctx context.Context, token string) (*session.Session, error)
	Revoke(ctx context.Context, s *session.Session) error
}

// Passwords is the set-password step of a resetPassword login.
type Passwords interface {
	Begin(ctx context.Context, login flow.Login) (string, error)
	Complete(ctx context.Context, secret, password, confirm string, use func(flow.Login) error) error
}

// ClientFinisher makes what an app's login ends with.
type ClientFinisher interface {
	Params(ctx context.Context, login flow.Login) (url.Values, error)
}

// Handler serves the browser pages under the prefix: login, link
// confirmation, set password, logout, and the JWKS and stylesheet. It
// declares only what it needs; caddymodule builds it and mounts it.
type Handler struct {
	Pages *Pages
	Forms Forms
	Links Links
	// Codes, if set, offers login by mailed code and confirms code links.
	Codes Codes
	// ErrorCallbacks are the apps' error pages by project id: a code link
	// that no longer works sends the person back there.
	ErrorCallbacks map[string]string
	Sessions       Sessions
	Passwords      Passwords
	// EmailLinks serves the pages of invitations and password resets.
	EmailLinks EmailLinks
	Finish     ClientFinisher
	// JWKS returns the published keys; it is called per request, so the
	// answer follows the key ring. JWKSMaxAge is how long apps may cache
	// it: shorter than a new key is published before it signs.
	JWKS       func(ctx context.Context) []byte
	JWKSMaxAge time.Duration
	// LinkTTL is how long a mailed link lives, for the "check your inbox"
	// page.
	LinkTTL  time.Duration
	SiteName string
	// Locale is the site's language: that of the pages and of the form's
	// mails for a visitor whose Accept-Language names none mailgate writes,
	// or for everyone when Negotiate is off. Empty: locale.Default.
	Locale string
	// Negotiate lets each visitor's Accept-Language pick the locale.
	Negotiate bool
	// Prefix is where the pages live, such as /.mailgate.
	Prefix string
	// Secure is whether the site is served over HTTPS: cookie names and
	// flags follow it.
	Secure bool
	// ClientIP is the request's client IP as the server resolved it
	// (trusted proxies only; nil: the peer's address): limits count per
	// IP, and mails repeat it.
	ClientIP func(r *http.Request) string
	// Failures limits wrong link and password-step secrets per client IP.
	Failures limit.Failures
	// Observer is told of logins, sign-outs, passwords set, the mails a
	// limit silently stopped, and the failures a page only shows as
	// such. Nil: nobody is told.
	Observer flow.Observer
	// Now is the clock pages tell times by; nil is time.Now.
	Now func() time.Time
	// Zone is the site's time zone, in which pages tell times; nil is UTC.
	Zone *time.Location
	// Account, if set, serves the signed-in person's own pages: the
	// profile, the no-access page and the operator dashboard.
	Account *Account
	// PasswordLogin, if set, offers a password sign-in beside the mailed
	// link (password_login on).
	PasswordLogin *PasswordLogin

	mux *http.ServeMux
}

func (h *Handler) observer() flow.Observer { return flow.Observed(h.Observer) }

func (h *Handler) now() time.Time {
	if h.Now == nil {
		return time.Now()
	}
	return h.Now()
}

// maxFormBytes bounds the body of every form post: an email address and two
// tokens fit many times over.
const maxFormBytes = 16 << 10

// Mount builds the routes; call it once, after setting the fields.
func (h *Handler) Mount() {
	h.mux = http.NewServeMux()
	p := h.Prefix
	// A GET pattern matches HEAD too. The mux answers a path with no
	// pattern for the method with 405 and Allow, and an unknown path with
	// 404.
	h.handle("GET "+p+"/login", h.loginPage)
	h.handle("POST "+p+"/login/email", h.form(h.requestLink))
	h.handle("GET "+p+"/login/sent", h.sentPage)
	h.handle("GET "+p+"/link", h.confirmPage)
	h.handle("POST "+p+"/link", h.form(h.redeemLink))
	h.handle("GET "+p+"/login/email/link", h.codeLinkPage)
	h.handle("POST "+p+"/login/email/link", h.form(h.confirmCodeLink))
	h.handle("GET "+p+"/login/code", h.codePage)
	h.handle("POST "+p+"/login/code", h.form(h.redeemCode))
	h.handle("GET "+p+"/logout", h.logoutPage)
	h.handle("POST "+p+"/logout", h.sameOriginForm(h.logout))
	h.handle("GET "+p+"/logout/done", h.signedOutPage)
	h.handle("POST "+p+"/password", h.form(h.setPassword))
	// {$}: these paths end in "/" (seed 001's prefixes end ".../?x="), and
	// a pattern that does would match everything under it.
	h.handle("GET "+p+invitePath+"{$}", h.invitePage)
	h.handle("POST "+p+invitePath+"{$}", h.form(h.acceptInvite))
	h.handle("GET "+p+pwresetPath+"{$}", h.resetPage)
	h.handle("POST "+p+pwresetPath+"{$}", h.form(h.resetPassword))
	h.handle("GET "+p+revokePath+"{$}", h.revokePage)
	h.handle("POST "+p+revokePath+"{$}", h.form(h.revokeLink))
	h.handle("GET "+p+"/jwks.json", h.serveJWKS)
	h.handle("GET "+p+"/assets/style.css", serveCSS)
	h.handle("GET "+p+"/assets/busy.js", serveBusyJS)
	if h.Account != nil {
		h.handle("GET "+p+"/no-access-callback", h.noAccessPage)
		h.handle("POST "+p+"/no-access-callback", h.form(h.switchAccount))
		h.handle("GET "+p+"/profile", h.profilePage)
		h.handle("POST "+p+"/profile/sign-out-everywhere", h.form(h.signOutEverywhere))
		h.handle("POST "+p+"/profile/password", h.form(h.changePassword))
		h.handle("GET "+p+dashboardPath, h.dashboardPage)
		h.handle("POST "+p+dashboardPath+"/status", h.form(h.dashboardStatus))
		h.handle("POST "+p+dashboardPath+"/link", h.form(h.dashboardLink))
	}
	if h.PasswordLogin != nil {
		h.mountPasswordLogin()
	}
}

// Error is a failure the pages leave to the server's error handling (so an
// operator's error pages apply): its status and the cause, for the log.
type Error struct {
	Status int
	Err    error
}

func (e *Error) Error() string { return fmt.Sprintf("%d: %v", e.Status, e.Err) }
func (e *Error) Unwrap() error { return e.Err }

func fail(status int, err error) error { return &Error{Status: status, Err: err} }

// errSlot carries an endpoint's error past http.ServeMux, whose handlers
// return nothing.
type errSlot struct{ err error }

type errSlotKey struct{}

func (h *Handler) handle(pattern string, fn func(http.ResponseWriter, *http.Request) error) {
	h.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		r.Context().Value(errSlotKey{}).(*errSlot).err = fn(w, r)
	})
}

// Serve answers a request under the prefix. An *Error return is for the
// caller to turn into its server's error response.
func (h *Handler) Serve(w http.ResponseWriter, r *http.Request) error {
	// Redirects carry codes and cookies too, not only pages; the JWKS and
	// the stylesheet loosen Cache-Control for themselves.
	SetSecurityHeaders(w.Header())
	slot := &errSlot{}
	h.mux.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), errSlotKey{}, slot)))
	return slot.err
}

// RetryAfterUnavailable is how long a 503 tells clients to wait, in
// seconds: a Redis that restarts or a storage that recovers is usually back
// within it.
const RetryAfterUnavailable = "60"

// Unavailable answers a browser's request that cannot be served now (the
// store or the storage cannot be read) with a page that says so, 503 with
// Retry-After: a blank answer tells a person nothing.
func (h *Handler) Unavailable(w http.ResponseWriter, r *http.Request) error {
	SetSecurityHeaders(w.Header())
	w.Header().Set("Retry-After", RetryAfterUnavailable)
	return h.render(w, r, http.StatusServiceUnavailable, PageUnavailable, Data{})
}

// form guards a POST: a bounded body, parsed, from this origin with a form
// token mailgate minted, which is then renewed (single use).
func (h *Handler) form(fn func(http.ResponseWriter, *http.Request) error) func(http.ResponseWriter, *http.Request) error {
	return h.post(h.Forms.Check, func(w http.ResponseWriter, r *http.Request) error {
		return fn(w, h.Forms.Renew(w, r))
	})
}

// sameOriginForm guards a POST that any page of the site may send, without
// a form token: the app's own "Sign out" button posts straight to logout.
// A cross-site page cannot, and what a forged same-site post could do,
// signing someone out, needs no secret to protect it.
func (h *Handler) sameOriginForm(fn func(http.ResponseWriter, *http.Request) error) func(http.ResponseWriter, *http.Request) error {
	return h.post(h.Forms.SameOrigin, fn)
}

// post reads a bounded form body and hands it to fn if check accepts the
// request, and answers "this form has expired" (403) if not.
func (h *Handler) post(check func(*http.Request) error, fn func(http.ResponseWriter, *http.Request) error) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
		if err := r.ParseForm(); err != nil {
			return fail(http.StatusBadRequest, err)
		}
		if err := check(r); err != nil {
			return h.render(w, r, http.StatusForbidden, "bad_form", Data{})
		}
		return fn(w, r)
	}
}

// render fills the data every page shares and writes the page. A page
// that knows its locale (a mailed link's, in the mail's language) says so
// in d; every other page is in the visitor's.
func (h *Handler) render(w http.ResponseWriter, r *http.Request, status int, page string, d Data) error {
	d.SiteName = h.SiteName
	d.Prefix = h.Prefix
	if !locale.Has(d.Locale) {
		d.Locale = h.locale(r)
	}
	if err := h.Pages.Render(w, status, page, d); err != nil {
		return fail(http.StatusInternalServerError, err)
	}
	return nil
}

// locale is the language of the pages and mails that answer r: the
// visitor's Accept-Language among the supported locales, or the site's.
func (h *Handler) locale(r *http.Request) string {
	site := h.Locale
	if !locale.Has(site) {
		site = locale.Default
	}
	if !h.Negotiate {
		return site
	}
	return locale.Negotiate(r.Header.Get("Accept-Language"), site)
}

// signedInAs returns the address of the visitor's valid session, or "" when
// there is none (or it cannot be checked: the page then just says nothing).
func (h *Handler) signedInAs(r *http.Request) string {
	token := session.FindCookie(r.Header, session.CookieName(h.Secure))
	if token == "" {
		return ""
	}
	s, err := h.Sessions.Verify(r.Context(), token)
	if err != nil {
		return ""
	}
	return s.Email
}

// guess counts an attempt at a secret against the request's client IP
// (failures_per_ip) before the secret is looked at, so that guesses sent at
// once cannot all be tried before any is counted. Over the limit it answers
// "too many attempts" itself and reports false. A store that cannot count
// is a 503, written here rather than returned: Caddy would log a handler
// error with the URI, which may hold a link's secret. The caller marks a
// wrong secret with Failed and ends with settle.
func (h *Handler) guess(w http.ResponseWriter, r *http.Request) (*limit.Attempt, bool) {
	a, err := h.Failures.TryIP(r.Context(), limit.ClientIP(r, h.ClientIP))
	var exceeded *limit.ExceededError
	switch {
	case errors.As(err, &exceeded):
		if err := h.tooMany(w, r, exceeded); err != nil {
			h.observer().Failed("rendering the too-many page", err)
		}
		return nil, false
	case err != nil:
		h.observer().Failed("counting an attempt at a secret", err)
		if err := h.Unavailable(w, r); err != nil {
			h.observer().Failed("rendering the unavailable page", err)
		}
		return nil, false
	}
	return a, true
}

// settle gives an attempt back unless its secret was wrong.
func (h *Handler) settle(r *http.Request, a *limit.Attempt) {
	if err := a.Done(context.WithoutCancel(r.Context())); err != nil {
		h.observer().Failed("giving back an attempt at a secret", err)
	}
}
