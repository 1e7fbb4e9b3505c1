package admin

import (
	"context"
	"errors"
	"testing"

	"github.com/mailgate/caddy-mailgate/internal/directory"
)

// ExpirePassword marks a password for replacement without ending any
// session; an account without a password is refused; a new password ends
// the order.
func TestExpirePassword(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	u, err := f.a.Create(ctx, directory.NewUser{Email: "dana@example.com"}, "test")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.a.ExpirePassword(ctx, u.ID); !errors.Is(err, ErrNoPassword) {
		t.Fatalf("without a password: %v", err)
	}
	users := f.a.Directory.(*directory.Directory)
	if err := users.SetPassword(ctx, u.ID, "$argon2id$placeholder"); err != nil {
		t.Fatal(err)
	}
	if u, err = f.a.ExpirePassword(ctx, u.ID); err != nil || !u.PasswordExpired || len(f.sessions.cutoffs) != 0 {
		t.Fatalf("expired: %+v %v, sessions ended %v", u, err, f.sessions.cutoffs)
	}
	if err := users.SetPassword(ctx, u.ID, "$argon2id$another"); err != nil {
		t.Fatal(err)
	}
	if u, _ = f.a.Get(ctx, u.ID); u.PasswordExpired {
		t.Fatal("a new password left the order in place")
	}
}
