package caddymodule

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/mailgate/caddy-mailgate/internal/testdpop"
)

// The journeys of logins that an app starts through the API (seeds 000 and
// 002), finished in headless Chromium: the person opens the mailed link and
// presses Sign in, and the app's callback must get what it asked for in
// every response mode. Chromium applies the confirmation page's CSP
// form-action to where the form's answer leads, which a client without a
// browser never notices.

// appSecret is the secret of the client "app" whose callback is a
// callbackApp.
const appSecret = "app-secret-0123456789"

// callbackApp is an app on an origin of its own (http://127.0.0.1:port)
// that ends its logins at /callback, as an app behind an API client does.
// It hands each request to its callback to the test, as the app reads it.
// A code in the query it takes in on the server, and sends the browser on
// to its home page on another of its origins (http://localhost:port), as
// apps do once they have what they need.
type callbackApp struct {
	srv  *httptest.Server
	hits chan callbackHit
}

// callbackHit is one request to the app's callback.
type callbackHit struct {
	Method string
	Query  url.Values
	Form   url.Values
}

func newCallbackApp(t *testing.T) *callbackApp {
	a := &callbackApp{hits: make(chan callbackHit, 8)}
	a.srv = httptest.NewServer(a)
	t.Cleanup(a.srv.Close)
	return a
}

func (a *callbackApp) callback() string { return a.srv.URL + "/callback" }

// client is the mailgate client block of the app.
func (a *callbackApp) client() string {
	return `client app {
			secret ` + appSecret + `
			redirect_uri ` + a.callback() + `
			scopes login_email magic_link
		}`
}

// home is the app's home page, on the origin the callback sends the browser
// on to.
func (a *callbackApp) home() string {
	return "http://localhost:" + mustURL(a.srv.URL).Port() + "/home"
}

func (a *callbackApp) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/callback":
		_ = r.ParseForm()
		a.hits <- callbackHit{Method: r.Method, Query: r.URL.Query(), Form: r.PostForm}
		if r.Method == http.MethodGet && r.URL.Query().Has("code") {
			http.Redirect(w, r, a.home(), http.StatusSeeOther)
			return
		}
	case "/home":
	default:
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprint(w, "<!doctype html><title>The App</title><p>signed in at the app")
}

// awaitHome waits for the browser to reach the app's home page.
func (a *callbackApp) awaitHome(wd *webDriver) {
	wd.waitFor("the app's home page", func() bool { return wd.url() == a.home() })
}

// startAppLogins starts Caddy with the app's client and Chromium, with
// alice's account made by a first login.
func startAppLogins(t *testing.T) (*env, *callbackApp, *webDriver) {
	app := newCallbackApp(t)
	e := startCaddyWith(t, func(*env) siteConfig { return siteConfig{Mailgate: app.client()} })
	e.browser(t).login("alice@example.com", "/")
	return e, app, startBrowser(t)
}

// appToken is a DPoP-bound access token of the app's client, and its key.
func (e *env) appToken(t *testing.T) (string, testdpop.Key) {
	t.Helper()
	key := testdpop.NewKey(t)
	r, tok := e.clientCredentials(t, "app", appSecret, "", key.Proof(t, "POST", e.base+"/.mailgate/oauth/token", "", now()))
	if tok.AccessToken == "" {
		t.Fatalf("the app's token: %s %+v", r.Status, tok)
	}
	return tok.AccessToken, key
}

// signInAt opens alice's newest mailed link in the browser, presses Sign
// in, and returns what the app's callback received.
func (a *callbackApp) signInAt(t *testing.T, e *env, wd *webDriver) callbackHit {
	t.Helper()
	wd.open(e.mailedLink(t, "alice@example.com"))
	press(wd)
	return a.received(t, wd)
}

// press submits the page's form with its button, and keeps the CSP
// violations of the page in window.violations.
func press(wd *webDriver) {
	wd.script(`window.violations = [];
		document.addEventListener("securitypolicyviolation", e => violations.push(e.violatedDirective + " blocked " + e.blockedURI));`)
	wd.click("button[type=submit]")
}

// received returns what the app's callback received next. When the
// callback is not reached, it says which CSP directives the page the
// browser is stuck on violated.
func (a *callbackApp) received(t *testing.T, wd *webDriver) callbackHit {
	t.Helper()
	select {
	case hit := <-a.hits:
		return hit
	case <-time.After(10 * time.Second):
		t.Fatalf("the app's callback got nothing within 10s; the browser is at %s; CSP violations: %v",
			wd.url(), wd.script(`return window.violations`))
		return callbackHit{}
	}
}

