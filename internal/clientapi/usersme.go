package clientapi

import (
	"errors"
	"net/http"
	"strings"

	"github.com/mailgate/caddy-mailgate/internal/api"
	"github.com/mailgate/caddy-mailgate/internal/session"
)

// me is GET {prefix}/users/me?projectId=…: an app presents a user JWT
// (Authorization: Bearer …) and learns whether it still stands, and for
// whom. A JWT checked offline against the JWKS cannot see a with_logout
// that came after it; this endpoint does, on every instance that shares
// the store.
func (h *EmailCode) me(w http.ResponseWriter, r *http.Request, p *Project) *Error {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || token == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="mailgate"`)
		return ErrInvalidToken.WithHint("send the user JWT as Authorization: Bearer <token>")
	}
	attempt, e := h.guess(w, r)
	if e != nil {
		return e
	}
	defer h.settle(r, attempt)
	u, err := h.Logins.Check(r.Context(), token, p.Project)
	if errors.Is(err, session.ErrInvalid) || errors.Is(err, session.ErrRevoked) {
		attempt.Failed()
	}
	switch {
	case errors.Is(err, session.ErrInvalid), errors.Is(err, session.ErrRevoked):
		w.Header().Set("WWW-Authenticate", `Bearer realm="mailgate", error="invalid_token"`)
		return ErrInvalidToken.WithHint("the token is invalid, expired, for another project, or was ended by a later login with with_logout")
	case err != nil:
		return h.failure(w, err)
	}
	api.WriteJSON(w, http.StatusOK, map[string]string{"id": u.ID, "email": u.Email})
	return nil
}
