package caddymodule

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestReloadThatDropsAnAddressEndsItsSessions: an operator removes someone
// from allow and reloads; their open session stops working within the
// identity cache's refresh, not after session_ttl, while someone the new
// rules still admit stays signed in.
func TestReloadThatDropsAnAddressEndsItsSessions(t *testing.T) {
	e := startCaddy(t)
	alice, carol := e.browser(t), e.browser(t)
	aliceToken := alice.login("alice@example.com", "/")
	carol.login("carol@corp.example", "/")
	for name, b := range map[string]*browser{"alice": alice, "carol": carol} {
		if r := b.get("/"); r.StatusCode != http.StatusOK {
			t.Fatalf("%s before the reload: %s", name, r.Status)
		}
	}

	e.reload(t, siteConfig{Allow: "allow domain corp.example"})
	clockOffset.Add(int64(identityTTL + time.Second))

	r := alice.get("/reports")
	if r.StatusCode != http.StatusFound || !strings.HasPrefix(r.Header.Get("Location"), e.base+"/.mailgate/login?") {
		t.Fatalf("alice's page load after the reload: %s to %q, want 302 to the login page", r.Status, r.Header.Get("Location"))
	}
	if r := e.browser(t).do(e.withCookie("/api/data", aliceToken)); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a copy of alice's cookie after the reload: %s, want 401", r.Status)
	}
	if r := carol.get("/"); r.StatusCode != http.StatusOK || e.upstream.last(t).Get("Remote-Email") != "carol@corp.example" {
		t.Fatalf("carol after the reload: %s", r.Status)
	}
}
