package flow

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/mailgate/caddy-mailgate/internal/directory"
)

// TestDeletedUsersLinkDoesNotRecreateTheAccount: a link mailed before the
// user was deleted (and their pending links ended) no longer works and
// creates nobody; a link mailed after it signs the address up again, as a
// new user.
func TestDeletedUsersLinkDoesNotRecreateTheAccount(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	users := f.flow.Users.(*directory.Directory)
	if err := f.flow.Request(ctx, browserAt, "carol@corp.example", "/", ""); err != nil {
		t.Fatal(err)
	}
	first, err := redeemLink(ctx, f.flow, f.secret(f.out.letters[0]))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.flow.Request(ctx, browserAt, "carol@corp.example", "/", ""); err != nil {
		t.Fatal(err)
	}
	pending := f.secret(f.out.letters[1])

	f.now = f.now.Add(time.Second)
	if err := EndPending(ctx, f.flow.Store, "carol@corp.example", f.now); err != nil {
		t.Fatal(err)
	}
	if err := users.Delete(ctx, first.User.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := redeemLink(ctx, f.flow, pending); !errors.Is(err, ErrLinkInvalid) {
		t.Fatalf("the link mailed before the deletion: %v, want ErrLinkInvalid", err)
	}
	if _, err := users.ByEmail(ctx, "carol@corp.example"); !errors.Is(err, directory.ErrNotFound) {
		t.Fatalf("the refused link recreated the account: %v", err)
	}

	f.now = f.now.Add(time.Millisecond)
	if err := f.flow.Request(ctx, browserAt, "carol@corp.example", "/", ""); err != nil {
		t.Fatal(err)
	}
	again, err := redeemLink(ctx, f.flow, f.secret(f.out.letters[2]))
	if err != nil {
		t.Fatalf("a link mailed after the deletion: %v", err)
	}
	if again.User.ID == first.User.ID || again.User.Status != directory.StatusActive {
		t.Fatalf("signed up again as %+v, want a new active user (the old id was %s)", again.User, first.User.ID)
	}
}

// TestEndedCodeIsExpired: a code mailed before its address's pending logins
// were ended reads as expired, whatever the code.
func TestEndedCodeIsExpired(t *testing.T) {
	f := newCodeFixture(t)
	ctx := context.Background()
	id := f.start(t, "alice@example.com", false)
	code := f.lastCode(t)
	if err := EndPending(ctx, f.flow.Store, "alice@example.com", f.now.Add(time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if _, err := f.complete(id, "alice@example.com", code); !errors.Is(err, ErrCodeExpired) {
		t.Fatalf("a code mailed before the cut-off: %v, want ErrCodeExpired", err)
	}
	if _, err := f.flow.Users.(*directory.Directory).ByEmail(ctx, "alice@example.com"); !errors.Is(err, directory.ErrNotFound) {
		t.Fatalf("the refused code created the account: %v", err)
	}
}

// TestInvitedUserSigningInBecomesActive: a link proves the address, so an
// invited user who signs in with one is active from then on.
func TestInvitedUserSigningInBecomesActive(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	users := f.flow.Users.(*directory.Directory)
	invited, err := users.Create(ctx, directory.NewUser{Email: "alice@example.com", Name: "Alice"})
	if err != nil || invited.Status != directory.StatusInvited {
		t.Fatalf("create: %+v, %v", invited, err)
	}
	if err := f.flow.Request(ctx, browserAt, "alice@example.com", "/", ""); err != nil {
		t.Fatal(err)
	}
	login, err := redeemLink(ctx, f.flow, f.secret(f.out.letters[0]))
	if err != nil {
		t.Fatal(err)
	}
	if login.User.ID != invited.ID || login.User.Status != directory.StatusActive || !login.User.SignedUp.Equal(f.now) {
		t.Fatalf("the login's user: %+v, want %s active, signed up now", login.User, invited.ID)
	}
	if stored, _ := users.ByID(ctx, invited.ID); stored.Status != directory.StatusActive {
		t.Fatalf("stored status %q, want active", stored.Status)
	}
}

// TestDisabledUsersPasswordStepSetsNothing: a user disabled between the
// link and the set-password page gets neither a password nor a login.
func TestDisabledUsersPasswordStepSetsNothing(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	users := f.flow.Users.(*directory.Directory)
	u, err := users.EnsureByEmail(ctx, "bob@corp.example")
	if err != nil {
		t.Fatal(err)
	}
	step := &PasswordStep{Store: f.flow.Store, Users: users, Now: func() time.Time { return f.now }}
	secret, err := step.Begin(ctx, Login{User: u, Client: &ClientLogin{ClientID: "shop"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := users.Update(ctx, u.ID, func(u *directory.User) error { u.Status = directory.StatusDisabled; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := completeStep(ctx, step, secret, "a long passphrase", "a long passphrase"); !errors.Is(err, ErrLinkInvalid) {
		t.Fatalf("the step of a disabled user: %v, want ErrLinkInvalid", err)
	}
	if stored, _ := users.ByID(ctx, u.ID); stored.PasswordHash != "" {
		t.Fatal("a disabled user's password was set")
	}
}
