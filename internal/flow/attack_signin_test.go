package flow

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/mailgate/caddy-mailgate/internal/directory"
	"github.com/mailgate/caddy-mailgate/internal/storetest"
	"github.com/mailgate/caddy-mailgate/internal/ticket"
)

// Attack: the decoy hash that accounts without a usable password are
// compared with has a password anyone can read in the source. An account
// whose stored hash does not parse (a "!" that locks it, as in
// /etc/shadow; a hash imported with parameters mailgate refuses) was
// compared with the decoy and let in by its password.
func TestDecoyPasswordOpensNoAccount(t *testing.T) {
	now := func() time.Time { return time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC) }
	storetest.Each(t, now, func(t *testing.T, s ticket.Store) {
		f := newSignIn(t, s, now)
		ctx := context.Background()
		users := f.Users.(*directory.Directory)
		for i, hash := range []string{"!", "$argon2id$v=19$m=4096,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"} {
			email := []string{"dave@example.com", "erin@example.com"}[i]
			u, err := users.EnsureByEmail(ctx, email)
			if err != nil {
				t.Fatal(err)
			}
			if err := users.SetPassword(ctx, u.ID, hash); err != nil {
				t.Fatal(err)
			}
			if _, err := f.Check(ctx, at, email, "mailgate: no account has this password"); !errors.Is(err, ErrBadCredentials) {
				t.Errorf("hash %q: the decoy's password got %v, want ErrBadCredentials", hash, err)
			}
		}
	})
}
