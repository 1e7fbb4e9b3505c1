package caddymodule

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/mailgate/caddy-mailgate/internal/directory"
	"github.com/mailgate/caddy-mailgate/internal/flow"
	"github.com/mailgate/caddy-mailgate/internal/session"
	"github.com/mailgate/caddy-mailgate/internal/web"
)

// maxFormBytes bounds the body of every form post: an email address and two
// tokens fit many times over.
const maxFormBytes = 16 << 10

// serveEndpoint routes a request under the prefix; sub is the path after it.
func (m *Mailgate) serveEndpoint(w http.ResponseWriter, r *http.Request, sub string) error {
	m.setHSTS(w.Header())
	// The API authenticates clients itself and is not a browser form.
	if sub == "/oauth/token" {
		m.token.ServeHTTP(w, r)
		return nil
	}
	if h, ok := m.api[sub]; ok {
		h.ServeHTTP(w, r)
		return nil
	}
	// Redirects carry codes and cookies too, not only pages; the JWKS and
	// the stylesheet loosen Cache-Control for themselves.
	web.SetSecurityHeaders(w.Header())
	type route struct {
		get, post func(http.ResponseWriter, *http.Request) error
	}
	var rt route
	switch sub {
	case "/login":
		rt = route{get: m.loginPage}
	case "/login/email":
		rt = route{post: m.requestLink}
	case "/link":
		rt = route{get: m.confirmPage, post: m.redeemLink}
	case "/logout":
		rt = route{get: m.logoutPage, post: m.logout}
	case "/password":
		rt = route{post: m.setPassword}
	case "/jwks.json":
		rt = route{get: m.serveJWKS}
	case "/assets/style.css":
		rt = route{get: serveCSS}
	default:
		return caddyhttp.Error(http.StatusNotFound, nil)
	}
	switch {
	case (r.Method == http.MethodGet || r.Method == http.MethodHead) && rt.get != nil:
		return rt.get(w, r)
	case r.Method == http.MethodPost && rt.post != nil:
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
		if err := r.ParseForm(); err != nil {
			return caddyhttp.Error(http.StatusBadRequest, err)
		}
		if err := m.forms.Check(r); err != nil {
			return m.render(w, http.StatusForbidden, "bad_form", web.Data{})
		}
		return rt.post(w, r)
	}
	allow := "POST"
	if rt.get != nil {
		allow = "GET, HEAD"
		if rt.post != nil {
			allow += ", POST"
		}
	}
	w.Header().Set("Allow", allow)
	return caddyhttp.Error(http.StatusMethodNotAllowed, nil)
}

// render fills the data every page shares and writes the page.
func (m *Mailgate) render(w http.ResponseWriter, status int, page string, d web.Data) error {
	d.SiteName = m.SiteName
	d.Prefix = m.Prefix
	if !web.Supported(d.Locale) {
		d.Locale = web.DefaultLocale
	}
	if err := m.pages.Render(w, status, page, d); err != nil {
		return caddyhttp.Error(http.StatusInternalServerError, err)
	}
	return nil
}

func (m *Mailgate) loginPage(w http.ResponseWriter, r *http.Request) error {
	return m.render(w, http.StatusOK, web.PageLogin, web.Data{
		FormToken: m.forms.Token(w, r),
		Return:    flow.SafeReturn(r.URL.Query().Get("return")),
	})
}

