package web

import (
	"net/http"
)

// PageNoAccess is where an app sends a person who signed in but may not
// use it.
const PageNoAccess = "no_access"

// noAccessPage says that the account the person signed in with may not
// use the app, names it in full (it is their own session, not a link
// someone may have forwarded), and offers to sign out and sign in with
// another. ?state= is only ever a same-origin path to come back to.
func (h *Handler) noAccessPage(w http.ResponseWriter, r *http.Request) error {
	back := h.returnOf(r.URL.Query().Get("state"))
	s, err := h.sessionToEnd(r)
	if err != nil {
		return fail(http.StatusServiceUnavailable, err)
	}
	if s == nil {
		// Nobody is signed in: the question is only which account to use.
		return h.toLogin(w, r, back)
	}
	return h.render(w, r, http.StatusForbidden, PageNoAccess, Data{
		FormToken: h.Forms.Token(w, r), Email: s.Email, Return: back,
	})
}

// switchAccount ends this session (only this one) and sends the person to
// the login page, which brings them back to the state's path.
func (h *Handler) switchAccount(w http.ResponseWriter, r *http.Request) error {
	back := h.returnOf(r.PostFormValue("state"))
	if err := h.endSession(w, r); err != nil {
		return h.logoutFailed(w, r, err)
	}
	return h.toLogin(w, r, back)
}
