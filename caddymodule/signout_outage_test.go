package caddymodule

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mailgate/caddy-mailgate/internal/redistest"
)

// TestSignOutDuringAnOutageSaysSo: while Redis is down a sign-out cannot be
// recorded, so the logout page and its button answer 503 with a page that
// says the person is still signed in, and change nothing: the cookie stays.
// Once Redis is back, the same session works again, and a sign-out ends it
// for good.
func TestSignOutDuringAnOutageSaysSo(t *testing.T) {
	srv := redistest.Start(t)
	e := startCaddyWith(t, func(*env) siteConfig {
		return siteConfig{Mailgate: redisStore(srv.Addr(), "key_prefix test:", "timeout 500ms")}
	})
	b := e.browser(t)
	token := b.login("alice@example.com", "/")
	if r := b.get("/.mailgate/logout"); r.StatusCode != http.StatusOK {
		t.Fatalf("the logout page: %s", r.Status)
	}
	logout := func() response {
		return b.post("/.mailgate/logout", map[string]string{"form_token": b.cookie("__Host-mailgate-form")})
	}
	notSignedOut := func(what string, r response) {
		t.Helper()
		if r.StatusCode != http.StatusServiceUnavailable || !strings.Contains(r.body, "You are still signed in") {
			t.Fatalf("%s with Redis down: %s %q, want 503 saying you are still signed in", what, r.Status, r.body)
		}
		for _, c := range r.Cookies() {
			if c.Name == "__Host-mailgate" {
				t.Fatalf("%s with Redis down touched the session cookie: %v", what, c)
			}
		}
		if b.cookie("__Host-mailgate") != token {
			t.Fatalf("%s with Redis down: the browser no longer holds its session", what)
		}
	}

	srv.Stop()
	// The session still checks out from memory, but its revocation cannot
	// be stored.
	notSignedOut("the sign-out button", logout())
	// Once the revocations are stale_after behind, the session cannot even
	// be checked.
	clockOffset.Add(int64(6 * time.Second))
	notSignedOut("the logout page", b.get("/.mailgate/logout"))
	notSignedOut("the sign-out button", logout())

	// Redis is back: nothing was signed out, so the same session works.
	srv.Restart()
	deadline := time.Now().Add(10 * time.Second)
	for b.get("/").StatusCode != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatal("the session was still refused 10s after Redis came back")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if r := b.get("/"); r.body != "hello alice@example.com" {
		t.Fatalf("the session after the outage: %q", r.body)
	}
	if r := b.get("/.mailgate/logout"); r.StatusCode != http.StatusOK {
		t.Fatalf("the logout page after the outage: %s", r.Status)
	}
	if r := logout(); r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/.mailgate/logout/done" {
		t.Fatalf("signing out after the outage: %s to %q", r.Status, r.Header.Get("Location"))
	}
	if r := e.browser(t).do(e.withCookie("/", token)); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a copy of the signed-out cookie: %s, want 401", r.Status)
	}
}
