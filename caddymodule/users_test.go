package caddymodule

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailgate/caddy-mailgate/internal/redistest"
	"github.com/mailgate/caddy-mailgate/internal/testdpop"
)

// usersClients are API clients of the users API: admin may read and
// write, reader only read.
const usersClients = `client admin {
			secret admin-secret-0123456789
			scopes users:read users:write
		}
		client reader {
			secret reader-secret-0123456789
			scopes users:read
		}`

// apiClient calls the API with a DPoP-bound token of one client.
type apiClient struct {
	e     *env
	token string
	key   testdpop.Key
}

// apiClientOf gets a token for client with a key of its own.
func (e *env) apiClientOf(t *testing.T, client, secret string) apiClient {
	t.Helper()
	key := testdpop.NewKey(t)
	r, tok := e.clientCredentials(t, client, secret, "", key.Proof(t, "POST", e.base+"/.mailgate/oauth/token", "", now()))
	if r.StatusCode != http.StatusOK {
		t.Fatalf("token for %s: %s %s", client, r.Status, r.body)
	}
	return apiClient{e: e, token: tok.AccessToken, key: key}
}

// call sends method to path under {prefix}/api/v1/users with body (JSON,
// or nothing when empty) and a fresh proof, and decodes a JSON answer.
func (c apiClient) call(t *testing.T, method, path, body string) (response, map[string]any) {
	t.Helper()
	u := c.e.base + "/.mailgate/api/v1/users" + path
	req, _ := http.NewRequest(method, u, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		htu, _, _ := strings.Cut(u, "?")
		req.Header.Set("Authorization", "DPoP "+c.token)
		req.Header.Set("DPoP", c.key.Proof(t, method, htu, c.token, now()))
	}
	r := c.e.browser(t).do(req)
	var out map[string]any
	if r.body != "" {
		if err := json.Unmarshal([]byte(r.body), &out); err != nil {
			t.Fatalf("%s %s answered %s with %q", method, path, r.Status, r.body)
		}
	}
	return r, out
}

// create adds a user and returns its id.
func (c apiClient) create(t *testing.T, body string) string {
	t.Helper()
	r, out := c.call(t, http.MethodPost, "", body)
	id, _ := out["id"].(string)
	if r.StatusCode != http.StatusCreated || id == "" {
		t.Fatalf("creating %s: %s %s", body, r.Status, r.body)
	}
	return id
}

// setStatus PATCHes a user's status and returns the status it ends with.
func (c apiClient) setStatus(t *testing.T, id, status string) string {
	t.Helper()
	r, out := c.call(t, http.MethodPatch, "/"+id, `{"status":"`+status+`"}`)
	if r.StatusCode != http.StatusOK {
		t.Fatalf("PATCH status %s: %s %s", status, r.Status, r.body)
	}
	return out["status"].(string)
}

// userID finds the id of the user with email through the API.
func (c apiClient) userID(t *testing.T, email string) string {
	t.Helper()
	r, out := c.call(t, http.MethodGet, "?email="+urlQueryEscape(email), "")
	if r.StatusCode != http.StatusOK {
		t.Fatalf("finding %s: %s %s", email, r.Status, r.body)
	}
	return out["id"].(string)
}

