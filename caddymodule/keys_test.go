package caddymodule

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/caddyserver/certmagic"
	"github.com/spf13/pflag"
	"go.uber.org/zap"

	"github.com/mailgate/caddy-mailgate/internal/session"
)

// TestRotateKeysCommandLogsNobodyOut runs `caddy mailgate rotate-keys`
// against the storage of a running Caddy: the new key is published at the
// next reading of the ring and signs only after keyActivation; sessions and
// forms from before the rotation go on working.
func TestRotateKeysCommandLogsNobodyOut(t *testing.T) {
	e := startCaddy(t)
	b := e.browser(t)
	b.login("alice@example.com", "/")
	jwks := func() response { return e.browser(t).get("/.mailgate/jwks.json") }
	if cc := jwks().Header.Get("Cache-Control"); cc != "public, max-age=120" {
		t.Errorf("JWKS Cache-Control %q: want a max-age well inside the new key's 5 minutes of notice", cc)
	}
	oldKid := jwkKid(t, jwks().body)
	openForm := e.browser(t)
	openForm.get("/.mailgate/login") // a form token minted before the rotation

	e.rotateKeys(t, siteConfig{})

	// At its next reading Caddy publishes the new key, and still signs
	// with the old one.
	clockOffset.Add(int64(keyRefresh))
	published := jwks().body
	if !strings.Contains(published, oldKid) || jwkKid(t, published) == oldKid {
		t.Fatalf("after rotate-keys the JWKS does not hold a new key and the old one:\n%s", published)
	}
	newKid := jwkKid(t, published)
	if tok := e.browser(t).login("bob@corp.example", "/"); !strings.Contains(tokenHeader(t, tok), oldKid) {
		t.Fatalf("a session signed before the new key's activation: %s", tokenHeader(t, tok))
	}

	clockOffset.Add(int64(keyActivation))
	if tok := e.browser(t).login("carol@corp.example", "/"); !strings.Contains(tokenHeader(t, tok), newKid) {
		t.Fatalf("a session after the activation is not signed with the new key: %s", tokenHeader(t, tok))
	}
	if r := b.get("/"); r.StatusCode != http.StatusOK {
		t.Fatalf("a session from before the rotation: %s", r.Status)
	}
	if r := openForm.requestLink("carol@corp.example", "/"); r.StatusCode != http.StatusOK {
		t.Fatalf("a form opened before the rotation: %s", r.Status)
	}
}

// TestKeysRotateWhenDue: with key_rotation 1h, an instance sharing the
// storage rotates once the hour has passed, and this one picks it up.
func TestKeysRotateWhenDue(t *testing.T) {
	e := startCaddyWith(t, func(*env) siteConfig { return siteConfig{Mailgate: "key_rotation 1h"} })
	b := e.browser(t)
	b.login("alice@example.com", "/")
	oldKid := jwkKid(t, e.browser(t).get("/.mailgate/jwks.json").body)
	other, err := session.LoadKeyRing(context.Background(), &certmagic.FileStorage{Path: filepath.Join(e.dir, "storage")}, "mailgate/default/keys.json", now)
	if err != nil {
		t.Fatal(err)
	}
	rotateKeysIfDue(context.Background(), other, time.Hour, zap.NewNop())
	if other.KeyID() != oldKid || strings.Count(string(other.JWKS()), `"kid"`) != 1 {
		t.Fatal("rotated before key_rotation had passed")
	}
	clockOffset.Add(int64(time.Hour))
	rotateKeysIfDue(context.Background(), other, time.Hour, zap.NewNop())
	clockOffset.Add(int64(keyActivation))
	if jwkKid(t, e.browser(t).get("/.mailgate/jwks.json").body) == oldKid {
		t.Fatal("Caddy did not pick up the rotated ring")
	}
	if tok := e.browser(t).login("bob@corp.example", "/"); strings.Contains(tokenHeader(t, tok), oldKid) {
		t.Fatal("new sessions are still signed with the old key")
	}
	if r := b.get("/"); r.StatusCode != http.StatusOK {
		t.Fatalf("a session from before the rotation: %s", r.Status)
	}
}

// rotateKeys runs `caddy mailgate rotate-keys --config <file>` on the
// Caddyfile of e with site, as an operator would beside the running Caddy.
func (e *env) rotateKeys(t *testing.T, site siteConfig) {
	t.Helper()
	path := filepath.Join(e.dir, "Caddyfile")
	if err := os.WriteFile(path, e.caddyfile(t, site), 0o600); err != nil {
		t.Fatal(err)
	}
	fs := pflag.NewFlagSet("rotate-keys", pflag.ContinueOnError)
	fs.String("config", "", "")
	fs.String("adapter", "", "")
	if err := fs.Parse([]string{"--config", path}); err != nil {
		t.Fatal(err)
	}
	if _, err := cmdRotateKeys(caddycmd.Flags{FlagSet: fs}); err != nil {
		t.Fatalf("rotate-keys: %v", err)
	}
}
