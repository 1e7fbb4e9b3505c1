package web

import (
	"errors"
	"net/http"

	"github.com/mailgate/caddy-mailgate/internal/flow"
	"github.com/mailgate/caddy-mailgate/internal/session"
)

func (h *Handler) logoutPage(w http.ResponseWriter, r *http.Request) error {
	s, err := h.sessionToEnd(r)
	if err != nil {
		return h.logoutFailed(w, r, err)
	}
	// Nobody to sign out: no question to ask.
	if s == nil {
		http.Redirect(w, r, h.Prefix+"/logout/done", http.StatusSeeOther)
		return nil
	}
	return h.render(w, r, http.StatusOK, PageLogout, Data{FormToken: h.Forms.Token(w, r), Account: s.Email})
}

// logout revokes the session, so a copy of the cookie kept elsewhere stops
// working too, and clears the cookie. When the session cannot be checked
// or revoked, nothing changes and the person is told so.
func (h *Handler) logout(w http.ResponseWriter, r *http.Request) error {
	if err := h.endSession(w, r); err != nil {
		return h.logoutFailed(w, r, err)
	}
	// Post/Redirect/Get: a refresh of the answer must not post again.
	http.Redirect(w, r, h.Prefix+"/logout/done", http.StatusSeeOther)
	return nil
}

// endSession ends the visitor's session, if it has one, on every instance,
// drops it from its user's list and clears the cookie. On an error nothing
// changed: the cookie stays, since its session would work again once the
// store is back.
func (h *Handler) endSession(w http.ResponseWriter, r *http.Request) error {
	s, err := h.sessionToEnd(r)
	if err != nil {
		return err
	}
	if s != nil {
		if err := h.Sessions.Revoke(r.Context(), s); err != nil {
			return err
		}
		flow.ObservedIn(r.Context(), h.Observer).SignedOut(s.UserID, false)
		h.forgetSession(r, s)
	}
	http.SetCookie(w, session.ClearCookie(h.Secure))
	return nil
}

// sessionToEnd returns the visitor's valid session, nil when there is none
// (no cookie, or one already refused), or an error when the revocations or
// the users cannot be read: then nobody can say whether the cookie still
// admits someone, so a sign-out cannot be claimed.
func (h *Handler) sessionToEnd(r *http.Request) (*session.Session, error) {
	token := session.FindCookie(r.Header, session.CookieName(h.Secure))
	if token == "" {
		return nil, nil
	}
	s, err := h.Sessions.Verify(r.Context(), token)
	if errors.Is(err, session.ErrInvalid) || errors.Is(err, session.ErrRevoked) {
		return nil, nil
	}
	return s, err
}

// logoutFailed says that the sign-out did not happen (503), and changes
// nothing: the cookie stays, since the session it holds was not revoked and
// would work again once the store is back. The page offers to try again.
// It is answered here, not left to the server's error pages, because a
// generic error page does not say what matters: you are still signed in.
func (h *Handler) logoutFailed(w http.ResponseWriter, r *http.Request, err error) error {
	h.observer().Failed("sign-out refused: the session could not be revoked", err)
	return h.render(w, r, http.StatusServiceUnavailable, PageLogoutFailed, Data{FormToken: h.Forms.Token(w, r)})
}

// signedOutPage is the GET end of a logout.
func (h *Handler) signedOutPage(w http.ResponseWriter, r *http.Request) error {
	return h.render(w, r, http.StatusOK, PageSignedOut, Data{})
}
