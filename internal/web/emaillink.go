package web

import (
	"context"
	"errors"
	"net/http"

	"github.com/mailgate/caddy-mailgate/internal/directory"
	"github.com/mailgate/caddy-mailgate/internal/flow"
)

// EmailLinks is seed 001's flow as the pages behind its default URL
// prefixes use it: invitations, password resets, and the revoke link of
// both mails.
type EmailLinks interface {
	Peek(ctx context.Context, secret string) (flow.EmailLink, error)
	Accept(ctx context.Context, secret string, use func(flow.Login) error) error
	Reset(ctx context.Context, secret, password, confirm string, use func(flow.Login) error) error
	Revoke(ctx context.Context, secret string) (flow.EmailLink, error)
}

// The pages show what a link is for and consume nothing: mail scanners
// and link previews fetch (GET and HEAD) every link in a mail. A form post
// with the page's token then uses the link.

func (h *Handler) invitePage(w http.ResponseWriter, r *http.Request) error {
	return h.emailLinkPage(w, r, flow.Invitation, PageInvite)
}

func (h *Handler) resetPage(w http.ResponseWriter, r *http.Request) error {
	return h.emailLinkPage(w, r, flow.PasswordReset, PageReset)
}

// revokePage asks the recipient of either kind of link to confirm that it
// was not for them.
func (h *Handler) revokePage(w http.ResponseWriter, r *http.Request) error {
	return h.emailLinkPage(w, r, "", PageRevoke)
}

// emailLinkPage shows page for the link in ?x= if it works and is of type
// want (any when empty). It names the account masked, as the sign-in
// confirmation does, and who sent the link.
func (h *Handler) emailLinkPage(w http.ResponseWriter, r *http.Request, want flow.EmailLinkType, page string) error {
	attempt, ok := h.guess(w, r)
	if !ok {
		return nil
	}
	defer h.settle(r, attempt)
	secret := r.URL.Query().Get("x")
	l, err := h.EmailLinks.Peek(r.Context(), secret)
	if err == nil && want != "" && l.Type != want {
		err = flow.ErrLinkInvalid
	}
	if errors.Is(err, flow.ErrLinkInvalid) {
		attempt.Failed()
		return h.emailLinkInvalid(w, r, want, "")
	}
	if err != nil {
		// Not a handler error: Caddy would log it with the request's URI,
		// which holds the link's ticket.
		h.observer().Failed("reading an email link", err)
		return h.Unavailable(w, r)
	}
	return h.render(w, r, http.StatusOK, page, Data{
		FormToken:  h.Forms.Token(w, r),
		Secret:     secret,
		Locale:     l.Locale,
		Account:    directory.MaskEmail(l.User.Email),
		Sender:     l.Sender,
		LinkType:   string(l.Type),
		SignedInAs: h.signedInAs(r),
	})
}

// acceptInvite uses an invitation: the user becomes active and is signed
// in, landing on the site. (Where the operator enables passwords, the
// password issue adds choosing one here, before the session starts.)
func (h *Handler) acceptInvite(w http.ResponseWriter, r *http.Request) error {
	attempt, ok := h.guess(w, r)
	if !ok {
		return nil
	}
	defer h.settle(r, attempt)
	err := h.EmailLinks.Accept(r.Context(), r.PostFormValue("x"), func(login flow.Login) error {
		return h.completeLogin(w, r, login)
	})
	if errors.Is(err, flow.ErrLinkInvalid) {
		attempt.Failed()
		return h.emailLinkInvalid(w, r, flow.Invitation, r.PostFormValue("l"))
	}
	return confirmFailed(err)
}

// resetPassword stores the new password, ends the user's other sessions
// and signs them in here. A password that is too short or mistyped shows
// the page again with the link unused.
func (h *Handler) resetPassword(w http.ResponseWriter, r *http.Request) error {
	return h.choosePassword(w, r, "x", PageReset, h.EmailLinks.Reset, func(locale string) error {
		return h.emailLinkInvalid(w, r, flow.PasswordReset, locale)
	})
}

// revokeLink ends a link its recipient says was not for them.
func (h *Handler) revokeLink(w http.ResponseWriter, r *http.Request) error {
	attempt, ok := h.guess(w, r)
	if !ok {
		return nil
	}
	defer h.settle(r, attempt)
	locale := r.PostFormValue("l")
	_, err := h.EmailLinks.Revoke(r.Context(), r.PostFormValue("x"))
	if errors.Is(err, flow.ErrLinkInvalid) {
		attempt.Failed()
		return h.emailLinkInvalid(w, r, "", locale)
	}
	if err != nil {
		return fail(http.StatusServiceUnavailable, err)
	}
	return h.render(w, r, http.StatusOK, PageRevoked, Data{Locale: locale})
}

// emailLinkInvalid says that an email link no longer works, what to do
// about it for its type, and offers a sign-in link: no page is a dead end.
func (h *Handler) emailLinkInvalid(w http.ResponseWriter, r *http.Request, t flow.EmailLinkType, locale string) error {
	return h.render(w, r, http.StatusGone, PageEmailLinkInvalid, Data{
		FormToken: h.Forms.Token(w, r), Return: "/", Locale: locale, LinkType: string(t), CodeLogin: h.Codes != nil,
	})
}
