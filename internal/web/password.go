package web

import (
	"errors"
	"net/http"

	"github.com/mailgate/caddy-mailgate/internal/flow"
)

// askPassword parks a confirmed login (see flow.PasswordStep) and shows the
// set-password page for it.
func (h *Handler) askPassword(w http.ResponseWriter, r *http.Request, login flow.Login) error {
	secret, err := h.Passwords.Begin(r.Context(), login)
	if err != nil {
		return fail(http.StatusServiceUnavailable, err)
	}
	return h.render(w, r, http.StatusOK, PageSetPassword, Data{
		FormToken: h.Forms.Token(w, r), Secret: secret, Locale: login.Locale,
	})
}

// setPassword stores the new password and continues the login. A password
// that is too short or mistyped shows the page again without using up the
// pending login.
func (h *Handler) setPassword(w http.ResponseWriter, r *http.Request) error {
	attempt, ok := h.guess(w, r)
	if !ok {
		return nil
	}
	defer h.settle(r, attempt)
	secret, locale := r.PostFormValue("p"), r.PostFormValue("l")
	err := h.Passwords.Complete(r.Context(), secret, r.PostFormValue("password"), r.PostFormValue("confirm"), func(login flow.Login) error {
		h.observer().PasswordSet(login.User.ID)
		return h.completeLogin(w, r, login)
	})
	retry := func(key string) error {
		return h.render(w, r, http.StatusBadRequest, PageSetPassword, Data{
			FormToken: h.Forms.Token(w, r), Secret: secret, Locale: locale, Error: key,
		})
	}
	switch {
	case errors.Is(err, flow.ErrPasswordTooShort):
		return retry("password_too_short")
	case errors.Is(err, flow.ErrPasswordMismatch):
		return retry("password_mismatch")
	case errors.Is(err, flow.ErrLinkInvalid):
		attempt.Failed()
		return h.linkInvalid(w, r, locale)
	}
	return confirmFailed(err)
}
