package caddymodule

import (
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/caddyserver/caddy/v2"
)

// TestStartOnReadOnlyStorage: a Caddy that starts on a storage it cannot
// write to, where an earlier start left the realm's key ring, starts
// without trying to write anything of mailgate's, serves the sessions signed
// before, publishes the same keys, and signs in people who have an account.
func TestStartOnReadOnlyStorage(t *testing.T) {
	site := func(e *env) siteConfig {
		return siteConfig{Storage: "mailgate_test_faulty " + filepath.Join(e.dir, "storage")}
	}
	e := startCaddyWith(t, site)
	b := e.browser(t)
	b.login("alice@example.com", "/")
	jwks := e.browser(t).get("/.mailgate/jwks.json").body

	var mu sync.Mutex
	var tried []string
	failStorage(t, func(op, key string) error {
		// The profile's list of sessions (docs/pages.md) is written at
		// each sign-in, at best effort: that write fails here, and the
		// sign-in below must succeed all the same.
		if strings.HasPrefix(key, "mailgate/") && !strings.HasPrefix(key, "mailgate/default/sessions/") {
			mu.Lock()
			tried = append(tried, op+" "+key)
			mu.Unlock()
		}
		return errReadOnly
	})
	e.restart(t, site(e))

	if r := b.get("/"); r.StatusCode != http.StatusOK || r.body != "hello alice@example.com" {
		t.Fatalf("a session signed before the restart: %s %q", r.Status, r.body)
	}
	if got := e.browser(t).get("/.mailgate/jwks.json").body; got != jwks {
		t.Fatalf("the keys published after the restart differ:\n%s\nbefore:\n%s", got, jwks)
	}
	if tok := e.browser(t).login("alice@example.com", "/"); tok == "" {
		t.Fatal("no session for someone with an account")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(tried) != 0 {
		t.Fatalf("mailgate tried to write to the read-only storage: %v", tried)
	}
}

// restart stops Caddy and starts it again with site, as restarting the
// process does: the realm, its key ring and its store are built anew.
func (e *env) restart(t *testing.T, site siteConfig) {
	t.Helper()
	if err := caddy.Stop(); err != nil {
		t.Fatalf("stopping Caddy: %v", err)
	}
	e.load(t, site)
}
