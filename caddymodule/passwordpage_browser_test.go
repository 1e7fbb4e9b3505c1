package caddymodule

import (
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// passwordPageConfig turns the login page's password sign-in on, with
// kioskConfig's limits (an account locked after three wrong passwords) and
// no client, and adds extra mailgate lines.
func passwordPageConfig(extra string) func(*env) siteConfig {
	return func(e *env) siteConfig {
		return siteConfig{Mailgate: "password_login on\n\t\t" + extra, Limits: kioskConfig(e).Limits}
	}
}

// passwordSignIn posts the password form as a browser that loaded it, and
// returns the answer.
func (b *browser) passwordSignIn(username, pw string, more ...string) response {
	b.t.Helper()
	b.get("/.mailgate/login/password")
	form := map[string]string{"username": username, "password": pw, "return": "/private", "form_token": b.cookie("__Host-mailgate-form")}
	for i := 0; i+1 < len(more); i += 2 {
		form[more[i]] = more[i+1]
	}
	return b.post("/.mailgate/login/password", form)
}

// pageText is what a person reads on the page: its text, without the
// values hidden in its form.
func (wd *webDriver) pageText() string {
	s, _ := wd.script(`return document.querySelector("main").innerText`).(string)
	return s
}

// TestBrowserExpiredPasswordPage: an operator expires a password with
// `caddy mailgate users expire-password`; on mailgate's login page, in
// Chromium, the person chooses "use a password instead", signs in with
// the old password and lands on the expired-password page, with no
// session yet. A blocklisted password and one that is the person's own
// address are refused, each naming its rule; a good one signs in and the
// person reaches the page they wanted, with a cookie that ends with the
// browser. The old password no longer works; the new one does.
func TestBrowserExpiredPasswordPage(t *testing.T) {
	cfg := passwordPageConfig("")
	e := startCaddyWith(t, cfg)
	withPassword(t, "dana@corp.example", stepsPassword)
	if out, err := e.runCLI(t, cfg(e), "users", "expire-password", "dana@corp.example"); err != nil {
		t.Fatalf("users expire-password: %v %s", err, out)
	}

	wd := startBrowser(t)
	wd.open(e.base + "/private?x=1")
	wd.waitFor("the login page", func() bool { return strings.Contains(wd.url(), "/.mailgate/login?return=") })
	wd.click(`a[href*="/login/password"]`)
	wd.waitFor("the password form", func() bool { return strings.Contains(wd.url(), "/.mailgate/login/password") })
	wd.typeInto("#username", "dana")
	wd.typeInto("#password", stepsPassword)
	wd.click("button[type=submit]")
	wd.waitFor("the expired-password page", func() bool { return strings.Contains(wd.pageText(), "Your password has expired") })
	wd.screenshot("password-1-expired")
	if _, ok := wd.cookies()["__Host-mailgate"]; ok {
		t.Fatal("a session started before the expired password was replaced")
	}

	refused := func(pw, rule string) {
		t.Helper()
		wd.typeInto("#password", pw)
		wd.typeInto("#confirm", pw)
		wd.click("button[type=submit]")
		wd.waitFor("the refusal of "+pw, func() bool {
			text := wd.pageText()
			return strings.Contains(text, "This password cannot be used") && strings.Contains(text, rule)
		})
	}
	refused("12345678900987654321", "This password is common in data breaches")
	wd.screenshot("password-2-refused")
	refused("dana@corp.example", "Do not use your own username or email address")
	refused(stepsPassword, "Choose a password other than the expired one.")

	const fresh = "a new and rather long passphrase"
	wd.typeInto("#password", fresh)
	wd.typeInto("#confirm", fresh)
	wd.click("button[type=submit]")
	wd.waitFor("the return to /private?x=1", func() bool { return wd.url() == e.base+"/private?x=1" })
	if src := wd.source(); !strings.Contains(src, "hello dana@corp.example") {
		t.Fatalf("protected page:\n%s", src)
	}
	if c, ok := wd.cookies()["__Host-mailgate"]; !ok || c.Expiry != 0 || !c.Secure || !c.HTTPOnly {
		t.Fatalf("the session cookie (none asked to be kept): %+v, present %v", c, ok)
	}

	if r := e.browser(t).passwordSignIn("dana", stepsPassword); r.StatusCode != http.StatusBadRequest ||
		!strings.Contains(r.body, "The username or password is wrong.") {
		t.Fatalf("the old password: %s %q", r.Status, r.body)
	}
	b := e.browser(t)
	if r := b.passwordSignIn("dana@corp.example", fresh); r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/private" {
		t.Fatalf("the new password: %s %v", r.Status, r.Header)
	}
	if r := b.get("/private"); r.body != "hello dana@corp.example" {
		t.Fatalf("after the new password: %s %q", r.Status, r.body)
	}
}