// TestUsersAPIStatuses walks every answer of the users API through Caddy.
func TestUsersAPIStatuses(t *testing.T) {
	e := startCaddyWith(t, func(*env) siteConfig { return siteConfig{Mailgate: usersClients} })
	admin := e.apiClientOf(t, "admin", "admin-secret-0123456789")
	reader := e.apiClientOf(t, "reader", "reader-secret-0123456789")

	r, out := admin.call(t, http.MethodPost, "", `{"email":" Dora@Corp.Example ","name":"Dora D","username":"dora","locale":"nl-be"}`)
	id, _ := out["id"].(string)
	if r.StatusCode != http.StatusCreated || r.Header.Get("Location") != e.base+"/.mailgate/api/v1/users/"+id {
		t.Fatalf("create: %s Location %q %s", r.Status, r.Header.Get("Location"), r.body)
	}
	if out["email"] != "dora@corp.example" || out["name"] != "Dora D" || out["username"] != "dora" || out["status"] != "invited" ||
		out["locale"] != "nl-BE" || out["signed_up"] != nil || out["created"] == "" {
		t.Fatalf("created user %s", r.body)
	}
	if strings.Contains(r.body, "password") || r.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("the answer shows a password field or may be cached: %s %v", r.body, r.Header)
	}

	for _, c := range []struct {
		name, method, path, body string
		status                   int
		code                     string
	}{
		{"the same address", "POST", "", `{"email":"dora@corp.example"}`, 409, "email_taken"},
		{"the same username", "POST", "", `{"email":"other@corp.example","username":"dora"}`, 409, "username_taken"},
		{"an unknown field", "POST", "", `{"email":"x@corp.example","role":"admin"}`, 422, "invalid_request"},
		{"a bad address", "POST", "", `{"email":"not an address"}`, 422, "invalid_request"},
		{"no address", "POST", "", `{"name":"Nobody"}`, 422, "invalid_request"},
		{"a bad username", "POST", "", `{"email":"x@corp.example","username":"Not OK"}`, 422, "invalid_request"},
		{"an unknown locale", "POST", "", `{"email":"x@corp.example","locale":"fr-FR"}`, 422, "invalid_request"},
		{"a name with a newline", "POST", "", `{"email":"x@corp.example","name":"a\nRemote-Email: x"}`, 422, "invalid_request"},
		{"not JSON", "POST", "", `email=x@corp.example`, 422, "invalid_request"},
		{"an unknown id", "GET", "/no-such-user", "", 404, "user_not_found"},
		{"an unknown address", "GET", "?email=nobody@corp.example", "", 404, "user_not_found"},
		{"a search without email", "GET", "", "", 422, "invalid_request"},
		{"status invited", "PATCH", "/" + id, `{"status":"invited"}`, 422, "invalid_request"},
		{"an unknown status", "PATCH", "/" + id, `{"status":"gone"}`, 422, "invalid_request"},
		{"a PATCH of an unknown id", "PATCH", "/no-such-user", `{"name":"x"}`, 404, "user_not_found"},
		{"a DELETE of an unknown id", "DELETE", "/no-such-user", "", 404, "user_not_found"},
	} {
		r, out := admin.call(t, c.method, c.path, c.body)
		if r.StatusCode != c.status || out["error"] != c.code || out["error_description"] == "" {
			t.Errorf("%s: %s %s, want %d %s", c.name, r.Status, r.body, c.status, c.code)
		}
	}

	// Authentication and scopes: the Authenticator's answers.
	if r, out := (apiClient{e: e}).call(t, http.MethodGet, "/"+id, ""); r.StatusCode != http.StatusUnauthorized || out["error"] != "invalid_token" {
		t.Errorf("no token: %s %s", r.Status, r.body)
	}
	if r, out := reader.call(t, http.MethodPost, "", `{"email":"x@corp.example"}`); r.StatusCode != http.StatusForbidden || out["error"] != "insufficient_scope" {
		t.Errorf("a reader creating: %s %s", r.Status, r.body)
	}
	if r, out := reader.call(t, http.MethodGet, "/"+id, ""); r.StatusCode != http.StatusOK || out["id"] != id {
		t.Errorf("a reader reading: %s %s", r.Status, r.body)
	}
	if r, out := reader.call(t, http.MethodGet, "?email=DORA@corp.example", ""); r.StatusCode != http.StatusOK || out["id"] != id {
		t.Errorf("finding by address: %s %s", r.Status, r.body)
	}
	if r, _ := admin.call(t, http.MethodPut, "/"+id, `{}`); r.StatusCode != http.StatusMethodNotAllowed || r.Header.Get("Allow") != "GET, HEAD, PATCH, DELETE" {
		t.Errorf("PUT: %s Allow %q", r.Status, r.Header.Get("Allow"))
	}

	r, out = admin.call(t, http.MethodPatch, "/"+id, `{"name":"Dora Dee","locale":"en-GB"}`)
	if r.StatusCode != http.StatusOK || out["name"] != "Dora Dee" || out["locale"] != "en-GB" || out["status"] != "invited" {
		t.Fatalf("PATCH name and locale: %s %s", r.Status, r.body)
	}
	if got := admin.setStatus(t, id, "disabled"); got != "disabled" {
		t.Fatalf("disabled: %s", got)
	}
	// Enabled again before signing up: invited, not active.
	if got := admin.setStatus(t, id, "active"); got != "invited" {
		t.Fatalf("enabling a user who never signed up made them %s, want invited", got)
	}

	if r, _ := admin.call(t, http.MethodDelete, "/"+id, ""); r.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE: %s %s", r.Status, r.body)
	}
	if r, _ := admin.call(t, http.MethodGet, "/"+id, ""); r.StatusCode != http.StatusNotFound {
		t.Fatalf("GET after DELETE: %s", r.Status)
	}
}

// TestConcurrentCreatesOfOneAddress: of 50 creations of one address sent at
// once, exactly one is created; the others are told it is taken.
func TestConcurrentCreatesOfOneAddress(t *testing.T) {
	e := startCaddyWith(t, func(*env) siteConfig { return siteConfig{Mailgate: usersClients} })
	admin := e.apiClientOf(t, "admin", "admin-secret-0123456789")
	var mu sync.Mutex
	statuses := map[int]int{}
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			r, _ := admin.call(t, http.MethodPost, "", `{"email":"eve@corp.example"}`)
			mu.Lock()
			statuses[r.StatusCode]++
			mu.Unlock()
		})
	}
	wg.Wait()
	if statuses[http.StatusCreated] != 1 || statuses[http.StatusConflict] != 49 {
		t.Fatalf("statuses %v, want one 201 and 49 409", statuses)
	}
}