// TestBrowserLoginEmailToApp is seed 000 in a browser: login-email's link
// ends at the app's callback with the code and the state in the query.
func TestBrowserLoginEmailToApp(t *testing.T) {
	e, app, wd := startAppLogins(t)
	token, key := e.appToken(t)
	const state = "order 7 & more=yes"
	body, _ := json.Marshal(map[string]string{
		"selector": "email", "email": "alice@example.com", "redirect_uri": app.callback(), "state": state,
	})
	if r, resp := e.callAPI(t, "/.mailgate/api/v1/login-email", token, key, string(body)); r.StatusCode != http.StatusOK {
		t.Fatalf("login-email: %s %v", r.Status, resp)
	}

	hit := app.signInAt(t, e, wd)
	if hit.Method != http.MethodGet || hit.Query.Get("code") == "" || hit.Query.Get("state") != state || len(hit.Query) != 2 {
		t.Fatalf("the app's callback got %s ?%v, want a GET with the code and the state %q", hit.Method, hit.Query, state)
	}
	app.awaitHome(wd)
	if r := e.exchange(t, "app", appSecret, hit.Query.Get("code"), app.callback()); r.StatusCode != http.StatusOK {
		t.Errorf("the app could not exchange its code: %s %s", r.Status, r.body)
	}
	// The login signed the person in to the site as well.
	wd.open(e.base + "/private")
	if src := wd.source(); !strings.Contains(src, "hello alice@example.com") {
		t.Errorf("the site after the login:\n%s", src)
	}
}

// TestBrowserMagicLinkToApp is seed 002 in a browser, in each response
// mode: the parameters reach the app in the query, in the fragment (which
// only the browser sees), or as a form post.
func TestBrowserMagicLinkToApp(t *testing.T) {
	e, app, wd := startAppLogins(t)
	token, key := e.appToken(t)
	ask := func(t *testing.T, mode, typ string, resetPassword bool) {
		t.Helper()
		body, _ := json.Marshal(map[string]any{
			"email": "alice@example.com", "clientId": "app", "redirectUri": app.callback(),
			"scope": "openid", "responseMode": mode, "responseType": typ, "resetPassword": resetPassword,
		})
		if r, resp := e.callAPI(t, "/.mailgate/api/v1/magic-link", token, key, string(body)); r.StatusCode != http.StatusOK {
			t.Fatalf("magic-link %s %s: %s %v", mode, typ, r.Status, resp)
		}
	}
	tokenParams := []string{"access_token", "expires_in", "token_type"}

	t.Run("query", func(t *testing.T) {
		ask(t, "query", "code", false)
		hit := app.signInAt(t, e, wd)
		if hit.Method != http.MethodGet || hit.Query.Get("code") == "" || len(hit.Query) != 1 {
			t.Fatalf("the app's callback got %s ?%v, want a GET with only the code", hit.Method, hit.Query)
		}
		app.awaitHome(wd)
		if r := e.exchange(t, "app", appSecret, hit.Query.Get("code"), app.callback()); r.StatusCode != http.StatusOK {
			t.Errorf("the app could not exchange its code: %s %s", r.Status, r.body)
		}
	})

	// The set-password page, shown again for a mistyped password, sends
	// the browser on to the app too.
	t.Run("query after a new password", func(t *testing.T) {
		ask(t, "query", "code", true)
		wd.open(e.mailedLink(t, "alice@example.com"))
		press(wd)
		wd.waitFor("the set-password page", func() bool { return strings.Contains(wd.source(), `action="/.mailgate/password"`) })
		wd.typeInto("#password", "a long enough password")
		wd.typeInto("#confirm", "a long enough passw0rd")
		press(wd)
		wd.waitFor("the set-password page again", func() bool { return strings.Contains(wd.source(), `role="alert"`) })
		wd.typeInto("#password", "a long enough password")
		wd.typeInto("#confirm", "a long enough password")
		press(wd)
		hit := app.received(t, wd)
		if hit.Method != http.MethodGet || hit.Query.Get("code") == "" || len(hit.Query) != 1 {
			t.Fatalf("the app's callback got %s ?%v, want a GET with only the code", hit.Method, hit.Query)
		}
		app.awaitHome(wd)
	})

	t.Run("fragment", func(t *testing.T) {
		ask(t, "fragment", "code token", false)
		hit := app.signInAt(t, e, wd)
		if hit.Method != http.MethodGet || len(hit.Query) != 0 {
			t.Fatalf("the app's callback got %s ?%v, want a GET with nothing for the server", hit.Method, hit.Query)
		}
		var landed *url.URL
		wd.waitFor("the app's page", func() bool { landed = mustURL(wd.url()); return landed.Path == "/callback" })
		frag, err := url.ParseQuery(landed.Fragment)
		if err != nil || frag.Get("code") == "" || frag.Get("token_type") != "Bearer" || len(frag) != 1+len(tokenParams) {
			t.Fatalf("the app's page has the fragment %q, want the code and the token", landed.Fragment)
		}
		for _, p := range tokenParams {
			if frag.Get(p) == "" {
				t.Errorf("the fragment has no %s", p)
			}
		}
	})

	t.Run("form_post", func(t *testing.T) {
		ask(t, "form_post", "code token", false)
		hit := app.signInAt(t, e, wd)
		if hit.Method != http.MethodPost || len(hit.Query) != 0 || hit.Form.Get("code") == "" || len(hit.Form) != 1+len(tokenParams) {
			t.Fatalf("the app's callback got %s ?%v with the form %v, want a POST with the code and the token", hit.Method, hit.Query, hit.Form)
		}
		for _, p := range tokenParams {
			if hit.Form.Get(p) == "" {
				t.Errorf("the form has no %s", p)
			}
		}
	})
}