// TestPasswordPageSameAnswerLocksAndSpeaksDutch: a wrong password and an
// unknown user get the same page, in Chromium and over HTTP; the page has
// the headers of mailgate's other pages; after three wrong passwords the
// account answers 429 "locked until", even to its right password, until
// the lock ends by the clock; "keep me signed in" keeps the session for
// persistent_session_ttl; and the pages speak nl-NL and nl-BE.
func TestPasswordPageSameAnswerLocksAndSpeaksDutch(t *testing.T) {
	e := startCaddyWith(t, passwordPageConfig(""))
	withPassword(t, "dana@corp.example", stepsPassword)

	wd := startBrowser(t)
	answer := func(username string) string {
		wd.open(e.base + "/.mailgate/login/password?return=/private")
		wd.typeInto("#username", username)
		wd.typeInto("#password", "not the password at all")
		wd.click("button[type=submit]")
		wd.waitFor("the answer", func() bool { return strings.Contains(wd.pageText(), "wrong") })
		return wd.pageText()
	}
	wrong, unknown := answer("dana"), answer("nobody")
	if wrong != unknown || !strings.Contains(wrong, "The username or password is wrong.") {
		t.Fatalf("a wrong password reads\n%s\nan unknown user reads\n%s", wrong, unknown)
	}
	// Over HTTP: the same status and the same page, but for the form
	// token, the nonce and the name typed.
	scrub := regexp.MustCompile(`value="[^"]*"|nonce="[^"]*"`)
	rw, ru := e.browser(t).passwordSignIn("dana", "still not it"), e.browser(t).passwordSignIn("nobody@corp.example", "still not it")
	if rw.StatusCode != http.StatusBadRequest || ru.StatusCode != rw.StatusCode || scrub.ReplaceAllString(rw.body, "") != scrub.ReplaceAllString(ru.body, "") {
		t.Fatalf("wrong password %s, unknown user %s:\n%s\n---\n%s", rw.Status, ru.Status, rw.body, ru.body)
	}
	h := rw.Header
	if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "form-action 'self'") || !strings.Contains(csp, "default-src 'none'") ||
		h.Get("Cache-Control") != "no-store" || h.Get("Strict-Transport-Security") != "max-age=31536000" {
		t.Fatalf("the password page's headers: %v", h)
	}

	// A third wrong password, by address: the same account, locked now.
	if r := e.browser(t).passwordSignIn("Dana@corp.example", "wrong once more"); r.StatusCode != http.StatusBadRequest {
		t.Fatalf("a third wrong password: %s", r.Status)
	}
	r := e.browser(t).passwordSignIn("dana", stepsPassword)
	if r.StatusCode != http.StatusTooManyRequests || r.Header.Get("Retry-After") == "" ||
		!strings.Contains(r.body, "This account is locked for now") || strings.Contains(r.body, "The username or password is wrong") {
		t.Fatalf("the right password of a locked account: %s %v %q", r.Status, r.Header, r.body)
	}
	// The lock ends 15 minutes after the first wrong password, which
	// Retry-After counts down to.
	wait, _ := strconv.Atoi(r.Header.Get("Retry-After"))
	if wait < 14*60 || wait > 15*60 {
		t.Fatalf("Retry-After %q: want the rest of 15 minutes", r.Header.Get("Retry-After"))
	}
	clockOffset.Add(int64(time.Duration(wait)*time.Second - 5*time.Second))
	if r := e.browser(t).passwordSignIn("dana", stepsPassword); r.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("seconds before the lock ends: %s", r.Status)
	}
	clockOffset.Add(int64(5 * time.Second))
	b := e.browser(t)
	r = b.passwordSignIn("dana", stepsPassword, "keep", "on")
	session := cookieOf(r, "__Host-mailgate")
	if r.StatusCode != http.StatusSeeOther || session == nil {
		t.Fatalf("once the lock ended: %s %v", r.Status, r.Header)
	}
	if left := session.Expires.Sub(now()); left < 29*24*time.Hour {
		t.Fatalf("\"keep me signed in\": the cookie expires in %v", left)
	}
	if r := b.get("/private"); r.body != "hello dana@corp.example" {
		t.Fatalf("signed in with a password: %s %q", r.Status, r.body)
	}

	nl := e.browser(t)
	if r := nl.get("/.mailgate/login", "Accept-Language", "nl-NL,nl;q=0.9"); !strings.Contains(r.body, "Liever inloggen met een wachtwoord") {
		t.Fatalf("the nl-NL login page offers no password:\n%s", r.body)
	}
	if r := nl.get("/.mailgate/login/password", "Accept-Language", "nl-BE"); !strings.Contains(r.body, `lang="nl-BE"`) ||
		!strings.Contains(r.body, "Gebruikersnaam of e-mailadres") || !strings.Contains(r.body, "Aangemeld blijven op dit toestel") {
		t.Fatalf("the nl-BE password page:\n%s", r.body)
	}
}