// TestDisabledUserIsNeverLetIn: once disabled through the API, a user gets
// in by no path: the session they had, a pending form link, a new link, a
// code, the API's login-email and magic-link, the exchange of a code from
// before, and the user JWT at /users/me. Enabled again, they sign in.
func TestDisabledUserIsNeverLetIn(t *testing.T) {
	e := startCaddyWith(t, func(*env) siteConfig {
		return siteConfig{Mailgate: usersClients + "\n\t\t" + projectsConfig}
	})
	admin := e.apiClientOf(t, "admin", "admin-secret-0123456789")
	const alice = "alice@example.com"
	const callback = "https://shop.example.com/callback"

	cookie := e.browser(t).login(alice, "/")
	id := admin.userID(t, alice)

	// Before the disable: a user JWT, an app's code, and a pending link.
	opID := e.startCode(t, "", `{"email":"`+alice+`"}`)
	r, out := e.confirmCode(t, alice, opID, e.mailedCode(t, alice))
	loginURL, _ := out["login_url"].(string)
	if r.StatusCode != http.StatusOK || !strings.Contains(loginURL, "token=") {
		t.Fatalf("code login: %s %s", r.Status, r.body)
	}
	userJWT := mustURL(loginURL).Query().Get("token")
	shop := e.apiClientOf(t, "shop", shopSecret)
	if r, body := e.callAPI(t, "/.mailgate/api/v1/login-email", shop.token, shop.key,
		`{"selector":"email","email":"`+alice+`","redirect_uri":"`+callback+`"}`); r.StatusCode != http.StatusOK {
		t.Fatalf("login-email: %s %v", r.Status, body)
	}
	code := e.browser(t).confirm(e.mailedLink(t, alice)).onward(t).Query().Get("code")
	pending := e.browser(t)
	pending.requestLink(alice, "/")
	pendingLink := e.mailedLink(t, alice)
	if e.userJWTStatus(t, userJWT) != http.StatusOK || e.sessionStatus(t, cookie) != http.StatusOK {
		t.Fatal("the session or the user JWT does not work before the disable")
	}

	if got := admin.setStatus(t, id, "disabled"); got != "disabled" {
		t.Fatalf("disable: %s", got)
	}
	if got := e.sessionStatus(t, cookie); got != http.StatusUnauthorized {
		t.Errorf("the session after the disable: %d, want 401", got)
	}
	if got := e.userJWTStatus(t, userJWT); got != http.StatusUnauthorized {
		t.Errorf("/users/me with the user JWT: %d, want 401", got)
	}
	if r := e.exchange(t, "shop", shopSecret, code, callback); r.StatusCode != http.StatusBadRequest || !strings.Contains(r.body, "invalid_grant") {
		t.Errorf("exchanging the earlier code: %s %s", r.Status, r.body)
	}
	if r := pending.confirm(pendingLink); r.StatusCode != http.StatusGone {
		t.Errorf("the pending form link: %s, want 410", r.Status)
	}
	fresh := e.browser(t)
	fresh.requestLink(alice, "/")
	if r := fresh.confirm(e.mailedLink(t, alice)); r.StatusCode != http.StatusGone {
		t.Errorf("a new form link: %s, want 410", r.Status)
	}
	opID = e.startCode(t, "", `{"email":"`+alice+`"}`)
	if r, out := e.confirmCode(t, alice, opID, e.mailedCode(t, alice)); r.StatusCode != http.StatusUnprocessableEntity || codeError(t, r, out) != "code_expired" {
		t.Errorf("a new code: %s %s", r.Status, r.body)
	}
	if r, body := e.callAPI(t, "/.mailgate/api/v1/login-email", shop.token, shop.key,
		`{"selector":"email","email":"`+alice+`","redirect_uri":"`+callback+`"}`); r.StatusCode != http.StatusNotFound || body["error"] != "account_not_found" {
		t.Errorf("login-email: %s %v", r.Status, body)
	}
	_, crm := e.clientCredentials(t, "crm", crmSecret, "")
	if r, body := e.callAPI(t, "/.mailgate/api/v1/magic-link", crm.AccessToken, testdpop.Key{},
		`{"email":"`+alice+`","clientId":"crm","redirectUri":"https://crm.example.com/callback","scope":"openid","responseMode":"query","responseType":"code","forceCreate":true}`); r.StatusCode != http.StatusNotFound {
		t.Errorf("magic-link: %s %v", r.Status, body)
	}

	if got := admin.setStatus(t, id, "active"); got != "active" {
		t.Fatalf("enabling a user who signed up made them %s, want active", got)
	}
	// The cut-off covers the second of the disable; a new session is of a
	// later one.
	clockOffset.Add(int64(time.Second))
	if fresh := e.browser(t).login(alice, "/"); e.sessionStatus(t, fresh) != http.StatusOK {
		t.Fatal("the enabled user's new session does not work")
	}
	if got := e.sessionStatus(t, cookie); got != http.StatusUnauthorized {
		t.Errorf("the session from before the disable works again after the enable: %d", got)
	}
}

