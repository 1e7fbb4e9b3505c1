package caddymodule

import (
	"fmt"
	"strings"
	"testing"

	"github.com/mailgate/caddy-mailgate/internal/testdpop"
)

// TestBrowserLogin walks the sign-in journey in headless Chromium: the pages
// render under their CSP, the forms pass the browser's own Sec-Fetch-Site,
// and the browser keeps the session cookie with the right flags.
func TestBrowserLogin(t *testing.T) {
	e := startCaddy(t)
	wd := startBrowser(t)

	wd.open(e.base + "/private?x=1")
	if u := wd.url(); !strings.HasPrefix(u, e.base+"/.mailgate/login?return=") {
		t.Fatalf("unauthenticated page load ended at %s", u)
	}
	// The stylesheet loaded despite default-src 'none': the button has the
	// accent colour from style.css.
	if bg := wd.script(`return getComputedStyle(document.querySelector("button")).backgroundColor`); bg != "rgb(29, 78, 216)" {
		t.Errorf("button background %v: the stylesheet did not apply", bg)
	}
	wd.screenshot("1-login")

	wd.typeInto("#email", "alice@example.com")
	wd.click("button[type=submit]")
	wd.waitFor("the check-your-inbox page", func() bool { return strings.Contains(wd.source(), "Check your inbox") })
	wd.screenshot("2-sent")

	wd.open(e.mailedLink(t, "alice@example.com"))
	if src := wd.source(); !strings.Contains(src, "Continue signing in") {
		t.Fatalf("link page:\n%s", src)
	}
	wd.screenshot("3-confirm")
	wd.click("button[type=submit]")
	wd.waitFor("the return to /private?x=1", func() bool { return wd.url() == e.base+"/private?x=1" })
	if src := wd.source(); !strings.Contains(src, "hello alice@example.com") {
		t.Fatalf("protected page:\n%s", src)
	}

	c, ok := wd.cookies()["__Host-mailgate"]
	if !ok {
		t.Fatal("the browser kept no __Host-mailgate cookie")
	}
	if !c.Secure || !c.HTTPOnly || c.SameSite != "Lax" || c.Path != "/" || c.Expiry != 0 {
		t.Errorf("session cookie in the browser: %+v", c)
	}
	if v := wd.script(`return document.cookie`); strings.Contains(fmt.Sprint(v), "__Host-mailgate=") {
		t.Error("page script can read the session cookie")
	}

	wd.open(e.base + "/.mailgate/logout")
	wd.screenshot("4-logout")
	wd.click("button[type=submit]")
	wd.waitFor("the signed-out page", func() bool { return strings.Contains(wd.source(), "You have signed out") })
	wd.open(e.base + "/private")
	if u := wd.url(); !strings.Contains(u, "/.mailgate/login") {
		t.Fatalf("after signing out, /private loaded at %s", u)
	}
}

// TestBrowserFormPost checks that a real browser runs the form_post page
// under its CSP: the nonce'd script submits, and form-action lets the post
// reach the app's redirect URI.
func TestBrowserFormPost(t *testing.T) {
	e := startCaddy(t)
	wd := startBrowser(t)
	e.browser(t).login("alice@example.com", "/") // the account exists
	callback := "http://" + e.upstream.srv.Listener.Addr().String() + "/callback"
	e.magicLink(t, testdpop.NewKey(t), "form_post", "code", callback)

	wd.open(e.mailedLink(t, "alice@example.com"))
	wd.click("button[type=submit]")
	wd.waitFor("the form post at the app", func() bool { return e.upstream.lastPost().Get("code") != "" })
	if got := e.upstream.lastPost(); got.Get("access_token") != "" {
		t.Errorf("responseType code posted a token too: %v", got)
	}
}

// TestBrowserBusyState: a sent form's button says it is busy, and a second
// press sends nothing. The page's script runs under its CSP nonce; the test
// holds the navigation back to look at the page as it is while it waits.
func TestBrowserBusyState(t *testing.T) {
	e := startCaddy(t)
	wd := startBrowser(t)
	wd.open(e.base + "/.mailgate/login")
	// Runs after the page's own listener (window comes after document).
	wd.script(`window.sent = []; window.addEventListener("submit", e => { window.sent.push(!e.defaultPrevented); e.preventDefault(); });`)
	wd.typeInto("#email", "alice@example.com")
	wd.click("button[type=submit]")
	state := wd.script(`const b = document.querySelector("button[type=submit]"); return [b.textContent, b.getAttribute("aria-disabled"), getComputedStyle(b).cursor].join("|")`)
	if state != "Sending…|true|progress" {
		t.Errorf("the button after a press: %v", state)
	}
	wd.click("button[type=submit]")
	if sent := fmt.Sprint(wd.script(`return window.sent`)); sent != "[true false]" {
		t.Errorf("two presses would send %v; want only the first", sent)
	}
}

// TestBrowserSignOutInOnePressFromTheApp: a "Sign out" button on the app's
// own page, as the demo has, posts straight to the logout, and Chromium
// lands on the signed-out page with the session ended.
func TestBrowserSignOutInOnePressFromTheApp(t *testing.T) {
	wd := startBrowser(t)
	e := startCaddy(t)
	wd.open(e.base + "/private")
	wd.typeInto("#email", "alice@example.com")
	wd.click("button[type=submit]")
	wd.waitFor("the check-your-inbox page", func() bool { return strings.Contains(wd.source(), "Check your inbox") })
	wd.open(e.mailedLink(t, "alice@example.com"))
	wd.click("button[type=submit]")
	wd.waitFor("the protected page", func() bool { return strings.Contains(wd.source(), "hello alice@example.com") })

	// The app's page gets the demo's button; one press.
	wd.script(`document.body.innerHTML = '<form method="post" action="/.mailgate/logout"><button id="out" type="submit">Sign out</button></form>'; return null`)
	wd.click("#out")
	wd.waitFor("the signed-out page", func() bool { return strings.Contains(wd.source(), "You have signed out") })
	wd.open(e.base + "/private")
	if u := wd.url(); !strings.Contains(u, "/.mailgate/login") {
		t.Fatalf("after one press on the app's Sign out, /private loaded at %s", u)
	}
}
