package caddymodule

import (
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// TestShortPasswordNeedsSecondFactorThroughCaddy: an 8-character password
// (one of its characters an e with a combining accent, 9 runes typed) set
// through the second-factor client "guard" signs in through guard as
// before, at email_code; through "kiosk", which has no second factor, it
// stops at expired_password without a session, and the replacement there
// needs 15 characters (14 are refused); on mailgate's own password page it
// shows the expired-password page, without a session, and 15 characters
// replace it there too.
func TestShortPasswordNeedsSecondFactorThroughCaddy(t *testing.T) {
	cfg := codeGuardConfig("password_login on")
	e := startCaddyWith(t, cfg)
	dana := withPassword(t, "dana@corp.example", stepsPassword)
	accented := func(n int) string { return "Kx9#e\u0301" + strings.Repeat("q", n-5) }
	short := accented(8)
	signIn := func(b *browser, pw, client string) (response, map[string]any) {
		body, _ := json.Marshal(map[string]string{"username": "dana", "password": pw, "clientId": client})
		return b.signIn(string(body))
	}
	update := func(b *browser, token, pw, client string) (response, map[string]any) {
		body, _ := json.Marshal(map[string]string{"password": pw, "stateToken": token, "clientId": client, "tenant": "default"})
		return b.stepCall(http.MethodPost, "update-expired-password", string(body))
	}

	// The 8-character password, chosen through guard.
	if out, err := e.runCLI(t, cfg(e), "users", "expire-password", dana.ID); err != nil {
		t.Fatalf("users expire-password: %v %s", err, out)
	}
	b := e.browser(t)
	r, out := signIn(b, stepsPassword, "guard")
	token := wantStep(t, "the expired password through guard", r, out, "email_code", dana.ID)
	e.confirmMailed(t, "dana@corp.example", kioskOrigin)
	r, out = b.stepCall(http.MethodGet, "login-resume?token="+url.QueryEscape(token), "")
	expired := wantStep(t, "after the code", r, out, "expired_password", dana.ID)
	if r, _ = update(b, expired, short, "guard"); r.StatusCode != http.StatusOK || cookieOf(r, "__Host-mailgate") == nil {
		t.Fatalf("8 characters with the second factor: %s %s", r.Status, r.body)
	}

	// Through guard, as before: the code first.
	r, out = signIn(e.browser(t), short, "guard")
	wantStep(t, "the short password through guard", r, out, "email_code", dana.ID)

	// On mailgate's own page: the expired-password page, no session.
	page := e.browser(t)
	r = page.passwordSignIn("dana", short)
	m := regexp.MustCompile(`name="s" value="([^"]+)"`).FindStringSubmatch(r.body)
	if r.StatusCode != http.StatusOK || m == nil || !strings.Contains(r.body, `action="/.mailgate/login/password/expired"`) || cookieOf(r, "__Host-mailgate") != nil {
		t.Fatalf("the short password on the password page: %s %q", r.Status, r.body)
	}
	if got := page.get("/dashboard"); got.StatusCode == http.StatusOK {
		t.Fatal("the password page let the short password through")
	}

	// Through kiosk: expired_password, no session; 14 characters are not
	// enough to replace it, 15 are.
	b = e.browser(t)
	r, out = signIn(b, short, "kiosk")
	expired = wantStep(t, "the short password through kiosk", r, out, "expired_password", dana.ID)
	if got := b.get("/dashboard"); got.StatusCode == http.StatusOK {
		t.Fatal("kiosk let the short password through")
	}
	r, out = update(b, expired, accented(14), "kiosk")
	wantRefusal(t, "14 characters without a second factor", r, out, http.StatusBadRequest, "password_rejected")
	if errs, _ := out["errors"].([]any); len(errs) != 1 || errs[0].(map[string]any)["code"] != "too_short" || !strings.Contains(errs[0].(map[string]any)["message"].(string), "at least 15 ") {
		t.Fatalf("14 characters: %v", out["errors"])
	}
	long := accented(15)
	if r, out = update(b, expired, long, "kiosk"); r.StatusCode != http.StatusOK || out["next"] != "done" || cookieOf(r, "__Host-mailgate") == nil {
		t.Fatalf("15 characters without a second factor: %s %s", r.Status, r.body)
	}
	if r, out = signIn(e.browser(t), long, "kiosk"); r.StatusCode != http.StatusOK || out["next"] != "done" || cookieOf(r, "__Host-mailgate") == nil {
		t.Fatalf("the 15-character password through kiosk: %s %s", r.Status, r.body)
	}

	// The password page's step, still open, wants 15 characters too: 14
	// are refused there, with the page's own sentence.
	replace := func(pw string) response {
		return page.post("/.mailgate/login/password/expired", map[string]string{
			"s": m[1], "password": pw, "confirm": pw, "return": "/private", "form_token": page.cookie("__Host-mailgate-form"),
		})
	}
	if r = replace(accented(14)); r.StatusCode != http.StatusBadRequest || !strings.Contains(r.body, "Use at least 15 characters.") || cookieOf(r, "__Host-mailgate") != nil {
		t.Fatalf("14 characters on the password page: %s %q", r.Status, r.body)
	}
	if r = replace(accented(14) + "!"); r.StatusCode != http.StatusSeeOther || cookieOf(r, "__Host-mailgate") == nil {
		t.Fatalf("15 characters on the password page: %s %q", r.Status, r.body)
	}
}
