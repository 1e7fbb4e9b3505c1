package caddymodule

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mailgate/caddy-mailgate/internal/testdpop"
)

// TestPasswordSessionsAreCountedAsTokens: a session started by a password,
// through the kiosk's API, mailgate's password page or a change of
// password on the profile, counts as a session token on /metrics like one
// started by a mailed link.
func TestPasswordSessionsAreCountedAsTokens(t *testing.T) {
	e := startCaddyWith(t, func(e *env) siteConfig {
		c := kioskConfig(e)
		c.Mailgate += "\n\t\tpassword_login on"
		return c
	})
	const pw = "correct horse battery staple"
	withPassword(t, "dana@corp.example", pw)
	before := e.scrape(t)

	if r, out := e.browser(t).signIn(`{"username":"dana","password":"` + pw + `","clientId":"kiosk"}`); out["next"] != "done" {
		t.Fatalf("sign-in by the API: %s %s", r.Status, r.body)
	}
	b := e.browser(t)
	if r := b.passwordSignIn("dana", pw); r.StatusCode != http.StatusSeeOther || cookieOf(r, "__Host-mailgate") == nil {
		t.Fatalf("sign-in on the password page: %s %s", r.Status, r.body)
	}
	// The change ends the sessions of earlier seconds: a second passes.
	clockOffset.Add(int64(time.Second))
	const fresh = "a fresh sentence for a password"
	r := b.post("/.mailgate/profile/password", map[string]string{
		"current": pw, "password": fresh, "confirm": fresh, "form_token": b.cookie("__Host-mailgate-form"),
	})
	if r.StatusCode != http.StatusSeeOther || cookieOf(r, "__Host-mailgate") == nil {
		t.Fatalf("changing the password: %s %s", r.Status, r.body)
	}

	after := e.scrape(t)
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"mailgate_tokens_issued_total", []string{`kind="session"`}, 3},
		{"mailgate_logins_completed_total", []string{`method="password"`}, 2},
	} {
		labels := append([]string{`realm="default"`}, c.labels...)
		was, _ := metricValue(before, c.name, labels...)
		now, _ := metricValue(after, c.name, labels...)
		if now-was != c.want {
			t.Errorf("%s%v: went from %v to %v, want +%v", c.name, c.labels, was, now, c.want)
		}
	}
}

// TestImplicitFlowTokensAreCounted: the user JWT a mailed link hands to an
// app that asked for a token (responseType token) counts on /metrics.
func TestImplicitFlowTokensAreCounted(t *testing.T) {
	e := startCaddy(t)
	e.browser(t).login("alice@example.com", "/")
	before := e.scrape(t)
	e.magicLink(t, testdpop.NewKey(t), "fragment", "token", "https://shop.example.com/callback")
	loc := e.browser(t).confirm(e.mailedLink(t, "alice@example.com")).onward(t).String()
	if !strings.Contains(loc, "access_token=") {
		t.Fatalf("the link led to %q, with no token", loc)
	}
	if n := metricDelta(before, e.scrape(t), "mailgate_tokens_issued_total", `realm="default"`, `kind="user_jwt"`); n != 1 {
		t.Errorf("mailgate_tokens_issued_total{kind=\"user_jwt\"} went up by %v, want 1", n)
	}
}
