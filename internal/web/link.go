package web

import (
	"errors"
	"net/http"
	"net/url"

	"github.com/mailgate/caddy-mailgate/internal/directory"
	"github.com/mailgate/caddy-mailgate/internal/flow"
	"github.com/mailgate/caddy-mailgate/internal/session"
)

// confirmPage shows a button and consumes nothing: mail scanners and link
// previews fetch links, and must not use them up. It names the account the
// link signs in, masked, so that a person who opened someone else's link
// notices.
func (h *Handler) confirmPage(w http.ResponseWriter, r *http.Request) error {
	attempt, ok := h.guess(w, r)
	if !ok {
		return nil
	}
	defer h.settle(r, attempt)
	q := r.URL.Query()
	email, err := h.Links.Account(r.Context(), q.Get("t"))
	if errors.Is(err, flow.ErrLinkInvalid) {
		attempt.Failed()
		return h.linkInvalid(w, r, q.Get("l"))
	}
	if err != nil {
		// Not a handler error: Caddy would log it with the request's URI,
		// which holds the link's secret.
		h.observer().Failed("reading a pending link", err)
		return h.Unavailable(w, r)
	}
	return h.render(w, r, http.StatusOK, PageConfirm, Data{
		FormToken:  h.Forms.Token(w, r),
		Secret:     q.Get("t"),
		Locale:     q.Get("l"),
		Account:    directory.MaskEmail(email),
		SignedInAs: h.signedInAs(r),
	})
}

func (h *Handler) redeemLink(w http.ResponseWriter, r *http.Request) error {
	attempt, ok := h.guess(w, r)
	if !ok {
		return nil
	}
	defer h.settle(r, attempt)
	err := h.Links.Redeem(r.Context(), r.PostFormValue("t"), func(login flow.Login) error {
		if login.Client != nil && login.Client.ResetPassword {
			return h.askPassword(w, r, login)
		}
		return h.completeLogin(w, r, login)
	})
	if errors.Is(err, flow.ErrLinkInvalid) {
		attempt.Failed()
		return h.linkInvalid(w, r, r.PostFormValue("l"))
	}
	return confirmFailed(err)
}

// confirmFailed is the answer to a confirmation that failed with the link
// still usable: the status a page chose, or 503 for the store or the
// storage failing; nil stays nil.
func confirmFailed(err error) error {
	if err == nil {
		return nil
	}
	status := http.StatusServiceUnavailable
	if e := (*Error)(nil); errors.As(err, &e) {
		status = e.Status
	}
	return fail(status, err)
}

// completeLogin starts the person's session and sends them on: back to the
// page they wanted, or to the app that asked for the login, with what the
// app asked for the way it asked for it. Everything that can fail for want
// of the store comes before the cookie is set, so such a failure leaves no
// session behind (and the link usable, see flow.MagicLink.Redeem).
func (h *Handler) completeLogin(w http.ResponseWriter, r *http.Request, login flow.Login) error {
	u := login.User
	token, expiry, err := h.Sessions.IssueWith(u.ID, session.IssueOptions{Method: string(login.Method)})
	if err != nil {
		return fail(http.StatusServiceUnavailable, err)
	}
	h.observer().TokenIssued(flow.TokenSession)
	var params url.Values
	if login.Client != nil {
		if params, err = h.Finish.Params(r.Context(), login); err != nil {
			return fail(http.StatusServiceUnavailable, err)
		}
	}
	ctx := r.Context()
	if login.Client != nil {
		// The login ends at an app: the audit trail names it.
		a := flow.ActorOf(ctx)
		a.Client = login.Client.ClientID
		ctx = flow.WithActor(ctx, a)
	}
	flow.ObservedIn(ctx, h.Observer).LoginDone(u.ID, login.Method)
	http.SetCookie(w, session.Cookie(token, expiry, h.Secure, false))
	c := login.Client
	if c == nil {
		http.Redirect(w, r, login.Return, http.StatusSeeOther)
		return nil
	}
	if err := h.Pages.WriteAuthorizeResponse(w, c.RedirectURI, c.ResponseMode, login.Locale, params); err != nil {
		return fail(http.StatusInternalServerError, err)
	}
	return nil
}

// linkInvalid says that a link no longer works and offers a new one, or a
// code where the site offers codes: no page is a dead end.
func (h *Handler) linkInvalid(w http.ResponseWriter, r *http.Request, locale string) error {
	flow.ObservedIn(r.Context(), h.Observer).LoginFailed(flow.MethodLink, flow.LinkDead)
	return h.render(w, r, http.StatusGone, PageInvalid, Data{
		FormToken: h.Forms.Token(w, r), Return: "/", Locale: locale, CodeLogin: h.Codes != nil,
	})
}
