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
)

// fakeSteps stops an expired password at expired_password ("st-expired")
// and a client's ask_persist at persist ("st-persist"); "flood" is over the
// IP's limit, "busy" finds no hashing slot, and every other token is
// invalid.
type fakeSteps struct{}

var aliceUser = directory.User{ID: "u1", Username: "alice", Email: "alice@example.com", Name: "Alice"}

func (fakeSteps) Start(_ context.Context, _ flow.Requester, u directory.User, _ string, st flow.SignInState) (flow.SignInState, string, error) {
	switch {
	case u.Username == "mailless":
		return flow.SignInState{}, "", flow.ErrDelivery
	case u.Username == "flooded":
		return flow.SignInState{}, "", &limit.ExceededError{Rule: "mails_per_address", RetryAfter: time.Minute}
	case u.Username == "coded":
		st.Step, st.Email, st.Expires = flow.StepEmailCode, u.Email, fakeNow.Add(flow.EmailCodeTTL).UnixNano()
		return st, "st-code", nil
	case u.PasswordExpired:
		st.Step = flow.StepExpiredPassword
		return st, "st-expired", nil
	case st.AskPersist:
		st.Step = flow.StepPersist
		return st, "st-persist", nil
	}
	return st, "", nil
}

func (fakeSteps) token(token string) error {
	switch token {
	case "flood":
		return &limit.ExceededError{Rule: "failures_per_ip", RetryAfter: time.Minute}
	case "busy":
		return password.ErrBusy
	}
	return flow.ErrStateInvalid
}

func (s fakeSteps) Resume(_ context.Context, _ flow.Requester, token string, use func(directory.User, flow.SignInState, string) error) error {
	switch token {
	case "st-persist":
		return use(aliceUser, flow.SignInState{Step: flow.StepPersist}, token)
	case "st-code":
		return use(aliceUser, flow.SignInState{Step: flow.StepEmailCode, Email: aliceUser.Email, Expires: fakeNow.Add(time.Minute).UnixNano()}, token)
	case "st-code-confirmed":
		return use(aliceUser, flow.SignInState{Step: flow.StepDone, Persistent: true}, "")
	}
	return s.token(token)
}

// fakeNow is the clock of the fake steps.
var fakeNow = time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)

func (s fakeSteps) Persist(_ context.Context, _ flow.Requester, token string, use func(directory.User, flow.SignInState) error) error {
	if token == "st-persist" {
		return use(aliceUser, flow.SignInState{Step: flow.StepPersist})
	}
	return s.token(token)
}

func (s fakeSteps) UpdateExpired(_ context.Context, _ flow.Requester, token, _, pw string,
	use func(directory.User, flow.SignInState, string) error) error {
	if pw == "password" {
		return &flow.PasswordRulesError{Rules: []password.Rule{password.RuleTooShort, password.RuleCommon}}
	}
	if token == "st-expired" {
		return use(aliceUser, flow.SignInState{Step: flow.StepDone, Persistent: true}, "")
	}
	return s.token(token)
}

// logins records the sign-ins reported done.
type logins struct {
	flow.Unobserved
	done []string
}

func (l *logins) LoginDone(userID string, _ flow.Method) { l.done = append(l.done, userID) }

func newStepsAPI(obs ...flow.Observer) http.Handler {
	var o flow.Observer
	if len(obs) > 0 {
		o = obs[0]
	}
	return Routes("/.mailgate", nil, &SignIn{
		Observer: o,
		Clients: map[string]*SignInClient{
			"shop":   {ID: "shop", SignIn: true, CORSOrigins: []string{"https://shop.example.com"}},
			"keeper": {ID: "keeper", SignIn: true, AskPersist: true, CORSOrigins: []string{"https://keeper.example.com"}},
			"batch":  {ID: "batch"},
			"guard":  {ID: "guard", SignIn: true, SecondFactor: true, CORSOrigins: []string{"https://keeper.example.com"}},
		},
		Now:         func() time.Time { return fakeNow },
		Credentials: fakeCredentials{},
		Sessions:    fakeIssuer{},
		Steps:       fakeSteps{},
		Tenant:      "default",
		Secure:      true,
		ClientIP:    func(*http.Request) string { return "192.0.2.1" },
	})
}

