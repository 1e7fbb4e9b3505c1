package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mailgate/caddy-mailgate/internal/admin"
	"github.com/mailgate/caddy-mailgate/internal/directory"
	"github.com/mailgate/caddy-mailgate/internal/flow"
	"github.com/mailgate/caddy-mailgate/internal/testdpop"
)

const usersURL = base + "/.mailgate/api/v1/users"

// fakeAdmin answers every call with err, or with user, and records the
// change it was asked for.
type fakeAdmin struct {
	user   directory.User
	err    error
	id, by string
	change admin.Change
}

func (a *fakeAdmin) Create(_ context.Context, n directory.NewUser, by string) (directory.User, error) {
	a.by = by
	return a.user, a.err
}
func (a *fakeAdmin) Get(_ context.Context, id string) (directory.User, error) {
	a.id = id
	return a.user, a.err
}
func (a *fakeAdmin) Find(context.Context, string) (directory.User, error) { return a.user, a.err }
func (a *fakeAdmin) Update(_ context.Context, id string, c admin.Change, by string) (directory.User, error) {
	a.id, a.change, a.by = id, c, by
	return a.user, a.err
}
func (a *fakeAdmin) Delete(_ context.Context, id, by string) error {
	a.id, a.by = id, by
	return a.err
}

// failures records what the operator is told.
type failures struct {
	flow.Unobserved
	what []string
}

func (f *failures) Failed(what string, _ error) { f.what = append(f.what, what) }

type usersFixture struct {
	mux   *http.ServeMux
	admin *fakeAdmin
	obs   *failures
	key   testdpop.Key
	token string
	now   time.Time
}

func newUsersFixture(t *testing.T) *usersFixture {
	f := newFixture(t)
	u := &usersFixture{admin: &fakeAdmin{}, obs: &failures{}, key: testdpop.NewKey(t), now: f.now}
	u.mux = Routes("/.mailgate", Endpoints{Users: &UsersEndpoint{Auth: f.auth, URL: usersURL, Admin: u.admin, Observer: u.obs}})
	u.token = f.dpopToken(t, "admin", "admin-secret-0123456789", u.key)
	return u
}

// call sends method to path under the users URL with a proof naming the
// URL without its query.
func (u *usersFixture) call(t *testing.T, method, path, body string) (*httptest.ResponseRecorder, map[string]any) {
	t.Helper()
	r := httptest.NewRequest(method, usersURL+path, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	htu, _, _ := strings.Cut(usersURL+path, "?")
	r.Header.Set("Authorization", "DPoP "+u.token)
	r.Header.Set("DPoP", u.key.Proof(t, method, htu, u.token, u.now))
	w := httptest.NewRecorder()
	u.mux.ServeHTTP(w, r)
	var out map[string]any
	_ = json.Unmarshal(w.Body.Bytes(), &out)
	return w, out
}

// TestUsersErrorsMapToStatuses: each refusal of admin and the directory
// has its status and code; a store that failed is 503 and the operator is
// told, a disable stored but not carried out says to repeat it.
func TestUsersErrorsMapToStatuses(t *testing.T) {
	u := newUsersFixture(t)
	for _, c := range []struct {
		err    error
		status int
		code   string
		told   bool
	}{
		{&admin.InvalidError{Field: "name", Reason: "too long"}, 422, "invalid_request", false},
		{directory.ErrInvalidEmail, 422, "invalid_request", false},
		{directory.ErrInvalidUsername, 422, "invalid_request", false},
		{directory.ErrEmailTaken, 409, "email_taken", false},
		{directory.ErrUsernameTaken, 409, "username_taken", false},
		{directory.ErrNotFound, 404, "user_not_found", false},
		{errors.Join(admin.ErrIncomplete, errors.New("store full")), 503, "temporarily_unavailable", true},
		{errors.New("disk on fire"), 503, "temporarily_unavailable", true},
	} {
		u.admin.err, u.obs.what = c.err, nil
		w, out := u.call(t, http.MethodPatch, "/u-1", `{"status":"disabled"}`)
		if w.Code != c.status || out["error"] != c.code || (len(u.obs.what) == 1) != c.told {
			t.Errorf("%v: %d %v, told %v", c.err, w.Code, out, u.obs.what)
		}
	}
	u.admin.err = errors.Join(admin.ErrIncomplete, errors.New("store full"))
	if _, out := u.call(t, http.MethodDelete, "/u-1", ""); !strings.Contains(out["error_description"].(string), "repeat") {
		t.Errorf("an incomplete delete does not say to repeat it: %v", out)
	}
}

// TestUsersRoutesAndViews: the id comes from the path, the proof names the
// user's URL, the change is handed on as sent, and the view has no
// password hash and a null signed_up while invited.
func TestUsersRoutesAndViews(t *testing.T) {
	u := newUsersFixture(t)
	u.admin.user = directory.User{ID: "u-1", Email: "ann@example.com", Username: "ann", Status: directory.StatusInvited,
		Created: u.now, PasswordHash: "$argon2id$secret"}
	w, out := u.call(t, http.MethodPost, "", `{"email":"ann@example.com"}`)
	if w.Code != http.StatusCreated || w.Header().Get("Location") != usersURL+"/u-1" || u.admin.by != "client admin" {
		t.Fatalf("create: %d %v Location %q by %q", w.Code, out, w.Header().Get("Location"), u.admin.by)
	}
	if _, ok := out["signed_up"]; !ok || out["signed_up"] != nil || strings.Contains(w.Body.String(), "argon2") {
		t.Fatalf("view %s", w.Body)
	}
	if w, _ := u.call(t, http.MethodGet, "/u-1", ""); w.Code != http.StatusOK || u.admin.id != "u-1" {
		t.Fatalf("get: %d, id %q", w.Code, u.admin.id)
	}
	if w, _ := u.call(t, http.MethodPatch, "/u-2", `{"name":"Ann"}`); w.Code != http.StatusOK || u.admin.id != "u-2" ||
		u.admin.change.Name == nil || *u.admin.change.Name != "Ann" || u.admin.change.Status != nil {
		t.Fatalf("patch: %d %+v", w.Code, u.admin.change)
	}
	if w, _ := u.call(t, http.MethodDelete, "/u-3", ""); w.Code != http.StatusNoContent || w.Body.Len() != 0 || u.admin.id != "u-3" {
		t.Fatalf("delete: %d %q", w.Code, w.Body)
	}
	if w, _ := u.call(t, http.MethodGet, "?email=ann@example.com&limit=3", ""); w.Code != http.StatusUnprocessableEntity {
		t.Fatalf("find with another parameter: %d", w.Code)
	}
	for path, allow := range map[string]string{"": "GET, HEAD, POST", "/u-1": "GET, HEAD, PATCH, DELETE"} {
		if w, out := u.call(t, http.MethodPut, path, `{}`); w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != allow || out["error"] != "invalid_request" {
			t.Errorf("PUT %q: %d Allow %q %v", path, w.Code, w.Header().Get("Allow"), out)
		}
	}
}
