package caddymodule

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestSessionIdle runs session_idle through Caddy on mailgate's clock: a
// session in use is re-issued (at most once a minute, with the session
// cookie's attributes) and lives past the inactivity limit; one left alone
// for the limit is sent to the login page; and activity never carries a
// session past session_ttl from the sign-in.
func TestSessionIdle(t *testing.T) {
	e := startCaddyWith(t, func(*env) siteConfig {
		return siteConfig{Mailgate: "session_ttl 1h\n\t\tsession_idle 10m"}
	})
	b := e.browser(t)
	cookie := b.login("alice@example.com", "/app")

	// Within the first minute: no new cookie.
	clockOffset.Add(int64(30 * time.Second))
	if r := b.get("/app"); r.StatusCode != http.StatusOK || r.Header.Get("Set-Cookie") != "" {
		t.Fatalf("a request 30s after sign-in: %s, Set-Cookie %q", r.Status, r.Header.Get("Set-Cookie"))
	}
	// In use every 9 minutes: alive at 27 minutes, well past the limit.
	for range 3 {
		clockOffset.Add(int64(9 * time.Minute))
		r := b.get("/app")
		if r.StatusCode != http.StatusOK {
			t.Fatalf("a session in use: %s", r.Status)
		}
		set := r.Header.Get("Set-Cookie")
		for _, attr := range []string{"__Host-mailgate=", "Path=/", "HttpOnly", "Secure", "SameSite=Lax"} {
			if !strings.Contains(set, attr) {
				t.Fatalf("the refreshed cookie %q lacks %s", set, attr)
			}
		}
		if strings.Contains(set, "Expires") {
			t.Fatalf("a browser session's refreshed cookie outlives the browser: %q", set)
		}
		if now := b.cookie("__Host-mailgate"); now == cookie {
			t.Fatal("the session's cookie was not re-issued")
		} else {
			cookie = now
		}
		if got := e.upstream.last(t).Get("Remote-Email"); got != "alice@example.com" {
			t.Fatalf("the upstream got Remote-Email %q", got)
		}
	}
	// Left alone for the limit: the login page, the way back kept.
	clockOffset.Add(int64(10 * time.Minute))
	r := b.get("/app")
	if r.StatusCode != http.StatusFound || !strings.HasSuffix(r.Header.Get("Location"), "/.mailgate/login?return=%2Fapp") {
		t.Fatalf("a session idle for 10m: %s to %q", r.Status, r.Header.Get("Location"))
	}

	// The absolute cap: in use every 9 minutes, still ended an hour after
	// the sign-in.
	b = e.browser(t)
	b.login("alice@example.com", "/app")
	start := now()
	for now().Sub(start) < 54*time.Minute {
		clockOffset.Add(int64(9 * time.Minute))
		if r := b.get("/app"); r.StatusCode != http.StatusOK {
			t.Fatalf("in use %s after sign-in: %s", now().Sub(start), r.Status)
		}
	}
	clockOffset.Add(int64(9 * time.Minute))
	if r := b.get("/app"); r.StatusCode != http.StatusFound {
		t.Fatalf("in use %s after sign-in, past session_ttl: %s", now().Sub(start).Round(time.Minute), r.Status)
	}
}