// requestLink answers the same "check your inbox" page whether or not the
// address may log in.
func (m *Mailgate) requestLink(w http.ResponseWriter, r *http.Request) error {
	email := r.PostFormValue("email")
	d := web.Data{
		FormToken: m.forms.Token(w, r),
		Return:    flow.SafeReturn(r.PostFormValue("return")),
		Email:     email,
		Minutes:   int(m.links.TTL.Minutes()),
	}
	err := m.links.Request(r.Context(), email, d.Return, web.DefaultLocale)
	var tooLong *flow.TooLongError
	switch {
	case err == nil:
		return m.render(w, http.StatusOK, web.PageSent, d)
	case errors.Is(err, directory.ErrInvalidEmail):
		d.Error = "invalid_email"
		return m.render(w, http.StatusBadRequest, web.PageLogin, d)
	case errors.As(err, &tooLong):
		d.Error, d.Return = "return_too_long", "/"
		return m.render(w, http.StatusBadRequest, web.PageLogin, d)
	case errors.Is(err, flow.ErrDelivery):
		m.logger.Error("login mail not delivered; the link was dropped", zap.Error(err))
		return m.render(w, http.StatusServiceUnavailable, web.PageSendFailed, d)
	default:
		return caddyhttp.Error(http.StatusServiceUnavailable, err)
	}
}

// confirmPage shows a button and consumes nothing: mail scanners and link
// previews fetch links, and must not use them up. It names the account the
// link signs in, masked, so that a person who opened someone else's link
// notices.
func (m *Mailgate) confirmPage(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	email, err := m.links.Account(r.Context(), q.Get("t"))
	if errors.Is(err, flow.ErrLinkInvalid) {
		return m.render(w, http.StatusGone, web.PageInvalid, web.Data{
			FormToken: m.forms.Token(w, r), Return: "/", Locale: q.Get("l"),
		})
	}
	if err != nil {
		// Not a handler error: Caddy would log it with the request's URI,
		// which holds the link's secret.
		m.logger.Error("reading a pending link", zap.Error(err))
		w.WriteHeader(http.StatusServiceUnavailable)
		return nil
	}
	return m.render(w, http.StatusOK, web.PageConfirm, web.Data{
		FormToken: m.forms.Token(w, r),
		Secret:    q.Get("t"),
		Locale:    q.Get("l"),
		Account:   web.MaskEmail(email),
	})
}

func (m *Mailgate) redeemLink(w http.ResponseWriter, r *http.Request) error {
	login, err := m.links.Redeem(r.Context(), r.PostFormValue("t"))
	if errors.Is(err, flow.ErrLinkInvalid) {
		return m.render(w, http.StatusGone, web.PageInvalid, web.Data{
			FormToken: m.forms.Token(w, r),
			Return:    "/",
			Locale:    r.PostFormValue("l"),
		})
	}
	if err != nil {
		return caddyhttp.Error(http.StatusServiceUnavailable, err)
	}
	if login.Client != nil && login.Client.ResetPassword {
		return m.askPassword(w, r, login, "")
	}
	return m.completeLogin(w, r, login)
}

// completeLogin starts the person's session and sends them on: back to the
// page they wanted, or to the app that asked for the login.
func (m *Mailgate) completeLogin(w http.ResponseWriter, r *http.Request, login flow.Login) error {
	u := login.User
	token, expiry, err := m.sessions.Issue(u.ID)
	if err != nil {
		return caddyhttp.Error(http.StatusServiceUnavailable, err)
	}
	m.logger.Info("login", zap.String("user_id", u.ID))
	http.SetCookie(w, session.Cookie(token, expiry, m.secure, false))
	if login.Client != nil {
		return m.finishClientLogin(w, r, login)
	}
	http.Redirect(w, r, login.Return, http.StatusSeeOther)
	return nil
}

// askPassword shows the set-password page for a confirmed login. With no
// secret yet, the login is parked first (see flow.PasswordStep).
func (m *Mailgate) askPassword(w http.ResponseWriter, r *http.Request, login flow.Login, secret string) error {
	if secret == "" {
		var err error
		if secret, err = m.passwords.Begin(r.Context(), login); err != nil {
			return caddyhttp.Error(http.StatusServiceUnavailable, err)
		}
	}
	return m.render(w, http.StatusOK, web.PageSetPassword, web.Data{
		FormToken: m.forms.Token(w, r), Secret: secret, Locale: login.Locale,
	})
}

