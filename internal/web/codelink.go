package web

import (
	"errors"
	"net/http"

	"github.com/mailgate/caddy-mailgate/internal/directory"
	"github.com/mailgate/caddy-mailgate/internal/flow"
)

// codeLinkPage is the page a code mail's link opens: like a login link's,
// it shows a button and consumes nothing, since mail scanners follow links.
func (h *Handler) codeLinkPage(w http.ResponseWriter, r *http.Request) error {
	attempt, ok := h.guess(w, r)
	if !ok {
		return nil
	}
	defer h.settle(r, attempt)
	q := r.URL.Query()
	email, err := h.Codes.LinkAccount(r.Context(), q.Get("t"))
	if errors.Is(err, flow.ErrLinkInvalid) {
		attempt.Failed()
		return h.render(w, r, http.StatusGone, PageCodeLinkInvalid, Data{Locale: q.Get("l"), Next: h.ErrorCallbacks[q.Get("p")]})
	}
	if err != nil {
		// Logged here: Caddy would log the URI, which holds the secret.
		h.observer().Failed("reading a code's link", err)
		return h.Unavailable(w, r)
	}
	return h.render(w, r, http.StatusOK, PageConfirm, Data{
		FormToken: h.Forms.Token(w, r),
		Secret:    q.Get("t"),
		Locale:    q.Get("l"),
		Account:   directory.MaskEmail(email),
		Action:    "/login/email/link",
		Project:   q.Get("p"),
	})
}

// confirmCodeLink confirms the link: the app that asked for the code may
// now fetch it and sign the person in there. No session starts here; the
// person is told to go back to the app, with a link to its status page.
func (h *Handler) confirmCodeLink(w http.ResponseWriter, r *http.Request) error {
	attempt, ok := h.guess(w, r)
	if !ok {
		return nil
	}
	defer h.settle(r, attempt)
	next, err := h.Codes.ConfirmLink(r.Context(), r.PostFormValue("t"))
	if errors.Is(err, flow.ErrLinkInvalid) {
		attempt.Failed()
		return h.render(w, r, http.StatusGone, PageCodeLinkInvalid, Data{Locale: r.PostFormValue("l"), Next: h.ErrorCallbacks[r.PostFormValue("p")]})
	}
	if err != nil {
		return fail(http.StatusServiceUnavailable, err)
	}
	return h.render(w, r, http.StatusOK, PageCodeLinked, Data{Locale: r.PostFormValue("l"), Next: next})
}