// TestPasswordPageKeepSignedInStep: with password_keep_signed_in ask, a
// right password leads to a page that asks whether to stay signed in; the
// answer starts the session kept or for the browser's life, and the step
// works once. An account the allow rules do not admit gets a page that
// says so, only for its right password.
func TestPasswordPageKeepSignedInStep(t *testing.T) {
	e := startCaddyWith(t, passwordPageConfig("password_keep_signed_in ask"))
	withPassword(t, "dana@corp.example", stepsPassword)
	state := regexp.MustCompile(`name="s" value="([^"]+)"`)
	for _, answer := range []string{"yes", "no"} {
		b := e.browser(t)
		r := b.passwordSignIn("dana", stepsPassword)
		m := state.FindStringSubmatch(r.body)
		if r.StatusCode != http.StatusOK || m == nil || !strings.Contains(r.body, "Stay signed in?") || strings.Contains(r.body, `name="keep" type="checkbox"`) {
			t.Fatalf("a right password: %s %q", r.Status, r.body)
		}
		if cookieOf(r, "__Host-mailgate") != nil {
			t.Fatal("a session started before the answer")
		}
		keep := func() response {
			return b.post("/.mailgate/login/password/keep", map[string]string{"s": m[1], "keep": answer, "return": "/private", "form_token": b.cookie("__Host-mailgate-form")})
		}
		r = keep()
		session := cookieOf(r, "__Host-mailgate")
		if r.StatusCode != http.StatusSeeOther || session == nil || r.Header.Get("Location") != "/private" {
			t.Fatalf("keep %s: %s %v", answer, r.Status, r.Header)
		}
		if kept := !session.Expires.IsZero(); kept != (answer == "yes") {
			t.Fatalf("keep %s: the cookie expires %v", answer, session.Expires)
		}
		if r := keep(); r.StatusCode != http.StatusGone || !strings.Contains(r.body, "That page has expired") {
			t.Fatalf("the step again: %s %q", r.Status, r.body)
		}
	}

	// An account the allow rules do not admit: its right password is told
	// so and gets no session; a wrong one reads as any other.
	withPassword(t, "eve@elsewhere.example", stepsPassword)
	r := e.browser(t).passwordSignIn("eve@elsewhere.example", stepsPassword)
	if r.StatusCode != http.StatusForbidden || !strings.Contains(r.body, "You cannot sign in here now") || cookieOf(r, "__Host-mailgate") != nil {
		t.Fatalf("a right password of an account not allowed: %s %q", r.Status, r.body)
	}
	if r := e.browser(t).passwordSignIn("eve@elsewhere.example", "not it"); r.StatusCode != http.StatusBadRequest ||
		!strings.Contains(r.body, "The username or password is wrong.") {
		t.Fatalf("a wrong password of an account not allowed: %s %q", r.Status, r.body)
	}
}

