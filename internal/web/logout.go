package web

import (
	"errors"
	"net/http"

	"go.uber.org/zap"

	"github.com/mailgate/caddy-mailgate/internal/session"
)

func (h *Handler) logoutPage(w http.ResponseWriter, r *http.Request) error {
	// Nobody to sign out: no question to ask.
	if h.signedInAs(r) == "" {
		http.Redirect(w, r, h.Prefix+"/logout/done", http.StatusSeeOther)
		return nil
	}
	return h.render(w, http.StatusOK, PageLogout, Data{FormToken: h.Forms.Token(w, r)})
}

// logout revokes the session, so a copy of the cookie kept elsewhere stops
// working too, and clears the cookie.
func (h *Handler) logout(w http.ResponseWriter, r *http.Request) error {
	if token := session.FindCookie(r.Header, session.CookieName(h.Secure)); token != "" {
		s, err := h.Sessions.Verify(r.Context(), token)
		switch {
		case err == nil:
			if err := h.Sessions.Revoke(r.Context(), s); err != nil {
				return fail(http.StatusServiceUnavailable, err)
			}
			h.Logger.Info("logout", zap.String("user_id", s.UserID))
		case !errors.Is(err, session.ErrInvalid) && !errors.Is(err, session.ErrRevoked):
			return fail(http.StatusServiceUnavailable, err)
		}
	}
	http.SetCookie(w, session.ClearCookie(h.Secure))
	// Post/Redirect/Get: a refresh of the answer must not post again.
	http.Redirect(w, r, h.Prefix+"/logout/done", http.StatusSeeOther)
	return nil
}

// signedOutPage is the GET end of a logout.
func (h *Handler) signedOutPage(w http.ResponseWriter, _ *http.Request) error {
	return h.render(w, http.StatusOK, PageSignedOut, Data{})
}
