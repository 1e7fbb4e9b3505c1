package caddymodule

import (
	"net/http"
	"testing"
)

// TestHeaderDirectiveNeedsDefer checks what the README tells operators: a
// `header` directive gets the signed-in user's placeholders only when
// deferred with `>`, since Caddy runs `header` before `mailgate`.
func TestHeaderDirectiveNeedsDefer(t *testing.T) {
	e := startCaddyWith(t, func(*env) siteConfig {
		return siteConfig{Site: "header >X-User-Id {http.auth.user.id}\n\theader X-Early-Id {http.auth.user.id}"}
	})
	b := e.browser(t)
	b.login("alice@example.com", "/")
	r := b.get("/")
	if r.StatusCode != http.StatusOK {
		t.Fatalf("signed in, / answers %s", r.Status)
	}
	id := e.upstream.last(t).Get("Remote-User")
	if id == "" || r.Header.Get("X-User-Id") != id {
		t.Errorf("header >X-User-Id {http.auth.user.id} gave %q, want the user id %q", r.Header.Get("X-User-Id"), id)
	}
	if got := r.Header.Get("X-Early-Id"); got != "{http.auth.user.id}" {
		t.Errorf("header X-Early-Id {http.auth.user.id}, not deferred, gave %q: the README says the placeholder stays as written", got)
	}
}
