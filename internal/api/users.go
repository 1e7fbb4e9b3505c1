package api

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/mailgate/caddy-mailgate/internal/admin"
	"github.com/mailgate/caddy-mailgate/internal/directory"
	"github.com/mailgate/caddy-mailgate/internal/flow"
)

// UserAdmin manages users (admin.Users): the API decodes, checks the
// caller's scope and answers; what a change means is admin's.
type UserAdmin interface {
	Create(ctx context.Context, n directory.NewUser, by string) (directory.User, error)
	Get(ctx context.Context, id string) (directory.User, error)
	Find(ctx context.Context, email string) (directory.User, error)
	Update(ctx context.Context, id string, c admin.Change, by string) (directory.User, error)
	Delete(ctx context.Context, id, by string) error
}

// UsersEndpoint is the users API under {prefix}/api/v1/users: create, read, change
// and delete users, with the scopes users:read and users:write. Its errors
// are the RFC 6749 shape of the rest of the API (WriteError).
type UsersEndpoint struct {
	Auth *Authenticator
	// URL is {base_url}{prefix}/api/v1/users: what proofs name for the
	// collection, and with "/" and the id, for a user; the Location of a
	// created user.
	URL   string
	Admin UserAdmin
	// Observer is told of failures the caller only sees as 503. Nil:
	// nobody is told.
	Observer flow.Observer
}

// UserView is a user as the API shows it: never the password hash.
type UserView struct {
	ID       string `json:"id"`
	Email    string `json:"email"`
	Username string `json:"username"`
	Name     string `json:"name"`
	// Status is invited, active or disabled.
	Status string `json:"status"`
	// Locale is the language of the mails to the user; empty: the site's.
	Locale  string    `json:"locale"`
	Created time.Time `json:"created"`
	// SignedUp is null while the user is invited.
	SignedUp *time.Time `json:"signed_up"`
}

// ViewOf is u as the API shows it; the command line prints the same.
func ViewOf(u directory.User) UserView {
	v := UserView{ID: u.ID, Email: u.Email, Username: u.Username, Name: u.Name, Status: u.Status, Locale: u.Locale, Created: u.Created}
	if !u.SignedUp.IsZero() {
		v.SignedUp = &u.SignedUp
	}
	return v
}

type createUserRequest struct {
	Email    string `json:"email"`
	Name     string `json:"name"`
	Username string `json:"username"`
	Locale   string `json:"locale"`
}

type patchUserRequest struct {
	Name   *string `json:"name"`
	Status *string `json:"status"`
	Locale *string `json:"locale"`
}

// Create is POST {prefix}/api/v1/users: 201 with Location and the user,
// who is invited until they sign up.
func (h *UsersEndpoint) Create(w http.ResponseWriter, r *http.Request) {
	client, ok := h.authenticate(w, r, h.URL, ScopeUsersWrite)
	if !ok {
		return
	}
	var req createUserRequest
	if !decodeUsers(w, r, &req) {
		return
	}
	if req.Email == "" {
		WriteError(w, ErrUnprocessable.WithHint("email is required"))
		return
	}
	u, err := h.Admin.Create(r.Context(), directory.NewUser{Email: req.Email, Name: req.Name, Username: req.Username, Locale: req.Locale}, by(client))
	if err != nil {
		h.fail(w, "users: creating a user", err)
		return
	}
	w.Header().Set("Location", h.URL+"/"+url.PathEscape(u.ID))
	WriteJSON(w, http.StatusCreated, ViewOf(u))
}

// Get is GET {prefix}/api/v1/users/{userId}.
func (h *UsersEndpoint) Get(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("userId")
	if _, ok := h.authenticate(w, r, h.userURL(id), ScopeUsersRead); !ok {
		return
	}
	h.answer(w, "users: reading a user")(h.Admin.Get(r.Context(), id))
}

// Find is GET {prefix}/api/v1/users?email=…: the user with that address,
// or 404. The API lists no users: that is the operator's command.
func (h *UsersEndpoint) Find(w http.ResponseWriter, r *http.Request) {
	if _, ok := h.authenticate(w, r, h.URL, ScopeUsersRead); !ok {
		return
	}
	q := r.URL.Query()
	if len(q) != 1 || len(q["email"]) != 1 || q.Get("email") == "" {
		WriteError(w, ErrUnprocessable.WithHint("give exactly one query parameter, email"))
		return
	}
	h.answer(w, "users: finding a user")(h.Admin.Find(r.Context(), q.Get("email")))
}

