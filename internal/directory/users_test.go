package directory

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/mailgate/caddy-mailgate/internal/memstorage"
)

// An invited user has a normalized address, a username, and no sign-up;
// an address or a username another user has is refused.
func TestCreateInvitesOnce(t *testing.T) {
	ctx := context.Background()
	d := New(memstorage.New(), "mg", time.Now)
	u, err := d.Create(ctx, NewUser{Email: " Bob@Example.com", Name: "Bob", Locale: "nl-BE"})
	if err != nil {
		t.Fatal(err)
	}
	if u.Email != "bob@example.com" || u.Username != "bob" || u.Status != StatusInvited || !u.SignedUp.IsZero() || u.Name != "Bob" || u.Locale != "nl-BE" {
		t.Fatalf("created %+v", u)
	}
	if got, err := d.ByEmail(ctx, "bob@example.com"); err != nil || got != u {
		t.Fatalf("by email: %+v, %v", got, err)
	}
	for _, c := range []struct {
		n    NewUser
		want error
	}{
		{NewUser{Email: "bob@example.com"}, ErrEmailTaken},
		{NewUser{Email: "robert@example.com", Username: "bob"}, ErrUsernameTaken},
		{NewUser{Email: "robert@example.com", Username: "Bob!"}, ErrInvalidUsername},
		{NewUser{Email: "not an address"}, ErrInvalidEmail},
	} {
		if _, err := d.Create(ctx, c.n); !errors.Is(err, c.want) {
			t.Errorf("%+v: %v, want %v", c.n, err, c.want)
		}
	}
	if _, err := d.EnsureByEmail(ctx, "carol@example.com"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Create(ctx, NewUser{Email: "carol@example.com"}); !errors.Is(err, ErrEmailTaken) {
		t.Fatalf("an address that signed in: %v", err)
	}
	if r, err := d.Create(ctx, NewUser{Email: "robert@example.com", Username: "rob"}); err != nil || r.Username != "rob" {
		t.Fatalf("a free username: %+v, %v", r, err)
	}
}

// Signing up makes an invited user active once; Update keeps what
// identifies the user whatever change does, and stores nothing when change
// fails.
func TestSignUpAndUpdate(t *testing.T) {
	ctx := context.Background()
	at := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	d := New(memstorage.New(), "mg", func() time.Time { return at })
	u, _ := d.Create(ctx, NewUser{Email: "bob@example.com"})
	signed, err := d.SignUp(ctx, u.ID)
	if err != nil || signed.Status != StatusActive || !signed.SignedUp.Equal(at) {
		t.Fatalf("sign-up: %+v, %v", signed, err)
	}
	disabled, err := d.Update(ctx, u.ID, func(u *User) error {
		u.Status, u.Email, u.ID, u.Name = StatusDisabled, "eve@example.com", "x", "Bob B."
		return nil
	})
	if err != nil || disabled.Status != StatusDisabled || disabled.Email != "bob@example.com" || disabled.ID != u.ID || disabled.Name != "Bob B." {
		t.Fatalf("update: %+v, %v", disabled, err)
	}
	if again, _ := d.SignUp(ctx, u.ID); again.Status != StatusDisabled {
		t.Fatalf("sign-up of a disabled user made it %s", again.Status)
	}
	refused := errors.New("no")
	if _, err := d.Update(ctx, u.ID, func(u *User) error { u.Name = "Mallory"; return refused }); !errors.Is(err, refused) {
		t.Fatalf("a refused change: %v", err)
	}
	if got, _ := d.ByID(ctx, u.ID); got.Name != "Bob B." {
		t.Fatalf("a refused change was stored: %+v", got)
	}
	if _, err := d.Update(ctx, "nobody", func(*User) error { return nil }); !errors.Is(err, ErrNotFound) {
		t.Fatalf("update of nobody: %v", err)
	}
}

// A deleted user is gone by id, address and username, and the address and
// the username can be taken again, by a new id; List has everyone else, by
// address.
func TestDeleteAndList(t *testing.T) {
	ctx := context.Background()
	d := New(memstorage.New(), "mg", time.Now)
	if users, err := d.List(ctx); err != nil || len(users) != 0 {
		t.Fatalf("an empty directory: %v, %v", users, err)
	}
	bob, _ := d.Create(ctx, NewUser{Email: "bob@example.com"})
	alice, _ := d.EnsureByEmail(ctx, "alice@example.com")
	if err := d.Delete(ctx, bob.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := d.ByID(ctx, bob.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("by id after delete: %v", err)
	}
	if _, err := d.ByEmail(ctx, "bob@example.com"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("by email after delete: %v", err)
	}
	if _, err := d.ByUsername(ctx, "bob"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("by username after delete: %v", err)
	}
	if err := d.Delete(ctx, bob.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a second delete: %v", err)
	}
	again, err := d.Create(ctx, NewUser{Email: "bob@example.com", Username: "bob"})
	if err != nil || again.ID == bob.ID {
		t.Fatalf("the address again: %+v, %v", again, err)
	}
	users, err := d.List(ctx)
	if err != nil || len(users) != 2 || users[0].ID != alice.ID || users[1].ID != again.ID {
		t.Fatalf("list: %+v, %v", users, err)
	}
}
