package web

import (
	"cmp"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/mailgate/caddy-mailgate/internal/directory"
	"github.com/mailgate/caddy-mailgate/internal/flow"
	"github.com/mailgate/caddy-mailgate/internal/limit"
	"github.com/mailgate/caddy-mailgate/internal/locale"
	"github.com/mailgate/caddy-mailgate/internal/redirect"
	"github.com/mailgate/caddy-mailgate/internal/ticket"
)

// The login form's "email me a code": the code is typed on the page that
// asked for it, which works where links do not (a mail scanner that follows
// links, mail read on a phone while signing in on a laptop). The site's own
// form is the code flow's project with the empty id.

// codeCookieName holds the pending operation's id between the request and
// the code page. Like the form cookie, it has the __Host- prefix over HTTPS.
func codeCookieName(secure bool) string {
	if secure {
		return "__Host-mailgate-code"
	}
	return "mailgate-code"
}

// requestCode mails a code and sends the browser to the code page, whether
// or not the address may log in; an address over its mail limit is treated
// the same way, silently, as the link form does.
func (h *Handler) requestCode(w http.ResponseWriter, r *http.Request) error {
	email := r.PostFormValue("email")
	ret := redirect.SafeReturn(r.PostFormValue("return"))
	who := flow.Requester{IP: limit.ClientIP(r, h.ClientIP), Agent: r.UserAgent()}
	id, err := h.Codes.Start(r.Context(), flow.CodeRequest{
		Email: email, LoginURL: ret, Locale: h.locale(r), Requester: who,
	})
	var exceeded *limit.ExceededError
	if errors.As(err, &exceeded) && exceeded.Rule == "mails_per_address" {
		// As the link form does: the page must not tell, the operator's
		// log does.
		flow.ObservedIn(r.Context(), h.Observer).Limited(exceeded.Rule)
		id, err = ticket.NewSecret(), nil
	}
	d := Data{FormToken: h.Forms.Token(w, r), Return: ret, Email: email, CodeLogin: true}
	switch {
	case err == nil:
	case errors.As(err, &exceeded) && exceeded.Rule == flow.RuleWrongCodes:
		return h.codesLocked(w, r, d, exceeded)
	case errors.As(err, &exceeded):
		return h.tooMany(w, r, exceeded)
	case errors.Is(err, directory.ErrInvalidEmail):
		d.Error = "invalid_email"
		return h.render(w, r, http.StatusBadRequest, PageLogin, d)
	case errors.Is(err, flow.ErrDelivery):
		h.observer().Failed("code mail not queued", err)
		return h.render(w, r, http.StatusServiceUnavailable, PageSendFailed, d)
	default:
		return fail(http.StatusServiceUnavailable, err)
	}
	http.SetCookie(w, &http.Cookie{
		Name: codeCookieName(h.Secure), Value: id, Path: "/", MaxAge: int(flow.EmailCodeTTL.Seconds()),
		Secure: h.Secure, HttpOnly: true, SameSite: http.SameSiteStrictMode,
	})
	q := url.Values{"to": {directory.MaskEmail(strings.ToLower(strings.TrimSpace(email)))}, "return": {ret}}
	http.Redirect(w, r, h.Prefix+"/login/code?"+q.Encode(), http.StatusSeeOther)
	return nil
}

// codePage asks for the code. Like the "check your inbox" page, it shows
// only a masked address.
func (h *Handler) codePage(w http.ResponseWriter, r *http.Request) error {
	to, ok := h.maskedTo(w, r)
	if !ok {
		return nil
	}
	return h.render(w, r, http.StatusOK, PageCode, Data{
		FormToken: h.Forms.Token(w, r),
		Return:    redirect.SafeReturn(r.URL.Query().Get("return")),
		Email:     to,
		Minutes:   int(flow.EmailCodeTTL.Minutes()),
	})
}

// redeemCode checks the typed code against the pending operation and, when
// it is right, starts the session and returns the person to their page.
func (h *Handler) redeemCode(w http.ResponseWriter, r *http.Request) error {
	attempt, ok := h.guess(w, r)
	if !ok {
		return nil
	}
	defer h.settle(r, attempt)
	var id string
	if c, err := r.Cookie(codeCookieName(h.Secure)); err == nil {
		id = c.Value
	}
	login, err := h.Codes.CompleteOperation(r.Context(), "", id, r.PostFormValue("code"))
	d := Data{
		FormToken: h.Forms.Token(w, r),
		Return:    redirect.SafeReturn(r.PostFormValue("return")),
		Email:     r.PostFormValue("to"),
		Minutes:   int(flow.EmailCodeTTL.Minutes()),
	}
	if !isMasked(d.Email) {
		d.Email = "•••"
	}
	var exceeded *limit.ExceededError
	var wrong *flow.WrongCodeError
	switch {
	case errors.As(err, &wrong):
		attempt.Failed()
		d.Error = wrongCodeMessage(wrong.Left)
		return h.render(w, r, http.StatusUnprocessableEntity, PageCode, d)
	case errors.Is(err, flow.ErrCodeExpired):
		attempt.Failed()
		d.Error = "code_expired"
		return h.render(w, r, http.StatusGone, PageCode, d)
	case errors.As(err, &exceeded) && exceeded.Rule == flow.RuleWrongCodes:
		return h.codesLocked(w, r, Data{FormToken: d.FormToken, Return: d.Return}, exceeded)
	case errors.As(err, &exceeded):
		return h.tooMany(w, r, exceeded)
	case err != nil:
		return fail(http.StatusServiceUnavailable, err)
	}
	http.SetCookie(w, &http.Cookie{Name: codeCookieName(h.Secure), Path: "/", MaxAge: -1, Secure: h.Secure, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	return h.completeLogin(w, r, flow.Login{User: login.User, Return: redirect.SafeReturn(login.LoginURL), Locale: h.locale(r), Method: flow.MethodCode})
}

// wrongCodeMessage says what a wrong code leaves: more tries, one, or none
// (the person needs a new code).
func wrongCodeMessage(left int) string {
	switch left {
	case 0:
		return "code_used_up"
	case 1:
		return "code_wrong_last_try"
	}
	return "code_wrong"
}

// codesLocked tells a person whose address is over its wrong codes until
// when, and offers the link form instead: no page is a dead end.
func (h *Handler) codesLocked(w http.ResponseWriter, r *http.Request, d Data, e *limit.ExceededError) error {
	w.Header().Set("Retry-After", strconv.Itoa(limit.RetryAfterSeconds(e.RetryAfter)))
	d.CodeLogin = false
	// A date as well as a time: the pause may end tomorrow.
	d.Until = locale.When(h.now().Add(e.RetryAfter).In(cmp.Or(h.Zone, time.UTC)), h.locale(r))
	return h.render(w, r, http.StatusTooManyRequests, PageCodeLocked, d)
}
