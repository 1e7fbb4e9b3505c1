package web

import (
	"context"
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
	return h.choosePassword(w, r, "p", PageSetPassword, h.Passwords.Complete, func(locale string) error {
		return h.linkInvalid(w, r, locale)
	})
}

// choosePassword serves the post of a page where a person chooses a
// password over a one-time secret (the form field named field): complete
// stores it and goes on with the login it returns; a password that is too
// short or mistyped shows page again with the secret unused; a secret that
// no longer works is invalid's answer, and counts as a failed one.
func (h *Handler) choosePassword(w http.ResponseWriter, r *http.Request, field, page string,
	complete func(ctx context.Context, secret, password, confirm string, use func(flow.Login) error) error,
	invalid func(locale string) error) error {
	attempt, ok := h.guess(w, r)
	if !ok {
		return nil
	}
	defer h.settle(r, attempt)
	secret, locale := r.PostFormValue(field), r.PostFormValue("l")
	err := complete(r.Context(), secret, r.PostFormValue("password"), r.PostFormValue("confirm"), func(login flow.Login) error {
		flow.ObservedIn(r.Context(), h.Observer).PasswordSet(login.User.ID)
		return h.completeLogin(w, r, login)
	})
	retry := func(key string) error {
		return h.render(w, r, http.StatusBadRequest, page, Data{
			FormToken: h.Forms.Token(w, r), Secret: secret, Locale: locale, Error: key,
		})
	}
	var weak *flow.PasswordRulesError
	switch {
	case errors.As(err, &weak):
		// The first rule broken: its sentence says what to do.
		return retry("password_" + string(weak.Rules[0]))
	case errors.Is(err, flow.ErrPasswordMismatch):
		return retry("password_mismatch")
	case errors.Is(err, flow.ErrLinkInvalid):
		attempt.Failed()
		return invalid(locale)
	}
	return confirmFailed(err)
}
