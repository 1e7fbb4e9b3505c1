package caddymodule

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

const stepsPassword = "correct horse battery staple"

// stepsConfig is kioskConfig with a second client, "keeper", that asks
// "keep me signed in" as a step of its own, and extra mailgate lines.
func stepsConfig(extra string) func(*env) siteConfig {
	return func(e *env) siteConfig {
		c := kioskConfig(e)
		c.Mailgate += `
		client keeper {
			sign_in
			ask_persist
			cors_origin ` + kioskOrigin + `
		}
		` + extra
		return c
	}
}

// stepCall calls one of seed 004's step endpoints from the kiosk's page in
// b: a GET of pathQuery, or a POST of body.
func (b *browser) stepCall(method, pathQuery, body string) (response, map[string]any) {
	b.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, b.e.base+"/.mailgate/api/account/"+pathQuery, rd)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", kioskOrigin)
	r := b.do(req)
	var out map[string]any
	if err := json.Unmarshal([]byte(r.body), &out); err != nil {
		b.t.Fatalf("%s %s: %s %q", method, pathQuery, r.Status, r.body)
	}
	return r, out
}

// cookieOf is the cookie name in r's Set-Cookie headers, or nil.
func cookieOf(r response, name string) *http.Cookie {
	for _, c := range r.Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// wantStep checks a 200 that stops at step: a stateToken, no session (in
// the body or a cookie), and the principal userID; none at email_code,
// before the second factor.
func wantStep(t *testing.T, what string, r response, out map[string]any, step, userID string) string {
	t.Helper()
	token, _ := out["stateToken"].(string)
	principal, _ := out["principal"].(map[string]any)
	rightPrincipal := principal["id"] == userID
	if step == "email_code" {
		rightPrincipal = out["principal"] == nil
	}
	_, hasItems := out["items"]
	if r.StatusCode != http.StatusOK || out["next"] != step || token == "" || out["sessionToken"] != nil ||
		!rightPrincipal || !hasItems || cookieOf(r, "__Host-mailgate") != nil {
		t.Fatalf("%s: %s %s; want next %s with a stateToken and no session", what, r.Status, r.body, step)
	}
	return token
}

// wantRefusal checks a refusal in the seed's shape.
func wantRefusal(t *testing.T, what string, r response, out map[string]any, status int, code string) {
	t.Helper()
	id, _ := out["identifier"].(string)
	if r.StatusCode != status || out["responseCode"] != code || out["type"] == "" || out["message"] == "" || len(id) != 36 {
		t.Fatalf("%s: %s %s; want %d %s", what, r.Status, r.body, status, code)
	}
}

// TestExpiredPasswordThroughCaddy: an operator expires a password with
// `caddy mailgate users expire-password`; the sign-in stops at
// expired_password without a session; login-resume says so again;
// update-expired-password holds the new password to the policy, names
// each broken rule, refuses a persist token and another tenant, then
// stores it, ends the session signed in before, and signs in. The token is
// then used up, and one left for ten minutes is refused.
func TestExpiredPasswordThroughCaddy(t *testing.T) {
	cfg := stepsConfig("")
	e := startCaddyWith(t, cfg)
	dana := withPassword(t, "dana@corp.example", stepsPassword)
	before := e.browser(t)
	if r, out := before.signIn(`{"username":"dana","password":"` + stepsPassword + `","clientId":"kiosk"}`); out["next"] != "done" {
		t.Fatalf("before expiry: %s %s", r.Status, r.body)
	}
	if out, err := e.runCLI(t, cfg(e), "users", "expire-password", "dana@corp.example"); err != nil {
		t.Fatalf("users expire-password: %v %s", err, out)
	}
	// The earlier session's second ends with the new password's cut-off.
	clockOffset.Add(int64(time.Second))

	b := e.browser(t)
	r, out := b.signIn(`{"username":"dana","password":"` + stepsPassword + `","clientId":"kiosk","persistent":true}`)
	token := wantStep(t, "an expired password", r, out, "expired_password", dana.ID)
	r, out = b.stepCall(http.MethodGet, "login-resume?token="+url.QueryEscape(token), "")
	if again := wantStep(t, "login-resume", r, out, "expired_password", dana.ID); again != token {
		t.Fatalf("login-resume answered another stateToken")
	}
	if r.Header.Get("Access-Control-Allow-Origin") != kioskOrigin {
		t.Fatalf("login-resume CORS: %v", r.Header)
	}

	r, out = b.stepCall(http.MethodPost, "update-expired-password", `{}`)
	wantRefusal(t, "an empty body", r, out, http.StatusBadRequest, "invalid_request")
	if errs, _ := out["errors"].([]any); len(errs) != 4 {
		t.Fatalf("the missing fields: %v", out["errors"])
	}
	update := func(pw, tenant, tok string) (response, map[string]any) {
		body, _ := json.Marshal(map[string]string{"password": pw, "stateToken": tok, "clientId": "kiosk", "tenant": tenant})
		return b.stepCall(http.MethodPost, "update-expired-password", string(body))
	}
	r, out = update("password", "default", token)
	wantRefusal(t, "a weak password", r, out, http.StatusBadRequest, "password_rejected")
	rules := map[string]bool{}
	for _, e := range out["errors"].([]any) {
		entry := e.(map[string]any)
		rules[entry["code"].(string)] = entry["field"] == "password" && entry["message"] != ""
	}
	if !rules["too_short"] || !rules["common"] || len(rules) != 2 {
		t.Fatalf("the broken rules: %v", out["errors"])
	}
	r, out = update(stepsPassword, "default", token)
	wantRefusal(t, "the expired password again", r, out, http.StatusBadRequest, "password_rejected")
	if errs, _ := out["errors"].([]any); len(errs) != 1 || errs[0].(map[string]any)["code"] != "same_as_expired" {
		t.Fatalf("the expired password again: %v", out["errors"])
	}
	r, out = update("a new and rather long passphrase", "another-tenant", token)
	wantRefusal(t, "another tenant", r, out, http.StatusForbidden, "client_not_allowed")
	r, out = b.stepCall(http.MethodPost, "login-persist", `{"stateToken":"`+token+`","persistent":true}`)
	wantRefusal(t, "an expired_password token at login-persist", r, out, http.StatusBadRequest, "invalid_state_token")

	const fresh = "a new and rather long passphrase"
	r, out = update(fresh, "default", token)
	session := cookieOf(r, "__Host-mailgate")
	principal, _ := out["principal"].(map[string]any)
	if r.StatusCode != http.StatusOK || out["next"] != "done" || out["stateToken"] != nil || session == nil ||
		out["sessionToken"] != session.Value || principal["email"] != "dana@corp.example" {
		t.Fatalf("update-expired-password: %s %s", r.Status, r.body)
	}
	if left := time.Until(session.Expires); left < 29*24*time.Hour {
		t.Fatalf("login asked for persistent: the cookie expires %v", session.Expires)
	}
	if page := b.get("/dashboard"); page.StatusCode != http.StatusOK {
		t.Fatalf("the new session: %s", page.Status)
	}
	if page := before.get("/dashboard"); page.StatusCode == http.StatusOK {
		t.Fatal("the session signed in before the new password still works")
	}
	r, out = update(fresh+" again", "default", token)
	wantRefusal(t, "a used token", r, out, http.StatusBadRequest, "invalid_state_token")
	if r, _ := e.browser(t).signIn(`{"username":"dana","password":"` + stepsPassword + `","clientId":"kiosk"}`); r.StatusCode != http.StatusBadRequest {
		t.Fatalf("the old password: %s", r.Status)
	}
	if _, out := e.browser(t).signIn(`{"username":"dana","password":"` + fresh + `","clientId":"kiosk"}`); out["next"] != "done" {
		t.Fatalf("the new password: %v", out)
	}

	if _, err := e.runCLI(t, cfg(e), "users", "expire-password", dana.ID); err != nil {
		t.Fatal(err)
	}
	r, out = e.browser(t).signIn(`{"username":"dana","password":"` + fresh + `","clientId":"kiosk"}`)
	late := wantStep(t, "expired again", r, out, "expired_password", dana.ID)
	clockOffset.Add(int64(10 * time.Minute))
	r, out = b.stepCall(http.MethodGet, "login-resume?token="+url.QueryEscape(late), "")
	wantRefusal(t, "a stateToken after ten minutes", r, out, http.StatusBadRequest, "invalid_state_token")
	r, out = update(fresh+" once more", "default", late)
	wantRefusal(t, "update after ten minutes", r, out, http.StatusBadRequest, "invalid_state_token")
}

// TestPasswordMaxAgeThroughCaddy: with password_max_age, a password older
// than it stops the sign-in at expired_password; a younger one does not.
func TestPasswordMaxAgeThroughCaddy(t *testing.T) {
	e := startCaddyWith(t, stepsConfig("password_max_age 24h"))
	dana := withPassword(t, "dana@corp.example", stepsPassword)
	signIn := `{"username":"dana","password":"` + stepsPassword + `","clientId":"kiosk"}`
	clockOffset.Add(int64(24*time.Hour - time.Minute))
	if _, out := e.browser(t).signIn(signIn); out["next"] != "done" {
		t.Fatalf("a minute before password_max_age: %v", out)
	}
	clockOffset.Add(int64(time.Minute))
	r, out := e.browser(t).signIn(signIn)
	wantStep(t, "at password_max_age", r, out, "expired_password", dana.ID)
}

// TestPersistStepThroughCaddy: a client with ask_persist stops the sign-in
// at persist; its stateToken is refused by update-expired-password and
// still works afterwards; login-persist starts a kept session (a cookie
// that expires in persistent_session_ttl) or one for the browser's life (no
// expiry), remembers the answer
// in its own non-secret cookie when asked, and works once.
func TestPersistStepThroughCaddy(t *testing.T) {
	e := startCaddyWith(t, stepsConfig(""))
	dana := withPassword(t, "dana@corp.example", stepsPassword)
	signIn := `{"username":"dana@corp.example","password":"` + stepsPassword + `","clientId":"keeper"}`

	b := e.browser(t)
	r, out := b.signIn(signIn)
	token := wantStep(t, "ask_persist", r, out, "persist", dana.ID)
	r, out = b.stepCall(http.MethodPost, "update-expired-password",
		`{"password":"a new and rather long passphrase","stateToken":"`+token+`","clientId":"keeper","tenant":"default"}`)
	wantRefusal(t, "a persist token at update-expired-password", r, out, http.StatusBadRequest, "invalid_state_token")
	r, out = b.stepCall(http.MethodGet, "login-resume?token="+url.QueryEscape(token), "")
	wantStep(t, "login-resume", r, out, "persist", dana.ID)

	r, out = b.stepCall(http.MethodPost, "login-persist", `{"stateToken":"`+token+`","persistent":true,"rememberKeepMeSignIn":true}`)
	session, keep := cookieOf(r, "__Host-mailgate"), cookieOf(r, "__Host-mailgate-keep-signed-in")
	if r.StatusCode != http.StatusOK || out["next"] != "done" || session == nil || out["sessionToken"] != session.Value ||
		r.Header.Get("Access-Control-Allow-Origin") != kioskOrigin || r.Header.Get("Access-Control-Allow-Credentials") != "true" {
		t.Fatalf("login-persist: %s %s %v", r.Status, r.body, r.Header)
	}
	if left := time.Until(session.Expires); left < 30*24*time.Hour-time.Minute || !session.Secure || !session.HttpOnly || session.Path != "/" {
		t.Fatalf("the kept session's cookie: %+v", session)
	}
	if keep == nil || keep.Value != "true" || keep.MaxAge <= 0 || !keep.Secure || keep.Path != "/" || keep.Domain != "" {
		t.Fatalf("the keep-me-signed-in cookie: %+v", keep)
	}
	if page := b.get("/dashboard"); page.StatusCode != http.StatusOK || e.upstream.last(t).Get("Remote-Email") != "dana@corp.example" {
		t.Fatalf("the kept session: %s", page.Status)
	}
	if cookies := e.upstream.last(t).Get("Cookie"); strings.Contains(cookies, "mailgate") {
		t.Fatalf("mailgate's cookies reached the upstream: %q", cookies)
	}
	r, out = b.stepCall(http.MethodPost, "login-persist", `{"stateToken":"`+token+`","persistent":true}`)
	wantRefusal(t, "login-persist again", r, out, http.StatusBadRequest, "invalid_state_token")

	// Not kept, and not remembered: a browser-session cookie, and the
	// earlier answer forgotten.
	r, out = b.signIn(signIn)
	token = wantStep(t, "a second sign-in", r, out, "persist", dana.ID)
	r, _ = b.stepCall(http.MethodPost, "login-persist", `{"stateToken":"`+token+`","persistent":false}`)
	session, keep = cookieOf(r, "__Host-mailgate"), cookieOf(r, "__Host-mailgate-keep-signed-in")
	if r.StatusCode != http.StatusOK || session == nil || session.MaxAge != 0 || !session.Expires.IsZero() {
		t.Fatalf("a session for the browser's life: %s %+v", r.Status, session)
	}
	if keep == nil || keep.MaxAge >= 0 {
		t.Fatalf("the earlier answer is not forgotten: %+v", keep)
	}

	r, out = b.stepCall(http.MethodPost, "login-persist", `{"persistent":true}`)
	wantRefusal(t, "no stateToken", r, out, http.StatusBadRequest, "invalid_request")
	r, out = b.stepCall(http.MethodGet, "login-resume", "")
	wantRefusal(t, "no token", r, out, http.StatusBadRequest, "invalid_request")
	r, out = b.stepCall(http.MethodGet, "login-persist", "")
	wantRefusal(t, "GET login-persist", r, out, http.StatusMethodNotAllowed, "method_not_allowed")
	r, out = b.stepCall(http.MethodPost, "login-persist", `{"stateToken":"x","persistent":true,"pin":1}`)
	wantRefusal(t, "an unknown field", r, out, http.StatusBadRequest, "invalid_request")
}

// TestStateTokenGuessesLimited: tries at stateTokens count against
// failures_per_ip before the lookup; over it, the seed's 429 with
// Retry-After, even for a live token.
func TestStateTokenGuessesLimited(t *testing.T) {
	e := startCaddyWith(t, func(e *env) siteConfig {
		c := stepsConfig("")(e)
		c.Limits = strings.Replace(c.Limits, "failures_per_ip 1000000 1m", "failures_per_ip 3 15m", 1)
		return c
	})
	dana := withPassword(t, "dana@corp.example", stepsPassword)
	b := e.browser(t)
	r, out := b.signIn(`{"username":"dana","password":"` + stepsPassword + `","clientId":"keeper"}`)
	token := wantStep(t, "ask_persist", r, out, "persist", dana.ID)
	for range 3 {
		r, out = b.stepCall(http.MethodGet, "login-resume?token=guess", "")
		wantRefusal(t, "a guess", r, out, http.StatusBadRequest, "invalid_state_token")
	}
	for _, call := range []struct{ method, path, body string }{
		{http.MethodGet, "login-resume?token=" + url.QueryEscape(token), ""},
		{http.MethodPost, "login-persist", `{"stateToken":"` + token + `","persistent":false}`},
		{http.MethodPost, "update-expired-password", `{"password":"a new and rather long passphrase","stateToken":"` + token + `","clientId":"keeper","tenant":"default"}`},
	} {
		r, out = b.stepCall(call.method, call.path, call.body)
		wantRefusal(t, call.path+" over failures_per_ip", r, out, http.StatusTooManyRequests, "too_many_requests")
		if r.Header.Get("Retry-After") == "" {
			t.Fatalf("%s: no Retry-After", call.path)
		}
	}
}

// TestStateTokenFiftyAtOnceThroughCaddy: fifty login-persist calls with one
// stateToken at once start exactly one session, on the memory store and on
// Redis.
func TestStateTokenFiftyAtOnceThroughCaddy(t *testing.T) {
	eachStore(t, func(t *testing.T, store, storeLines string) {
		e := startCaddyWith(t, stepsConfig(storeLines))
		dana := withPassword(t, "dana-"+store+"@corp.example", stepsPassword)
		r, out := e.browser(t).signIn(`{"username":"` + dana.Email + `","password":"` + stepsPassword + `","clientId":"keeper"}`)
		token := wantStep(t, "ask_persist", r, out, "persist", dana.ID)
		statuses := make([]int, 50)
		clients := make([]*http.Client, len(statuses))
		for i := range clients {
			clients[i] = e.browser(t).client
		}
		atOnce(len(statuses), func(i int) {
			req, _ := http.NewRequest(http.MethodPost, e.base+"/.mailgate/api/account/login-persist",
				strings.NewReader(`{"stateToken":"`+token+`","persistent":true}`))
			req.Header.Set("Content-Type", "application/json")
			resp, err := clients[i].Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			statuses[i] = resp.StatusCode
		})
		counts := map[int]int{}
		for _, s := range statuses {
			counts[s]++
		}
		if counts[http.StatusOK] != 1 || counts[http.StatusBadRequest] != 49 {
			t.Fatalf("statuses %v; want one 200 and 49 400", counts)
		}
	})
}
