package caddymodule

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/mailgate/caddy-mailgate/internal/testcert"
)

// The sign-in API called from an app's own page in a real browser: the
// page is on another origin than mailgate, posts the password with
// credentials: "include", and the cookie mailgate sets in that answer must
// then let the browser through to the protected site. Whether Chromium
// keeps that cookie depends on where the page is: a page on the same site
// (the same host on another port here, kiosk.example.com beside
// login.example.com in production) is a same-site request, and the
// SameSite=Lax session cookie is kept; a page on another site is a
// cross-site request, whose Lax cookie Chromium does not store.

// appPage serves an app's sign-in page over HTTPS (the test's own
// certificate, for localhost and 127.0.0.1), on a port of its own.
func appPage(t *testing.T) (port string) {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, "<!doctype html><title>The Kiosk</title><p>sign in here")
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{testcert.New(t).TLS}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return mustURL(srv.URL).Port()
}

// fetchResult is what a page's fetch of the sign-in API came to.
type fetchResult struct {
	Status     int    `json:"status"`
	Next       string `json:"next"`
	StateToken string `json:"stateToken"`
	Error      string `json:"error"`
}

// pageFetch has the page the browser is on fetch mailgate's path with
// credentials, as the app's script does, and returns what the fetch came
// to: a status and the answer's next and stateToken, or the error it
// rejected with. body, when not empty, is POSTed as JSON.
func pageFetch(t *testing.T, wd *webDriver, e *env, path, body string) fetchResult {
	t.Helper()
	init := `{credentials: "include"}`
	if body != "" {
		init = `{method: "POST", credentials: "include", headers: {"Content-Type": "application/json"}, body: ` + "`" + body + "`" + `}`
	}
	wd.script(`window.result = null;
		fetch("` + e.base + path + `", ` + init + `)
		  .then(r => r.json().then(b => { window.result = {status: r.status, next: b.next, stateToken: b.stateToken || ""}; }))
		  .catch(err => { window.result = {error: String(err)}; });`)
	var res fetchResult
	wd.waitFor("the page's fetch", func() bool {
		raw, _ := json.Marshal(wd.script(`return window.result`))
		return json.Unmarshal(raw, &res) == nil && (res.Status != 0 || res.Error != "")
	})
	return res
}

// signInFromPage opens the app's page at origin and has it post a sign-in
// to mailgate.
func signInFromPage(t *testing.T, wd *webDriver, e *env, origin, body string) fetchResult {
	t.Helper()
	wd.open(origin + "/")
	return pageFetch(t, wd, e, "/.mailgate/api/account/login", body)
}

// TestSignInFromAnotherOriginInChromium: a page on a configured
// cors_origin of the same site signs in with fetch, and the browser then
// goes through to the protected site with the cookie of that answer; a page
// of an origin no client names is refused by CORS (its fetch rejects, and
// nobody is signed in); a configured origin of another site gets its
// answer, but Chromium keeps no cookie from it.
func TestSignInFromAnotherOriginInChromium(t *testing.T) {
	port, strangerPort := appPage(t), appPage(t)
	sameSite := "https://localhost:" + port
	crossSite := "https://127.0.0.1:" + port
	stranger := "https://localhost:" + strangerPort
	e := startCaddyWith(t, func(*env) siteConfig {
		return siteConfig{Mailgate: `client kiosk {
			sign_in
			cors_origin ` + sameSite + ` ` + crossSite + `
		}`}
	})
	withPassword(t, "dana@corp.example", stepsPassword)
	wd := startBrowser(t)
	body := `{"username":"dana","password":"` + stepsPassword + `","clientId":"kiosk"}`
	signedIn := func() bool {
		wd.open(e.base + "/dashboard")
		return wd.url() == e.base+"/dashboard" && strings.Contains(wd.source(), "hello dana@corp.example")
	}

	if res := signInFromPage(t, wd, e, stranger, body); res.Error == "" || res.Status != 0 {
		t.Fatalf("a page of an origin no client names: %+v; want the fetch to reject", res)
	}
	if signedIn() {
		t.Fatal("a page of an origin no client names signed the browser in")
	}

	if res := signInFromPage(t, wd, e, crossSite, body); res.Status != http.StatusOK || res.Next != "done" {
		t.Fatalf("a configured origin of another site: %+v; want its answer", res)
	}
	if signedIn() {
		t.Fatal("Chromium kept the session cookie of a cross-site answer: docs/sign-in.md says it does not")
	}

	if res := signInFromPage(t, wd, e, sameSite, body); res.Status != http.StatusOK || res.Next != "done" {
		t.Fatalf("a configured origin of the same site: %+v", res)
	}
	if c, ok := wd.cookies()["__Host-mailgate"]; !ok || !c.Secure || !c.HTTPOnly || c.SameSite != "Lax" {
		t.Fatalf("the session cookie in the browser: %+v", wd.cookies())
	}
	if !signedIn() {
		t.Fatalf("the protected site after the same-site sign-in: at %s\n%s", wd.url(), wd.source())
	}
	if got := e.upstream.last(t).Get("Remote-Email"); got != "dana@corp.example" {
		t.Fatalf("the upstream saw %q", got)
	}
}

// TestEmailCodeStepFromAnotherOriginInChromium: the app's page (same site,
// another origin) signs in for a client with second_factor email_code and
// gets email_code; its polls of login-resume answer the same until the
// mailed link is confirmed on another device; the next poll is done, and
// the cookie of that GET lets the browser through to the protected site.
func TestEmailCodeStepFromAnotherOriginInChromium(t *testing.T) {
	app := "https://localhost:" + appPage(t)
	e := startCaddyWith(t, func(*env) siteConfig {
		return siteConfig{Mailgate: `client guard {
			sign_in
			second_factor email_code
			cors_origin ` + app + `
		}`}
	})
	withPassword(t, "dana@corp.example", stepsPassword)
	wd := startBrowser(t)
	res := signInFromPage(t, wd, e, app, `{"username":"dana","password":"`+stepsPassword+`","clientId":"guard"}`)
	if res.Status != http.StatusOK || res.Next != "email_code" || res.StateToken == "" {
		t.Fatalf("the sign-in: %+v", res)
	}
	poll := "/.mailgate/api/account/login-resume?token=" + url.QueryEscape(res.StateToken)
	if again := pageFetch(t, wd, e, poll, ""); again.Status != http.StatusOK || again.Next != "email_code" || again.StateToken != res.StateToken {
		t.Fatalf("a poll before the confirmation: %+v", again)
	}
	if _, ok := wd.cookies()["__Host-mailgate"]; ok {
		t.Fatal("a session cookie before the code's link was confirmed")
	}
	e.confirmMailed(t, "dana@corp.example", app)
	if done := pageFetch(t, wd, e, poll, ""); done.Status != http.StatusOK || done.Next != "done" {
		t.Fatalf("the poll after the confirmation: %+v", done)
	}
	wd.open(e.base + "/dashboard")
	if wd.url() != e.base+"/dashboard" || !strings.Contains(wd.source(), "hello dana@corp.example") {
		t.Fatalf("the protected site after the code: at %s\n%s", wd.url(), wd.source())
	}
}