// TestDeletedUserSignsUpAgainAsANewUser: a deleted user's session ends, the
// link mailed before the deletion does not bring the account back, and a
// new sign-in makes a new user with a new id.
func TestDeletedUserSignsUpAgainAsANewUser(t *testing.T) {
	e := startCaddyWith(t, func(*env) siteConfig { return siteConfig{Mailgate: usersClients} })
	admin := e.apiClientOf(t, "admin", "admin-secret-0123456789")
	const carol = "carol@corp.example"
	cookie := e.browser(t).login(carol, "/")
	id := admin.userID(t, carol)
	pending := e.browser(t)
	pending.requestLink(carol, "/")
	pendingLink := e.mailedLink(t, carol)

	if r, _ := admin.call(t, http.MethodDelete, "/"+id, ""); r.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE: %s %s", r.Status, r.body)
	}
	if got := e.sessionStatus(t, cookie); got != http.StatusUnauthorized {
		t.Errorf("the deleted user's session: %d, want 401", got)
	}
	if r := pending.confirm(pendingLink); r.StatusCode != http.StatusGone {
		t.Errorf("the link mailed before the deletion: %s, want 410", r.Status)
	}
	if r, _ := admin.call(t, http.MethodGet, "?email="+carol, ""); r.StatusCode != http.StatusNotFound {
		t.Fatalf("the old link recreated the account: %s %s", r.Status, r.body)
	}

	again := e.browser(t)
	again.login(carol, "/")
	if newID := admin.userID(t, carol); newID == id {
		t.Fatalf("signed up again with the deleted user's id %s", id)
	}
	if r := again.get("/"); r.StatusCode != http.StatusOK {
		t.Fatalf("the new user's session: %s", r.Status)
	}
}

// TestInvitedUserSigningInBecomesActive: a user an app created is invited
// until they sign in; the login form's link proves the address.
func TestInvitedUserSigningInBecomesActive(t *testing.T) {
	e := startCaddyWith(t, func(*env) siteConfig { return siteConfig{Mailgate: usersClients} })
	admin := e.apiClientOf(t, "admin", "admin-secret-0123456789")
	id := admin.create(t, `{"email":"frank@corp.example","name":"Frank"}`)
	frank := e.browser(t)
	frank.login("frank@corp.example", "/")
	r, out := admin.call(t, http.MethodGet, "/"+id, "")
	if r.StatusCode != http.StatusOK || out["status"] != "active" || out["signed_up"] == nil {
		t.Fatalf("after signing in: %s %s, want active with signed_up", r.Status, r.body)
	}
	if r := frank.get("/"); r.StatusCode != http.StatusOK {
		t.Fatalf("the invited user's session: %s", r.Status)
	}
	if got := e.upstream.last(t).Get("Remote-Email"); got != "frank@corp.example" {
		t.Fatalf("the upstream saw Remote-Email %q", got)
	}
}

// TestDisableEndsSessionsOnBothInstances: two instances share Redis and
// the storage; a disable through A's API ends the user's session on A and
// on B within the revocation stream's 5 seconds.
func TestDisableEndsSessionsOnBothInstances(t *testing.T) {
	srv := redistest.Start(t)
	site := siteConfig{Mailgate: usersClients + "\n\t\t" + redisStore(srv.Addr())}
	a := startCaddyWith(t, func(*env) siteConfig { return site })
	b := startSecondInstance(t, a, site)
	both := map[string]*env{"A": a, "B": b}
	cookie := a.browser(t).login("alice@example.com", "/")
	expectStatus(t, "the session", http.StatusOK, both, func(inst *env) int { return inst.sessionStatus(t, cookie) })

	admin := a.apiClientOf(t, "admin", "admin-secret-0123456789")
	since := time.Now()
	admin.setStatus(t, admin.userID(t, "alice@example.com"), "disabled")
	awaitStatus(t, "the disabled user's session", http.StatusUnauthorized, since, both, func(inst *env) int {
		return inst.sessionStatus(t, cookie)
	})
}