func stepCall(t *testing.T, h http.Handler, method, pathQuery, body string) (*httptest.ResponseRecorder, map[string]any) {
	t.Helper()
	req := httptest.NewRequest(method, base+"/.mailgate/api/account/"+pathQuery, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", "https://keeper.example.com")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	var out map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
		t.Fatalf("%s %s: not JSON: %s", method, pathQuery, w.Body)
	}
	return w, out
}

func cookies(w *httptest.ResponseRecorder) map[string]*http.Cookie {
	byName := map[string]*http.Cookie{}
	for _, c := range w.Result().Cookies() {
		byName[c.Name] = c
	}
	return byName
}

// A step answers 200 with a stateToken, no session and the principal; the
// endpoints that finish one answer next done with the session.
func TestSignInStepAnswers(t *testing.T) {
	obs := &logins{}
	h := newStepsAPI(obs)
	for body, want := range map[string]string{
		`{"username":"alice","password":"right","clientId":"keeper"}`: "st-persist",
		`{"username":"old","password":"right","clientId":"keeper"}`:   "st-expired",
	} {
		w, out := signIn(t, h, body)
		p, _ := out["principal"].(map[string]any)
		if w.Code != http.StatusOK || out["stateToken"] != want || out["sessionToken"] != nil || p["id"] == nil || len(w.Result().Cookies()) != 0 {
			t.Fatalf("%s: %d %v %v", body, w.Code, out, w.Result().Cookies())
		}
	}
	if len(obs.done) != 0 {
		t.Fatalf("a sign-in at a step was reported done: %v", obs.done)
	}
	w, out := stepCall(t, h, http.MethodGet, "login-resume?token=st-persist", "")
	if w.Code != http.StatusOK || out["next"] != "persist" || out["stateToken"] != "st-persist" || w.Header().Get("Access-Control-Allow-Origin") != "https://keeper.example.com" {
		t.Fatalf("login-resume: %d %v %v", w.Code, out, w.Header())
	}

	w, out = stepCall(t, h, http.MethodPost, "login-persist", `{"stateToken":"st-persist","persistent":true,"rememberKeepMeSignIn":true}`)
	c := cookies(w)
	if w.Code != http.StatusOK || out["next"] != "done" || out["sessionToken"] != "kept-token" || c["__Host-mailgate"] == nil ||
		c["__Host-mailgate"].Expires.IsZero() || c["__Host-mailgate-keep-signed-in"] == nil || c["__Host-mailgate-keep-signed-in"].Value != "true" {
		t.Fatalf("login-persist, kept: %d %v %v", w.Code, out, c)
	}
	w, _ = stepCall(t, h, http.MethodPost, "login-persist", `{"stateToken":"st-persist","persistent":false}`)
	if c := cookies(w); c["__Host-mailgate"] == nil || c["__Host-mailgate"].Value != "session-token" || !c["__Host-mailgate"].Expires.IsZero() || c["__Host-mailgate-keep-signed-in"] != nil {
		t.Fatalf("login-persist, not kept: %v", c)
	}

	w, out = stepCall(t, h, http.MethodPost, "update-expired-password", `{"password":"a long new passphrase","stateToken":"st-expired","clientId":"keeper","tenant":"default"}`)
	if c := cookies(w); w.Code != http.StatusOK || out["next"] != "done" || out["sessionToken"] != "kept-token" || c["__Host-mailgate"] == nil {
		t.Fatalf("update-expired-password: %d %v", w.Code, out)
	}
	if len(obs.done) != 3 {
		t.Fatalf("sign-ins reported done: %v; want one per session started", obs.done)
	}
}

