package main

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"

	"github.com/mailgate/caddy-mailgate/internal/directory"
	"github.com/mailgate/caddy-mailgate/internal/session"
)

type alwaysValid struct{}

func (alwaysValid) Revoke(context.Context, string, time.Duration) error { return nil }
func (alwaysValid) Revoked(string) (bool, error)                        { return false, nil }
func (alwaysValid) RevokeBefore(context.Context, string, time.Time, time.Duration) error {
	return nil
}
func (alwaysValid) RevokedBefore(string) (time.Time, bool, error) { return time.Time{}, false, nil }

type oneUser struct{ u directory.User }

func (o oneUser) Identity(context.Context, string) (session.Identity, error) {
	return session.Identity{UserID: o.u.ID, Email: o.u.Email}, nil
}

// The tokens the benchmark sends must be sessions the guard admits: made
// with the realm's stored ring, for the stored user, under its iss and aud.
func TestMintedSessionsVerify(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st := &certmagic.FileStorage{Path: dir}
	ring, err := session.LoadKeyRing(ctx, st, "mailgate/bench/keys.json", time.Now)
	if err != nil {
		t.Fatal(err)
	}
	u, err := directory.New(st, "mailgate/bench", time.Now).EnsureByEmail(ctx, "bench@example.com")
	if err != nil {
		t.Fatal(err)
	}
	outPath := filepath.Join(t.TempDir(), "tokens")
	out, err := os.Create(outPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := mint(out, dir, "bench", "http://localhost:9003", "bench@example.com", 3, time.Hour); err != nil {
		t.Fatal(err)
	}
	out.Close()

	m := session.NewManager(session.Config{
		Signer:      session.Signer{Ring: ring, Issuer: "http://localhost:9003", Audience: "bench", Now: time.Now},
		TTL:         time.Hour,
		Revocations: alwaysValid{},
		Identities:  oneUser{u},
	})
	f, _ := os.Open(outPath)
	defer f.Close()
	seen := map[string]bool{}
	for sc := bufio.NewScanner(f); sc.Scan(); {
		s, err := m.Verify(ctx, sc.Text())
		if err != nil || s.UserID != u.ID {
			t.Fatalf("minted token: %+v, %v", s, err)
		}
		seen[sc.Text()] = true
	}
	if len(seen) != 3 {
		t.Fatalf("%d distinct tokens, want 3", len(seen))
	}
}
