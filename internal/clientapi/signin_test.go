package clientapi

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mailgate/caddy-mailgate/internal/directory"
	"github.com/mailgate/caddy-mailgate/internal/flow"
	"github.com/mailgate/caddy-mailgate/internal/limit"
	"github.com/mailgate/caddy-mailgate/internal/password"
	"github.com/mailgate/caddy-mailgate/internal/session"
)

// fakeCredentials knows alice's password, locks "locked", refuses
// "disabled", and is busy for "busy".
type fakeCredentials struct{}

func (fakeCredentials) Check(_ context.Context, _ flow.Requester, username, pw string) (directory.User, error) {
	switch {
	case username == "locked":
		return directory.User{}, &limit.ExceededError{Rule: flow.RuleFailedSignIns, RetryAfter: 90 * time.Second}
	case username == "flood":
		return directory.User{}, &limit.ExceededError{Rule: "failures_per_ip", RetryAfter: time.Minute}
	case username == "busy":
		return directory.User{}, password.ErrBusy
	case username == "disabled" && pw == "right":
		return directory.User{}, flow.ErrMayNotSignIn
	case username == "alice" && pw == "right":
		return directory.User{ID: "u1", Username: "alice", Email: "alice@example.com", Name: "Alice"}, nil
	case username == "old" && pw == "right":
		return directory.User{ID: "u2", Username: "old", Email: "old@example.com", PasswordExpired: true}, nil
	case (username == "coded" || username == "mailless" || username == "flooded") && pw == "right":
		// Users the fake steps mail a code to, or fail to.
		return directory.User{ID: "u3", Username: username, Email: "coded@example.com"}, nil
	}
	return directory.User{}, flow.ErrBadCredentials
}

type fakeIssuer struct{}

func (fakeIssuer) Issue(string) (string, time.Time, error) {
	return "session-token", time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC), nil
}

func (fakeIssuer) IssuePersistent(string) (string, time.Time, error) {
	return "kept-token", time.Date(2027, 1, 5, 0, 0, 0, 0, time.UTC), nil
}

func (f fakeIssuer) IssueWith(userID string, o session.IssueOptions) (string, time.Time, error) {
	if o.Persistent {
		return f.IssuePersistent(userID)
	}
	return f.Issue(userID)
}

func newSignInAPI() http.Handler {
	return Routes("/.mailgate", nil, &SignIn{
		Clients: map[string]*SignInClient{
			"shop":  {ID: "shop", SignIn: true, CORSOrigins: []string{"https://shop.example.com"}},
			"batch": {ID: "batch"},
		},
		Credentials: fakeCredentials{},
		Sessions:    fakeIssuer{},
		Tenant:      "default",
		Secure:      true,
		ClientIP:    func(*http.Request) string { return "192.0.2.1" },
	})
}

func signIn(t *testing.T, h http.Handler, body string, hdr ...string) (*httptest.ResponseRecorder, map[string]any) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, base+"/.mailgate/api/account/login", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	var out map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
		t.Fatalf("%s: not JSON: %s", body, w.Body)
	}
	return w, out
}