// The steps' refusals, in the seed's shape.
func TestSignInStepRefusals(t *testing.T) {
	h := newStepsAPI()
	for _, c := range []struct {
		name, method, path, body string
		status                   int
		code                     string
		errors                   int
	}{
		{"resume without a token", "GET", "login-resume", "", 400, "invalid_request", 1},
		{"resume a guess", "GET", "login-resume?token=guess", "", 400, "invalid_state_token", 0},
		{"resume over the IP's limit", "GET", "login-resume?token=flood", "", 429, "too_many_requests", 0},
		{"persist without a token", "POST", "login-persist", `{"persistent":true}`, 400, "invalid_request", 1},
		{"persist a guess", "POST", "login-persist", `{"stateToken":"guess"}`, 400, "invalid_state_token", 0},
		{"persist an unknown field", "POST", "login-persist", `{"stateToken":"st-persist","pin":1}`, 400, "invalid_request", 0},
		{"POST resume", "POST", "login-resume?token=st-persist", `{}`, 405, "method_not_allowed", 0},
		{"update with nothing", "POST", "update-expired-password", `{}`, 400, "invalid_request", 4},
		{"update, weak password", "POST", "update-expired-password", `{"password":"password","stateToken":"st-expired","clientId":"keeper","tenant":"default"}`, 400, "password_rejected", 2},
		{"update, another tenant", "POST", "update-expired-password", `{"password":"a long new passphrase","stateToken":"st-expired","clientId":"keeper","tenant":"other"}`, 403, "client_not_allowed", 0},
		{"update, client without sign_in", "POST", "update-expired-password", `{"password":"a long new passphrase","stateToken":"st-expired","clientId":"batch","tenant":"default"}`, 403, "client_not_allowed", 0},
		{"update, unknown client", "POST", "update-expired-password", `{"password":"a long new passphrase","stateToken":"st-expired","clientId":"nope","tenant":"default"}`, 400, "unknown_client", 0},
		{"update, busy hashing", "POST", "update-expired-password", `{"password":"a long new passphrase","stateToken":"busy","clientId":"keeper","tenant":"default"}`, 503, "temporarily_unavailable", 0},
	} {
		w, out := stepCall(t, h, c.method, c.path, c.body)
		errs, _ := out["errors"].([]any)
		if w.Code != c.status || out["responseCode"] != c.code || out["type"] == "" || len(errs) != c.errors || len(w.Result().Cookies()) != 0 {
			t.Errorf("%s: %d %v; want %d %s with %d errors", c.name, w.Code, out, c.status, c.code, c.errors)
		}
		if (c.status == 429 || c.status == 503) && w.Header().Get("Retry-After") == "" {
			t.Errorf("%s: no Retry-After", c.name)
		}
	}
	_, out := stepCall(t, h, "POST", "update-expired-password", `{"password":"password","stateToken":"st-expired","clientId":"keeper","tenant":"default"}`)
	first, _ := out["errors"].([]any)[0].(map[string]any)
	if first["field"] != "password" || first["code"] != "too_short" || !strings.Contains(first["message"].(string), "15") {
		t.Fatalf("a broken rule: %v", first)
	}
}

// The step endpoints answer preflights for the origins of the clients that
// may sign in, with credentials, and no other origin.
func TestSignInStepPreflight(t *testing.T) {
	h := newStepsAPI()
	for _, path := range []string{"login-resume", "login-persist", "update-expired-password"} {
		for origin, want := range map[string]int{"https://keeper.example.com": 204, "https://shop.example.com": 204, "https://evil.example": 403} {
			req := httptest.NewRequest(http.MethodOptions, base+"/.mailgate/api/account/"+path, nil)
			req.Header.Set("Origin", origin)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != want || (want == 204 && w.Header().Get("Access-Control-Allow-Credentials") != "true") {
				t.Errorf("%s from %s: %d %v", path, origin, w.Code, w.Header())
			}
		}
	}
}