// setPassword stores the new password and continues the login. A password
// that is too short or mistyped shows the page again without using up the
// pending login.
func (m *Mailgate) setPassword(w http.ResponseWriter, r *http.Request) error {
	secret, locale := r.PostFormValue("p"), r.PostFormValue("l")
	login, err := m.passwords.Complete(r.Context(), secret, r.PostFormValue("password"), r.PostFormValue("confirm"))
	retry := func(key string) error {
		return m.render(w, http.StatusBadRequest, web.PageSetPassword, web.Data{
			FormToken: m.forms.Token(w, r), Secret: secret, Locale: locale, Error: key,
		})
	}
	switch {
	case errors.Is(err, flow.ErrPasswordTooShort):
		return retry("password_too_short")
	case errors.Is(err, flow.ErrPasswordMismatch):
		return retry("password_mismatch")
	case errors.Is(err, flow.ErrLinkInvalid):
		return m.render(w, http.StatusGone, web.PageInvalid, web.Data{FormToken: m.forms.Token(w, r), Return: "/", Locale: locale})
	case err != nil:
		return caddyhttp.Error(http.StatusServiceUnavailable, err)
	}
	m.logger.Info("password set", zap.String("user_id", login.User.ID))
	return m.completeLogin(w, r, login)
}

// finishClientLogin ends an app's login at its redirect URI, with what the
// app asked for the way it asked for it.
func (m *Mailgate) finishClientLogin(w http.ResponseWriter, r *http.Request, login flow.Login) error {
	params, err := m.finish.Params(r.Context(), login)
	if err != nil {
		return caddyhttp.Error(http.StatusServiceUnavailable, err)
	}
	c := login.Client
	if err := m.pages.WriteAuthorizeResponse(w, r, c.RedirectURI, c.ResponseMode, login.Locale, params); err != nil {
		return caddyhttp.Error(http.StatusInternalServerError, err)
	}
	return nil
}

func (m *Mailgate) logoutPage(w http.ResponseWriter, r *http.Request) error {
	return m.render(w, http.StatusOK, web.PageLogout, web.Data{FormToken: m.forms.Token(w, r)})
}

// logout revokes the session, so a copy of the cookie kept elsewhere stops
// working too, and clears the cookie.
func (m *Mailgate) logout(w http.ResponseWriter, r *http.Request) error {
	if token := session.FindCookie(r.Header, session.CookieName(m.secure)); token != "" {
		s, err := m.sessions.Verify(r.Context(), token)
		switch {
		case err == nil:
			if err := m.sessions.Revoke(r.Context(), s); err != nil {
				return caddyhttp.Error(http.StatusServiceUnavailable, err)
			}
			m.logger.Info("logout", zap.String("user_id", s.UserID))
		case !errors.Is(err, session.ErrInvalid) && !errors.Is(err, session.ErrRevoked):
			return caddyhttp.Error(http.StatusServiceUnavailable, err)
		}
	}
	http.SetCookie(w, session.ClearCookie(m.secure))
	return m.render(w, http.StatusOK, web.PageSignedOut, web.Data{})
}

func (m *Mailgate) serveJWKS(w http.ResponseWriter, _ *http.Request) error {
	h := w.Header()
	h.Set("Content-Type", "application/jwk-set+json")
	h.Set("Cache-Control", "public, max-age=300")
	// Read from the ring on every request, not copied at provisioning, so
	// the published keys follow the ring when it changes underneath.
	jwks := m.ring.JWKS()
	h.Set("Content-Length", strconv.Itoa(len(jwks)))
	_, err := w.Write(jwks)
	return err
}

func serveCSS(w http.ResponseWriter, _ *http.Request) error {
	css := web.StyleCSS()
	h := w.Header()
	h.Set("Content-Type", "text/css; charset=utf-8")
	h.Set("Cache-Control", "public, max-age=3600")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Length", strconv.Itoa(len(css)))
	_, err := w.Write(css)
	return err
}
