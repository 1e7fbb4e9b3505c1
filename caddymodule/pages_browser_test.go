package caddymodule

import (
	"net/http"
	"strings"
	"testing"
)

// browserLogin signs Chromium in as email by a mailed link and waits for
// the page at ret.
func (wd *webDriver) loginByLink(e *env, email, ret string) {
	wd.t.Helper()
	wd.open(e.base + "/.mailgate/login?return=" + urlQueryEscape(ret))
	wd.typeInto("#email", email)
	wd.click("button[type=submit]")
	wd.waitFor("the check-your-inbox page", func() bool { return strings.Contains(wd.source(), "Check your inbox") })
	wd.open(e.mailedLink(wd.t, email))
	wd.click("button[type=submit]")
	wd.waitFor("the return to "+ret, func() bool { return wd.url() == e.base+ret })
}

// TestBrowserProfileSignOutEverywhere: the profile in Chromium names the
// person and lists both their sessions, this one marked; "sign out
// everywhere" ends the other browser's session too, and lands on the login
// page.
func TestBrowserProfileSignOutEverywhere(t *testing.T) {
	e := startCaddy(t)
	wd := startBrowser(t)
	other := e.browser(t)
	otherCookie := other.login("alice@example.com", "/")
	wd.loginByLink(e, "alice@example.com", "/private")

	wd.open(e.base + "/.mailgate/profile?state=%2Fprivate")
	src := wd.source()
	for _, want := range []string{"Your account", `id="profile-email">alice@example.com<`, `id="profile-username">alice<`,
		"Chrome · Linux <strong>(this browser)</strong>", "Signed in with an emailed link", `href="/private"`} {
		if !strings.Contains(src, want) {
			t.Fatalf("the profile lacks %q:\n%s", want, src)
		}
	}
	if n := strings.Count(src, "Signed in with"); n != 2 {
		t.Errorf("%d sessions listed, want 2:\n%s", n, src)
	}
	if strings.Contains(src, "Change your password") {
		t.Error("a site without passwords offers to change one")
	}
	wd.screenshot("profile")
	checkContrast(t, wd, "profile")
	if got := e.sessionStatus(t, otherCookie); got != http.StatusOK {
		t.Fatalf("the other session before: %d", got)
	}

	wd.click("#sign-out-everywhere")
	wd.waitFor("the login page", func() bool { return strings.HasPrefix(wd.url(), e.base+"/.mailgate/login?return=%2Fprivate") })
	if got := e.sessionStatus(t, otherCookie); got != http.StatusUnauthorized {
		t.Fatalf("the other browser's session after sign out everywhere: %d", got)
	}
	wd.open(e.base + "/private")
	if u := wd.url(); !strings.Contains(u, "/.mailgate/login") {
		t.Fatalf("after signing out everywhere, /private loaded at %s", u)
	}
}

// TestBrowserDashboardDisablesUser: an admin finds a user on the
// dashboard in Chromium and disables them; the user's session ends at
// once, and the counts follow.
func TestBrowserDashboardDisablesUser(t *testing.T) {
	e := startCaddyWith(t, adminsConfig)
	wd := startBrowser(t)
	bob := e.browser(t)
	bobCookie := bob.login("bob@corp.example", "/")
	wd.loginByLink(e, "alice@example.com", "/private")

	wd.open(e.base + "/.mailgate/_/op-dashboard?q=bob")
	src := wd.source()
	if !strings.Contains(src, "Operator dashboard") || !strings.Contains(src, "1 found, 1 shown.") || strings.Contains(src, `data-email="alice@example.com"`) {
		t.Fatalf("the dashboard's search for bob:\n%s", src)
	}
	wd.screenshot("dashboard")
	wd.click(`li[data-email="bob@corp.example"] button[name=status]`)
	wd.waitFor("the notice of the disable", func() bool {
		return strings.Contains(wd.source(), "The user is disabled and signed out everywhere.")
	})
	if got := e.sessionStatus(t, bobCookie); got != http.StatusUnauthorized {
		t.Fatalf("bob's session after the disable: %d", got)
	}
	checkContrast(t, wd, "dashboard")
	src = wd.source()
	if !strings.Contains(src, `<dt>Disabled</dt><dd>1</dd>`) || !strings.Contains(src, `<dt>Active</dt><dd>1</dd>`) {
		t.Errorf("counts after the disable:\n%s", src)
	}
	// Enabling is one press too; bob signs in again afterwards.
	wd.click(`li[data-email="bob@corp.example"] button[name=status]`)
	wd.waitFor("the notice of the enable", func() bool { return strings.Contains(wd.source(), "The user is enabled.") })
}

