package web

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/mailgate/caddy-mailgate/internal/directory"
	"github.com/mailgate/caddy-mailgate/internal/flow"
	"github.com/mailgate/caddy-mailgate/internal/limit"
	"github.com/mailgate/caddy-mailgate/internal/redirect"
)

func (h *Handler) loginPage(w http.ResponseWriter, r *http.Request) error {
	return h.render(w, r, http.StatusOK, PageLogin, Data{
		FormToken:  h.Forms.Token(w, r),
		Return:     redirect.SafeReturn(r.URL.Query().Get("return")),
		SignedInAs: h.signedInAs(r),
		CodeLogin:  h.Codes != nil,
		// The password form's link: see passwordlogin.go.
		PasswordLogin: h.PasswordLogin != nil,
	})
}

// requestLink answers the same "check your inbox" page whether or not the
// address may log in.
func (h *Handler) requestLink(w http.ResponseWriter, r *http.Request) error {
	if r.PostFormValue("method") == "code" && h.Codes != nil {
		return h.requestCode(w, r)
	}
	email := r.PostFormValue("email")
	d := Data{
		FormToken: h.Forms.Token(w, r),
		Return:    redirect.SafeReturn(r.PostFormValue("return")),
		Email:     email,
		Minutes:   int(h.LinkTTL.Minutes()),
		CodeLogin: h.Codes != nil,
		// The password form's link: see passwordlogin.go.
		PasswordLogin: h.PasswordLogin != nil,
	}
	who := flow.Requester{IP: limit.ClientIP(r, h.ClientIP), Agent: r.UserAgent()}
	err := h.Links.Request(r.Context(), who, email, d.Return, h.locale(r))
	var tooLong *flow.TooLongError
	var exceeded *limit.ExceededError
	switch {
	case err == nil:
		// Post/Redirect/Get: a refresh of the answer must not mail again.
		// The address travels masked, so no URL holds it whole.
		q := url.Values{"to": {directory.MaskEmail(strings.ToLower(strings.TrimSpace(email)))}, "return": {d.Return}}
		http.Redirect(w, r, h.Prefix+"/login/sent?"+q.Encode(), http.StatusSeeOther)
		return nil
	case errors.As(err, &exceeded):
		// Only the per-IP limit is told; the per-address one is silent.
		return h.tooMany(w, r, exceeded)
	case errors.Is(err, directory.ErrInvalidEmail):
		d.Error = "invalid_email"
		return h.render(w, r, http.StatusBadRequest, PageLogin, d)
	case errors.As(err, &tooLong):
		d.Error, d.Return = "return_too_long", "/"
		return h.render(w, r, http.StatusBadRequest, PageLogin, d)
	case errors.Is(err, flow.ErrDelivery):
		h.observer().Failed("login mail not delivered; the link was dropped", err)
		return h.render(w, r, http.StatusServiceUnavailable, PageSendFailed, d)
	default:
		return fail(http.StatusServiceUnavailable, err)
	}
}

// sentPage is "check your inbox", the GET end of a link request. It shows
// only a masked address; a "to" that is not one (a crafted URL) is not
// shown at all, and the visitor is sent to the login page instead.
func (h *Handler) sentPage(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	to, ok := h.maskedTo(w, r)
	if !ok {
		return nil
	}
	return h.render(w, r, http.StatusOK, PageSent, Data{
		Return:  redirect.SafeReturn(q.Get("return")),
		Email:   to,
		Minutes: int(h.LinkTTL.Minutes()),
	})
}

// isMasked reports whether s is an address as MaskEmail shows it, and not
// a whole one that a crafted URL put in its place.
func isMasked(s string) bool { return strings.Contains(s, "•••") && len(s) <= 300 }

// maskedTo is the masked address in the query's "to", for the pages that
// follow a request for a mail; a "to" that is not one sends the visitor to
// the login page instead, and ok is false.
func (h *Handler) maskedTo(w http.ResponseWriter, r *http.Request) (to string, ok bool) {
	to = r.URL.Query().Get("to")
	if !isMasked(to) {
		http.Redirect(w, r, h.Prefix+"/login", http.StatusSeeOther)
		return "", false
	}
	return to, true
}

// tooMany tells a visitor over a per-IP limit how long to wait, and what
// still works meanwhile: over requests_per_ip, the links and codes already
// mailed; over failures_per_ip, nothing is checked until the pause ends.
func (h *Handler) tooMany(w http.ResponseWriter, r *http.Request, e *limit.ExceededError) error {
	w.Header().Set("Retry-After", strconv.Itoa(limit.RetryAfterSeconds(e.RetryAfter)))
	body := "too_many_body"
	if strings.HasPrefix(e.Rule, "failures_per_ip") {
		body = "too_many_failures_body"
	}
	return h.render(w, r, http.StatusTooManyRequests, PageTooMany, Data{
		Minutes: int((e.RetryAfter + time.Minute - 1) / time.Minute),
		Error:   body,
	})
}
