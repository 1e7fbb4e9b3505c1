package caddymodule

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// TestBrowserCodeLogin: the login form's code, in Chromium on a phone-sized
// window (390×844): the code page's field is a numeric one-time-code field
// that fits the screen, a code typed with a space signs in, and the person
// lands on the page they wanted.
func TestBrowserCodeLogin(t *testing.T) {
	e := startCaddy(t)
	wd := startBrowser(t)
	wd.emulatePhone()

	wd.open(e.base + "/private?x=1")
	if u := wd.url(); !strings.HasPrefix(u, e.base+"/.mailgate/login?return=") {
		t.Fatalf("unauthenticated page load ended at %s", u)
	}
	wd.typeInto("#email", "alice@example.com")
	wd.click("button[value=code]")
	wd.waitFor("the code page", func() bool { return strings.Contains(wd.source(), "Enter the code") })
	wd.screenshot("code-1-enter")

	field := wd.script(`const c = document.querySelector("#code"); const r = c.getBoundingClientRect();
		return [c.getAttribute("autocomplete"), c.getAttribute("inputmode"), document.activeElement === c,
			r.left >= 0 && r.right <= window.innerWidth, window.innerWidth <= 400].join("|")`)
	if field != "one-time-code|numeric|true|true|true" {
		t.Fatalf("the code field (autocomplete|inputmode|focused|fits|phone width): %v", field)
	}

	code := e.mailedCode(t, "alice@example.com")
	wd.typeInto("#code", code[:3]+" "+code[3:])
	wd.click("button[type=submit]")
	wd.waitFor("the return to /private?x=1", func() bool { return wd.url() == e.base+"/private?x=1" })
	if src := wd.source(); !strings.Contains(src, "hello alice@example.com") {
		t.Fatalf("protected page:\n%s", src)
	}
	if _, ok := wd.cookies()["__Host-mailgate"]; !ok {
		t.Fatal("the browser kept no session cookie")
	}
	if _, ok := wd.cookies()["__Host-mailgate-code"]; ok {
		t.Error("the pending code's cookie outlived the login")
	}
	if v := wd.script(`return document.cookie`); strings.Contains(fmt.Sprint(v), "mailgate-code") {
		t.Error("page script can read the code's cookie")
	}
}

// emulatePhone makes the page a phone's: 390×844 CSS pixels, touch, mobile
// layout. A desktop window cannot get that narrow.
func (wd *webDriver) emulatePhone() {
	wd.call(http.MethodPost, wd.session+"/goog/cdp/execute", map[string]any{
		"cmd":    "Emulation.setDeviceMetricsOverride",
		"params": map[string]any{"width": 390, "height": 844, "deviceScaleFactor": 3, "mobile": true},
	}, nil)
}