// Patch is PATCH {prefix}/api/v1/users/{userId} {name?, status?, locale?}:
// disabling ends every session, token, link and code of the user.
func (h *UsersEndpoint) Patch(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("userId")
	client, ok := h.authenticate(w, r, h.userURL(id), ScopeUsersWrite)
	if !ok {
		return
	}
	var req patchUserRequest
	if !decodeUsers(w, r, &req) {
		return
	}
	c := admin.Change{Name: req.Name, Status: req.Status, Locale: req.Locale}
	h.answer(w, "users: changing a user")(h.Admin.Update(r.Context(), id, c, by(client)))
}

// Delete is DELETE {prefix}/api/v1/users/{userId}: 204, and the address may
// sign up again as a new user.
func (h *UsersEndpoint) Delete(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("userId")
	client, ok := h.authenticate(w, r, h.userURL(id), ScopeUsersWrite)
	if !ok {
		return
	}
	if err := h.Admin.Delete(r.Context(), id, by(client)); err != nil {
		h.fail(w, "users: deleting a user", err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}

func (h *UsersEndpoint) userURL(id string) string { return h.URL + "/" + url.PathEscape(id) }

func (h *UsersEndpoint) authenticate(w http.ResponseWriter, r *http.Request, url, scope string) (*Client, bool) {
	client, aerr := h.Auth.Authenticate(r, url, scope)
	if aerr != nil {
		WriteError(w, aerr)
		return nil, false
	}
	return client, true
}

// by names the client in the operator's audit line.
func by(c *Client) string { return "client " + c.ID }

// answer writes the user, or the error that kept it from being found or
// changed.
func (h *UsersEndpoint) answer(w http.ResponseWriter, what string) func(directory.User, error) {
	return func(u directory.User, err error) {
		if err != nil {
			h.fail(w, what, err)
			return
		}
		WriteJSON(w, http.StatusOK, ViewOf(u))
	}
}

// fail maps what admin and the directory refused to the API's errors; what
// is left is a store that failed, which the operator is told of.
func (h *UsersEndpoint) fail(w http.ResponseWriter, what string, err error) {
	var invalid *admin.InvalidError
	switch {
	case errors.As(err, &invalid):
		WriteError(w, ErrUnprocessable.WithHint(invalid.Error()))
	case errors.Is(err, directory.ErrInvalidEmail):
		WriteError(w, ErrUnprocessable.WithHint("email: not a valid address"))
	case errors.Is(err, directory.ErrInvalidUsername):
		WriteError(w, ErrUnprocessable.WithHint("username: 1 to 40 lower-case letters, digits and '-'"))
	case errors.Is(err, directory.ErrEmailTaken):
		WriteError(w, ErrEmailTaken.WithHint("another user has this email address"))
	case errors.Is(err, directory.ErrUsernameTaken):
		WriteError(w, ErrUsernameTaken.WithHint("another user has this username"))
	case errors.Is(err, directory.ErrNotFound):
		WriteError(w, ErrUserNotFound.WithHint("no user has this id or address"))
	case errors.Is(err, admin.ErrIncomplete):
		flow.Observed(h.Observer).Failed(what, err)
		WriteError(w, ErrTemporarilyUnavailable.WithHint("the change is stored, but not every session could be ended; repeat the call"))
	default:
		flow.Observed(h.Observer).Failed(what, err)
		WriteError(w, ErrTemporarilyUnavailable.WithHint("the users cannot be read or written now; try again later"))
	}
}

// decodeUsers reads a body strictly (see DecodeJSON); anything that is not
// the documented JSON object is 422, as an invalid field is.
func decodeUsers(w http.ResponseWriter, r *http.Request, dst any) bool {
	if err := DecodeJSON(w, r, dst); err != nil {
		WriteError(w, ErrUnprocessable.WithHint("the body must be a JSON object with the documented fields: "+err.Error()))
		return false
	}
	return true
}