// TestBrowserNoAccessSwitchesAccount: in Chromium the no-access page names
// the account, and its one button signs out and leads to the login page,
// which would bring the person back to the state's path.
func TestBrowserNoAccessSwitchesAccount(t *testing.T) {
	e := startCaddy(t)
	wd := startBrowser(t)
	wd.loginByLink(e, "alice@example.com", "/private")
	wd.open(e.base + "/.mailgate/no-access-callback?state=%2Fprivate")
	if src := wd.source(); !strings.Contains(src, "You are signed in as alice@example.com, and this account may not use this app.") {
		t.Fatalf("the no-access page:\n%s", src)
	}
	wd.screenshot("no-access")
	wd.click("button[type=submit]")
	wd.waitFor("the login page", func() bool { return wd.url() == e.base+"/.mailgate/login?return=%2Fprivate" })
	wd.open(e.base + "/private")
	if u := wd.url(); !strings.Contains(u, "/.mailgate/login") {
		t.Fatalf("after switching account, /private loaded at %s", u)
	}
}

// TestBrowserProfilePasswordRule: in Chromium, a new password that is the
// account's own address is refused on the profile with the rule it breaks,
// and the old password still works.
func TestBrowserProfilePasswordRule(t *testing.T) {
	e := startCaddyWith(t, adminsConfig)
	const pw = "correct horse battery staple"
	withPassword(t, "dana@corp.example", pw)
	wd := startBrowser(t)
	wd.loginByLink(e, "dana@corp.example", "/private")
	wd.open(e.base + "/.mailgate/profile")
	wd.typeInto("#current", pw)
	wd.typeInto("#password", "dana@corp.example")
	wd.typeInto("#confirm", "dana@corp.example")
	wd.click("#change-password")
	wd.waitFor("the rule broken", func() bool {
		return strings.Contains(wd.source(), "Do not use your own username or email address as your password.")
	})
	wd.screenshot("profile-password-rule")
	if _, out := e.browser(t).signIn(`{"username":"dana","password":"` + pw + `","clientId":"kiosk"}`); out["next"] != "done" {
		t.Fatalf("the old password after a refused change: %v", out)
	}
}

// checkContrast holds the page Chromium shows to WCAG AA (4.5:1) in the
// light and the dark scheme, as TestPagesReachContrastAA does for the
// sign-in pages.
func checkContrast(t *testing.T, wd *webDriver, name string) {
	t.Helper()
	url := wd.url()
	for _, scheme := range []string{"light", "dark"} {
		wd.call(http.MethodPost, wd.session+"/goog/cdp/execute", map[string]any{
			"cmd":    "Emulation.setEmulatedMedia",
			"params": map[string]any{"features": []map[string]string{{"name": "prefers-color-scheme", "value": scheme}}},
		}, nil)
		wd.open(url)
		worst, _ := wd.script(contrastScript).(map[string]any)
		if ratio, _ := worst["ratio"].(float64); ratio < 4.5 {
			t.Errorf("%s page, %s scheme: %s %q is %v on %v, contrast %.2f:1, below 4.5:1",
				name, scheme, worst["tag"], worst["text"], worst["fg"], worst["bg"], ratio)
		}
	}
}
