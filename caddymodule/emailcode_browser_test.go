package caddymodule

import (
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// codeApp is a project's browser app: a page on an origin of its own
// (http://127.0.0.1:port, which Chromium counts as potentially trustworthy)
// that signs people in through the code API with cross-origin fetch, as a
// single-page app or a game client does. Its callback and status pages are
// its own too.
type codeApp struct {
	srv *httptest.Server
	// api is the code API's base ({base_url}{prefix}), and names the app
	// whose callback URLs the page sends, set before the server starts.
	api   string
	names *codeApp
}

// newCodeApp listens at once, so that its origin can go into Caddy's
// config, and serves once started.
func newCodeApp(t *testing.T) *codeApp {
	a := &codeApp{}
	a.srv = httptest.NewUnstartedServer(a)
	t.Cleanup(a.srv.Close)
	return a
}

// start serves the page of the app names, which is a itself unless the
// page is a copy of another app's on an origin of its own.
func (a *codeApp) start(api string, names *codeApp) {
	a.api, a.names = api, names
	a.srv.Start()
}

func (a *codeApp) origin() string   { return "http://" + a.srv.Listener.Addr().String() }
func (a *codeApp) callback() string { return a.origin() + "/auth/callback" }
func (a *codeApp) linked() string   { return a.origin() + "/auth/linked" }

// project is the project block for this app: the page's origin may call
// the API, and the login ends at its callback or, for a confirmed link, at
// its status page. The id is gameProject, the audience verifyUserJWT
// expects.
func (a *codeApp) project() string {
	return `project ` + gameProject + ` {
			name "The Browser Game"
			callback_url ` + a.callback() + ` ` + a.linked() + `
			cors_origin ` + a.origin() + `
		}`
}

// codeAppPage starts a login with the address typed (with a link in the
// mail when the box is ticked), then either completes it with the code
// typed, or polls for the code until someone confirms the mailed link and
// completes with that; a completed login goes to login_url. Every call's
// outcome goes into the log in sessionStorage, which the callback page on
// the same origin still holds: its step, and the status and body the
// script could read, or the error fetch threw.
var codeAppPage = template.Must(template.New("").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>The Browser Game</title></head>
<body>
<form id="start">
<input id="email" type="email" autocomplete="email">
<label><input id="link" type="checkbox"> email me a link too</label>
<button id="send">Email me a code</button>
</form>
<form id="complete">
<input id="code" autocomplete="one-time-code" inputmode="numeric">
<button id="go">Sign in</button>
</form>
<script>
const api = {{.API}}, q = "?projectId=" + {{.Project}}, callback = {{.Callback}}, linked = {{.Linked}};
// The log outlives the page, for the callback page to show.
sessionStorage.setItem("log", "[]");
let email, operation;
async function call(step, method, path, body) {
	let entry;
	try {
		const init = {method, headers: {}, cache: "no-store"};
		if (body !== undefined) {
			// Not a CORS-safelisted type: the browser preflights.
			init.headers["Content-Type"] = "application/json";
			init.body = JSON.stringify(body);
		}
		const r = await fetch(api + path, init);
		entry = {step, status: r.status, body: await r.json()};
	} catch (e) {
		entry = {step, error: e.name + ": " + e.message};
	}
	sessionStorage.setItem("log", JSON.stringify(JSON.parse(sessionStorage.getItem("log")).concat([entry])));
	return entry;
}
async function complete(code) {
	const r = await call("confirm", "POST", "/login/email/confirm" + q, {email, operation_id: operation, code});
	if (r.status === 200) location.assign(r.body.login_url);
}
async function poll() {
	for (;;) {
		const r = await call("poll", "GET", "/login/email/request/code" + q +
			"&login=" + encodeURIComponent(email) + "&operation_id=" + encodeURIComponent(operation));
		if (r.status === 200) return complete(r.body.code);
		if (r.status !== 422 || r.body.error.code !== "not_confirmed") return;
		await new Promise(done => setTimeout(done, 100));
	}
}
document.getElementById("start").addEventListener("submit", async ev => {
	ev.preventDefault();
	email = document.getElementById("email").value;
	const body = {email}, sendLink = document.getElementById("link").checked;
	if (sendLink) {
		body.send_link = true;
		body.link_url = linked;
	}
	const r = await call("start", "POST", "/login/email/request" + q + "&login_url=" + encodeURIComponent(callback), body);
	if (r.status !== 200) return;
	operation = r.body.operation_id;
	if (sendLink) poll();
});
document.getElementById("complete").addEventListener("submit", ev => {
	ev.preventDefault();
	complete(document.getElementById("code").value);
});
</script>
</body></html>
`))

func (a *codeApp) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/app":
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_ = codeAppPage.Execute(w, map[string]string{
			"API": a.api, "Project": gameProject, "Callback": a.names.callback(), "Linked": a.names.linked(),
		})
	case "/auth/callback":
		fmt.Fprint(w, "signed in")
	case "/auth/linked":
		fmt.Fprint(w, "go back to the game")
	default:
		http.NotFound(w, r)
	}
}

// appEntry is one entry of the app page's log.
type appEntry struct {
	Step   string         `json:"step"`
	Status int            `json:"status"`
	Body   map[string]any `json:"body"`
	Error  string         `json:"error"`
}

// errorCode is the API error code in the entry's body, if any.
func (e appEntry) errorCode() string {
	m, _ := e.Body["error"].(map[string]any)
	code, _ := m["code"].(string)
	return code
}

// appLog reads the app's log, on its page or its callback.
func (wd *webDriver) appLog() []appEntry {
	wd.t.Helper()
	raw, _ := json.Marshal(wd.script(`return JSON.parse(sessionStorage.getItem("log") || "[]")`))
	var log []appEntry
	if err := json.Unmarshal(raw, &log); err != nil {
		wd.t.Fatal(err)
	}
	return log
}

// awaitStep waits for the app page's nth entry (from 1) of step and
// returns it.
func (wd *webDriver) awaitStep(step string, nth int) appEntry {
	wd.t.Helper()
	var found appEntry
	wd.waitFor(fmt.Sprintf("the app's call #%d to %s", nth, step), func() bool {
		n := 0
		for _, e := range wd.appLog() {
			if e.Step == step {
				if n++; n == nth {
					found = e
					return true
				}
			}
		}
		return false
	})
	return found
}

// preflights are the statuses of the CORS preflights of the start that
// mailgate's own request log holds (it names no origin, so a test counts
// them before and after).
func (e *env) preflights(t *testing.T) []int {
	t.Helper()
	var statuses []int
	for _, line := range e.logEntries(t, "caddy.log", "handled request") {
		var entry struct {
			Logger, Method, Path string
			Status               int
		}
		if json.Unmarshal([]byte(line), &entry) == nil && strings.Contains(entry.Logger, "mailgate") &&
			entry.Method == http.MethodOptions && entry.Path == "/.mailgate/login/email/request" {
			statuses = append(statuses, entry.Status)
		}
	}
	return statuses
}

// awaitPreflight waits for a preflight of the start after the first seen
// ones in the log, and returns its status: the line is written as the
// answer goes out.
func (e *env) awaitPreflight(t *testing.T, seen int) int {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if got := e.preflights(t); len(got) > seen {
			if len(got) > seen+1 {
				t.Fatalf("%d preflights of one start: %v", len(got)-seen, got[seen:])
			}
			return got[seen]
		}
		if time.Now().After(deadline) {
			t.Fatal("the browser sent no preflight of the start within 5s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// scriptWith runs JavaScript in the page with arguments.
func (wd *webDriver) scriptWith(js string, args ...any) {
	wd.t.Helper()
	wd.call(http.MethodPost, wd.session+"/execute/sync", map[string]any{"script": js, "args": args}, nil)
}

// signedIn waits for the app page to land on the callback and returns the
// user JWT from its URL.
func (a *codeApp) signedIn(t *testing.T, wd *webDriver) string {
	t.Helper()
	wd.waitFor("the app's callback", func() bool { return strings.HasPrefix(wd.url(), a.callback()+"?token=") })
	return mustURL(wd.url()).Query().Get("token")
}

// TestEmailCodeInBrowser lives seed 003's journey as a browser app does, in
// headless Chromium: a page on the project's origin starts a code login
// with a cross-origin fetch that the browser preflights, the person types
// the mailed code into the page, the page completes and lands on the
// callback with a user JWT that verifies against the JWKS with go-jose. A
// page of another origin cannot call the API. In the link variant the page
// polls while the person confirms the mailed link on another device.
func TestEmailCodeInBrowser(t *testing.T) {
	app, foreign := newCodeApp(t), newCodeApp(t)
	e := startCaddyWith(t, func(e *env) siteConfig {
		return siteConfig{Mailgate: app.project(), Global: e.logBlock("caddy.log", "")}
	})
	app.start(e.base+"/.mailgate", app)
	// The app's own page, with its callback URLs, served from an origin
	// that is not the project's.
	foreign.start(e.base+"/.mailgate", app)
	wd := startBrowser(t)
	const alice = "alice@example.com"

	t.Run("start from the project's origin, type the mailed code, complete, verify the user JWT", func(t *testing.T) {
		seen := len(e.preflights(t))
		wd.open(app.origin() + "/app")
		wd.typeInto("#email", alice)
		wd.click("#send")
		start := wd.awaitStep("start", 1)
		id, _ := start.Body["operation_id"].(string)
		if start.Status != http.StatusOK || id == "" {
			t.Fatalf("the app's start: %+v", start)
		}
		if got := e.awaitPreflight(t, seen); got != http.StatusNoContent {
			t.Fatalf("the browser's preflight of the start was answered %d", got)
		}
		code := e.mailedCode(t, alice)
		if strings.Contains(id, code) {
			t.Fatalf("the operation id %q holds the code", id)
		}

		// A mistyped code: the app can read the error, as CORS covers
		// error answers too.
		wrong := "000000"
		if code == wrong {
			wrong = "111111"
		}
		wd.typeInto("#code", wrong)
		wd.click("#go")
		if got := wd.awaitStep("confirm", 1); got.Status != http.StatusUnprocessableEntity || got.errorCode() != "wrong_code" {
			t.Fatalf("a wrong code, as the app sees it: %+v", got)
		}

		// The code as a person types it from the mail, in two groups.
		wd.script(`document.getElementById("code").value = ""`)
		wd.typeInto("#code", code[:3]+" "+code[3:])
		wd.click("#go")
		token := app.signedIn(t, wd)
		claims := verifyUserJWT(t, e, token)
		if claims["email"] != alice || claims["iss"] != e.base+"/.mailgate" || claims["sub"] == "" {
			t.Fatalf("claims %v", claims)
		}
		if _, ok := claims["payload"]; ok {
			t.Fatalf("a payload claim for a project without custom_payload: %v", claims)
		}
	})

	t.Run("a page of another origin cannot call the API", func(t *testing.T) {
		before, seen := e.mailsTo(alice), len(e.preflights(t))
		wd.open(foreign.origin() + "/app")
		wd.typeInto("#email", alice)
		wd.click("#send")
		if got := wd.awaitStep("start", 1); !strings.HasPrefix(got.Error, "TypeError") {
			t.Fatalf("a start from %s, as its page sees it: %+v; want the browser to block it", foreign.origin(), got)
		}
		if got := e.awaitPreflight(t, seen); got != http.StatusForbidden {
			t.Fatalf("the preflight from %s was answered %d, want 403", foreign.origin(), got)
		}
		// The preflight failed, so the start itself was never sent.
		if n := e.mailsTo(alice) - before; n != 0 {
			t.Fatalf("a start from another origin mailed %d codes", n)
		}

		// Reading an answer needs no preflight, but the browser keeps it
		// from a page of another origin: this one must not read the code
		// of an operation whose link was confirmed.
		id := e.startCode(t, "&login_url="+url.QueryEscape(app.callback()), `{"email":"`+alice+`","send_link":true,"link_url":"`+app.linked()+`"}`)
		link := e.mailedCodeLink(t, alice)
		other := e.browser(t)
		other.get(mustURL(link).RequestURI())
		if r := other.post("/.mailgate/login/email/link", map[string]string{"t": mustURL(link).Query().Get("t"), "form_token": other.cookie("__Host-mailgate-form")}); r.StatusCode != http.StatusOK {
			t.Fatalf("confirming the link: %s", r.Status)
		}
		wd.scriptWith(`email = arguments[0]; operation = arguments[1]; poll()`, alice, id)
		if got := wd.awaitStep("poll", 1); !strings.HasPrefix(got.Error, "TypeError") {
			t.Fatalf("the code, as a page of another origin sees it: %+v", got)
		}
		// The same call from the project's origin reads it.
		wd.open(app.origin() + "/app")
		wd.scriptWith(`email = arguments[0]; operation = arguments[1]; poll()`, alice, id)
		if got := wd.awaitStep("poll", 1); got.Status != http.StatusOK || got.Body["code"] != e.mailedCode(t, alice) {
			t.Fatalf("the code, as the project's page sees it: %+v", got)
		}
		app.signedIn(t, wd)
	})

	t.Run("the link variant: the app polls, another device confirms the mailed link", func(t *testing.T) {
		wd.open(app.origin() + "/app")
		wd.typeInto("#email", alice)
		wd.click("#link")
		wd.click("#send")
		if got := wd.awaitStep("start", 1); got.Status != http.StatusOK {
			t.Fatalf("the app's start with send_link: %+v", got)
		}
		if got := wd.awaitStep("poll", 1); got.Status != http.StatusUnprocessableEntity || got.errorCode() != "not_confirmed" {
			t.Fatalf("the app's first poll: %+v", got)
		}
		code, link := e.mailedCode(t, alice), e.mailedCodeLink(t, alice)

		phone := startBrowser(t) // another device: a browser of its own
		phone.open(link)
		if src := phone.source(); !strings.Contains(src, "a•••e@example.com") {
			t.Fatalf("the link's page:\n%s", src)
		}
		// Opening the page confirmed nothing: the app still polls.
		// The poll in flight may have been sent before the page loaded;
		// the one after it was not.
		polls := len(wd.appLog())
		wd.waitFor("two more polls", func() bool { return len(wd.appLog()) > polls+1 })
		if log := wd.appLog(); log[len(log)-1].errorCode() != "not_confirmed" {
			t.Fatalf("after the page was opened, the app's poll: %+v", log[len(log)-1])
		}
		phone.click("button[type=submit]")
		phone.waitFor("the go-back-to-the-app page", func() bool { return strings.Contains(phone.source(), "go back to the app") })
		if _, ok := phone.cookies()["__Host-mailgate"]; ok {
			t.Fatal("confirming a code's link started a session on the other device")
		}

		token := app.signedIn(t, wd)
		var got appEntry
		for _, entry := range wd.appLog() {
			if entry.Step == "poll" && entry.Status == http.StatusOK {
				got = entry
			}
		}
		if got.Body["code"] != code {
			t.Fatalf("the app polled %+v, want the mailed code %s", got, code)
		}
		if claims := verifyUserJWT(t, e, token); claims["email"] != alice {
			t.Fatalf("claims %v", claims)
		}

		// The other device's page leads to the app's status page.
		phone.click("a[href='" + app.linked() + "']")
		phone.waitFor("the app's status page", func() bool { return phone.url() == app.linked() })
	})
}
