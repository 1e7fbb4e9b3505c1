// Command mint-sessions prints n valid session tokens for one user of a
// realm, one per line, made with the realm's own key ring in a Caddy
// file-system storage. scripts/bench-wrk.sh uses it to measure the guard's
// first sight of a session, which needs more distinct sessions than logging
// in through the form could make in a benchmark's time.
//
//	go run ./scripts/mint-sessions -storage DIR -realm default \
//	    -issuer https://app.example.com -email someone@example.com -n 100000
//
// It reads the private keys, so it runs where Caddy's storage is readable:
// a benchmarking tool, not an operator's one.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/caddyserver/certmagic"

	"github.com/mailgate/caddy-mailgate/internal/directory"
	"github.com/mailgate/caddy-mailgate/internal/session"
)

func main() {
	storage := flag.String("storage", "", "Caddy's file_system storage folder")
	realm := flag.String("realm", "default", "the mailgate realm")
	issuer := flag.String("issuer", "", "the realm's base_url, as the sessions' iss")
	email := flag.String("email", "", "an address that has logged in before")
	n := flag.Int("n", 1, "how many tokens")
	ttl := flag.Duration("ttl", 12*time.Hour, "the sites' session_ttl")
	flag.Parse()
	if err := mint(os.Stdout, *storage, *realm, *issuer, *email, *n, *ttl); err != nil {
		fmt.Fprintln(os.Stderr, "mint-sessions:", err)
		os.Exit(1)
	}
}

func mint(out *os.File, dir, realm, issuer, email string, n int, ttl time.Duration) error {
	if dir == "" || issuer == "" || email == "" {
		return fmt.Errorf("-storage, -issuer and -email are required")
	}
	ctx := context.Background()
	st := &certmagic.FileStorage{Path: dir}
	ring, err := session.LoadKeyRing(ctx, st, "mailgate/"+realm+"/keys.json", time.Now)
	if err != nil {
		return err
	}
	u, err := directory.New(st, "mailgate/"+realm, time.Now).ByEmail(ctx, email)
	if err != nil {
		return fmt.Errorf("finding %s: %w", email, err)
	}
	m := session.NewManager(session.Config{
		Signer: session.Signer{Ring: ring, Issuer: issuer, Audience: realm, Now: time.Now},
		TTL:    ttl,
	})
	w := bufio.NewWriter(out)
	for range n {
		tok, _, err := m.Issue(u.ID)
		if err != nil {
			return err
		}
		fmt.Fprintln(w, tok)
	}
	return w.Flush()
}
