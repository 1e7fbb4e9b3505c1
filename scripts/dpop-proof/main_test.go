package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mailgate/caddy-mailgate/internal/dpop"
	"github.com/mailgate/caddy-mailgate/internal/testdpop"
	"github.com/mailgate/caddy-mailgate/internal/ticket"
)

// The proofs that docs/api.md tells people to send must pass mailgate's own
// verifier, bound to the key the tool keeps between runs.
func TestProofsPassTheVerifier(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	store, err := ticket.NewMemory(ticket.MinMemory, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	v := &dpop.Verifier{Replay: store, Now: func() time.Time { return now }, Window: time.Minute}

	path := filepath.Join(t.TempDir(), "dpop.jwk")
	first, err := loadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, mode %v; want 0600", err, fi.Mode().Perm())
	}
	key, err := loadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if !key.Equal(first) {
		t.Fatal("a second run made a new key instead of reading the file")
	}
	want, err := testdpop.Thumbprint(key)
	if err != nil {
		t.Fatal(err)
	}

	const tokenURL = "https://app.example.com/.mailgate/oauth/token"
	p, err := testdpop.Sign(key, "POST", tokenURL, "", now)
	if err != nil {
		t.Fatal(err)
	}
	got, err := v.Verify(context.Background(), dpop.Request{Proofs: []string{p}, Method: "POST", URL: tokenURL})
	if err != nil || got.JKT != want {
		t.Fatalf("token endpoint proof: jkt %q, err %v; want jkt %q", got.JKT, err, want)
	}

	const apiURL = "https://app.example.com/.mailgate/api/v1/login-email"
	p, err = testdpop.Sign(key, "POST", apiURL, "the-access-token", now)
	if err != nil {
		t.Fatal(err)
	}
	req := dpop.Request{Proofs: []string{p}, Method: "POST", URL: apiURL, AccessToken: "another-token"}
	if _, err := v.Verify(context.Background(), req); err == nil {
		t.Fatal("a proof for one access token passed with another")
	}
	p, err = testdpop.Sign(key, "POST", apiURL, "the-access-token", now)
	if err != nil {
		t.Fatal(err)
	}
	req = dpop.Request{Proofs: []string{p}, Method: "POST", URL: apiURL, AccessToken: "the-access-token"}
	if got, err := v.Verify(context.Background(), req); err != nil || got.JKT != want {
		t.Fatalf("API proof: jkt %q, err %v", got.JKT, err)
	}
}

func TestRefusesAKeyFileThatIsNotAP256PrivateKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dpop.jwk")
	if err := os.WriteFile(path, []byte(`{"kty":"oct","k":"c2VjcmV0"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := loadOrCreateKey(path); err == nil {
		t.Fatal("a symmetric key was accepted")
	}
}