// A right password: 200 with next "done", the session in sessionToken and
// in a cookie that lasts only as long as the browser unless persistent,
// and the principal.
func TestSignInDone(t *testing.T) {
	h := newSignInAPI()
	w, out := signIn(t, h, `{"username":"alice","password":"right","clientId":"shop"}`, "Origin", "https://shop.example.com")
	p, _ := out["principal"].(map[string]any)
	if w.Code != http.StatusOK || out["next"] != "done" || out["sessionToken"] != "session-token" || out["stateToken"] != nil ||
		p["id"] != "u1" || p["username"] != "alice" || p["email"] != "alice@example.com" || p["name"] != "Alice" || p["tenant"] != "default" {
		t.Fatalf("%d %v", w.Code, out)
	}
	if _, ok := out["items"]; !ok {
		t.Fatalf("no items member: %v", out)
	}
	cookies := w.Result().Cookies()
	if len(cookies) != 1 || cookies[0].Name != "__Host-mailgate" || !cookies[0].Expires.IsZero() || !cookies[0].HttpOnly {
		t.Fatalf("cookies %v", cookies)
	}
	if w.Header().Get("Access-Control-Allow-Origin") != "https://shop.example.com" || w.Header().Get("Access-Control-Allow-Credentials") != "true" {
		t.Fatalf("CORS for the client's origin: %v", w.Header())
	}
	w, _ = signIn(t, h, `{"username":"alice","password":"right","clientId":"shop","persistent":true,"rememberUserName":true}`)
	byName := map[string]*http.Cookie{}
	for _, c := range w.Result().Cookies() {
		byName[c.Name] = c
	}
	if s := byName["__Host-mailgate"]; s == nil || s.Value != "kept-token" || !s.Expires.Equal(time.Date(2027, 1, 5, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("persistent session cookie: %v", s)
	}
	if u := byName["__Host-mailgate-username"]; u == nil || u.Value != "alice" || !u.Secure || u.Path != "/" {
		t.Fatalf("username cookie: %v", u)
	}
}

// Every refusal has the seed's shape, with a fresh identifier, and the
// seed's status: 400 for a wrong pair and bad input, 401 for an account
// that may not sign in now, 403 for a client or tenant that may not.
func TestSignInRefusals(t *testing.T) {
	h := newSignInAPI()
	seen := map[string]bool{}
	for _, c := range []struct {
		name, body string
		status     int
		code       string
	}{
		{"wrong password", `{"username":"alice","password":"wrong","clientId":"shop"}`, 400, "invalid_credentials"},
		{"unknown user", `{"username":"nobody","password":"right","clientId":"shop"}`, 400, "invalid_credentials"},
		{"no password", `{"username":"alice","clientId":"shop"}`, 400, "invalid_request"},
		{"no clientId", `{"username":"alice","password":"right"}`, 400, "invalid_request"},
		{"unknown field", `{"username":"alice","password":"right","clientId":"shop","pin":1}`, 400, "invalid_request"},
		{"not JSON", `{"username":`, 400, "invalid_request"},
		{"unknown client", `{"username":"alice","password":"right","clientId":"nope"}`, 400, "unknown_client"},
		{"locked", `{"username":"locked","password":"right","clientId":"shop"}`, 401, "account_locked"},
		{"disabled", `{"username":"disabled","password":"right","clientId":"shop"}`, 401, "account_not_allowed"},
		{"client without sign_in", `{"username":"alice","password":"right","clientId":"batch"}`, 403, "client_not_allowed"},
		{"another tenant", `{"username":"alice","password":"right","clientId":"shop","tenant":"other"}`, 403, "client_not_allowed"},
		{"flood from one IP", `{"username":"flood","password":"x","clientId":"shop"}`, 429, "too_many_requests"},
		{"busy hashing", `{"username":"busy","password":"x","clientId":"shop"}`, 503, "temporarily_unavailable"},
	} {
		w, out := signIn(t, h, c.body)
		id, _ := out["identifier"].(string)
		if w.Code != c.status || out["responseCode"] != c.code || out["type"] == "" || out["message"] == "" || len(id) != 36 || seen[id] {
			t.Errorf("%s: %d %v; want %d %s with a fresh identifier", c.name, w.Code, out, c.status, c.code)
		}
		seen[id] = true
		if len(w.Result().Cookies()) != 0 {
			t.Errorf("%s: set cookies", c.name)
		}
	}
	w, out := signIn(t, h, `{"clientId":"shop"}`)
	if errs, _ := out["errors"].([]any); w.Code != 400 || len(errs) != 2 {
		t.Fatalf("missing fields: %d %v", w.Code, out)
	}
	if w, _ := signIn(t, h, `{"username":"locked","password":"right","clientId":"shop"}`); w.Header().Get("Retry-After") != "90" {
		t.Fatalf("locked: Retry-After %q", w.Header().Get("Retry-After"))
	}
}

// A preflight is answered for the origins of the clients that may sign in,
// and no other.
func TestSignInPreflight(t *testing.T) {
	h := newSignInAPI()
	for origin, want := range map[string]int{"https://shop.example.com": http.StatusNoContent, "https://evil.example": http.StatusForbidden} {
		req := httptest.NewRequest(http.MethodOptions, base+"/.mailgate/api/account/login", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != want {
			t.Errorf("%s: %d %s", origin, w.Code, w.Body)
		}
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, base+"/.mailgate/api/account/login", nil))
	if w.Code != http.StatusMethodNotAllowed || !strings.Contains(w.Body.String(), `"responseCode":"method_not_allowed"`) {
		t.Fatalf("GET: %d %s", w.Code, w.Body)
	}
}
