package api

import (
	"errors"
	"net/http"
	"strings"

	"github.com/mailgate/caddy-mailgate/internal/session"
)

// Me is GET {prefix}/users/me?projectId=…: an app presents a user JWT
// (Authorization: Bearer …) and learns whether it still stands, and for
// whom. A JWT checked offline against the JWKS cannot see a with_logout
// that came after it; this endpoint does, on every instance that shares
// the store.
func (h *EmailCode) Me() http.Handler {
	return h.endpoint(http.MethodGet, func(w http.ResponseWriter, r *http.Request, p *Project) *CodeError {
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || token == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="mailgate"`)
			return codeErr(http.StatusUnauthorized, "invalid_token", "send the user JWT as Authorization: Bearer <token>")
		}
		attempt, e := h.guess(w, r)
		if e != nil {
			return e
		}
		defer h.settle(r, attempt)
		u, err := h.Users.Check(r.Context(), token, p)
		if errors.Is(err, session.ErrInvalid) || errors.Is(err, session.ErrRevoked) {
			attempt.Failed()
		}
		switch {
		case errors.Is(err, session.ErrInvalid), errors.Is(err, session.ErrRevoked):
			w.Header().Set("WWW-Authenticate", `Bearer realm="mailgate", error="invalid_token"`)
			return codeErr(http.StatusUnauthorized, "invalid_token", "the token is invalid, expired, for another project, or was ended by a later login with with_logout")
		case err != nil:
			return h.failure(w, err)
		}
		WriteJSON(w, http.StatusOK, map[string]string{"id": u.ID, "email": u.Email})
		return nil
	})
}