// TestPasswordPageOff: without password_login, the login page offers no
// password and the password form's routes do not exist.
func TestPasswordPageOff(t *testing.T) {
	e := startCaddy(t)
	withPassword(t, "dana@corp.example", stepsPassword)
	b := e.browser(t)
	if r := b.get("/.mailgate/login"); r.StatusCode != http.StatusOK || strings.Contains(r.body, "/login/password") || strings.Contains(r.body, "Use a password instead") {
		t.Fatalf("the login page: %s\n%s", r.Status, r.body)
	}
	if r := b.get("/.mailgate/login/password"); r.StatusCode != http.StatusNotFound {
		t.Fatalf("GET the password form: %s", r.Status)
	}
	r := b.post("/.mailgate/login/password", map[string]string{"username": "dana", "password": stepsPassword, "form_token": b.cookie("__Host-mailgate-form")})
	if r.StatusCode != http.StatusNotFound && r.StatusCode != http.StatusMethodNotAllowed || cookieOf(r, "__Host-mailgate") != nil {
		t.Fatalf("POST the password form: %s %v", r.Status, r.Header)
	}
}

// TestPasswordPageExpiredFiftyAtOnce: fifty posts of one expired-password
// step at once, each from a browser with its own form token, store one
// password and start exactly one session; the others are told the page
// has expired. On the memory store and on Redis, with the sign-in shared
// with seed 004's clients.
func TestPasswordPageExpiredFiftyAtOnce(t *testing.T) {
	eachStore(t, func(t *testing.T, store, storeLines string) {
		cfg := stepsConfig(strings.TrimSpace("password_login on\n\t\t" + storeLines))
		e := startCaddyWith(t, cfg)
		dana := withPassword(t, "dana-"+store+"@corp.example", stepsPassword)
		if out, err := e.runCLI(t, cfg(e), "users", "expire-password", dana.Email); err != nil {
			t.Fatalf("users expire-password: %v %s", err, out)
		}
		r := e.browser(t).passwordSignIn(dana.Email, stepsPassword)
		m := regexp.MustCompile(`name="s" value="([^"]+)"`).FindStringSubmatch(r.body)
		if r.StatusCode != http.StatusOK || m == nil {
			t.Fatalf("the expired password: %s %q", r.Status, r.body)
		}
		browsers := make([]*browser, 50)
		for i := range browsers {
			browsers[i] = e.browser(t)
			browsers[i].get("/.mailgate/login/password")
		}
		answers := make([]response, len(browsers))
		atOnce(len(browsers), func(i int) {
			b, pw := browsers[i], "a new and rather long passphrase "+strconv.Itoa(i)
			answers[i] = b.post("/.mailgate/login/password/expired", map[string]string{
				"s": m[1], "password": pw, "confirm": pw, "return": "/private", "form_token": b.cookie("__Host-mailgate-form"),
			})
		})
		counts, sessions := map[int]int{}, 0
		for _, a := range answers {
			counts[a.StatusCode]++
			if cookieOf(a, "__Host-mailgate") != nil {
				sessions++
			}
		}
		if counts[http.StatusSeeOther] != 1 || counts[http.StatusGone] != 49 || sessions != 1 {
			t.Fatalf("statuses %v, %d sessions; want one 303 with a session and 49 410", counts, sessions)
		}
	})
}
