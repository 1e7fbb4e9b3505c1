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

// Attack: an operator expires a password that may have leaked; the person
// chooses a new one, but ending the account's other sessions fails (the
// store is down). The new password was stored before the sessions were
// ended, so the retry of the same step with the same new password was
// refused as "the expired one", while every session the leak opened went
// on, and the next sign-in no longer stopped at the step. The sessions
// must end before the new password counts.
func TestExpiredPasswordStoredOnlyWithSessionsEnded(t *testing.T) {
	clock := newStepsClock()
	f, users, dana, ended := newSteps(t, clock.store(t), clock.now)
	ctx := context.Background()
	dana = expire(t, users, dana)
	st, token, err := f.Start(ctx, at, dana, alicePassword, SignInState{ClientID: "kiosk"})
	if err != nil || st.Step != StepExpiredPassword {
		t.Fatalf("start: %+v %v", st, err)
	}
	down := errors.New("the store is down")
	f.EndSessions = func(context.Context, string, time.Time) error { return down }
	use := func(directory.User, SignInState, string) error { return nil }
	if err := f.UpdateExpired(ctx, at, token, "kiosk", newPassword, use); !errors.Is(err, down) {
		t.Fatalf("with the store down: %v", err)
	}
	if u, _ := users.ByID(ctx, dana.ID); !u.PasswordExpired {
		t.Error("the password no longer counts as expired, yet the sessions it opened were not ended")
	}
	f.EndSessions = ended.end
	if err := f.UpdateExpired(ctx, at, token, "kiosk", newPassword, use); err != nil {
		t.Fatalf("the same step again, once the store is back: %v", err)
	}
	if len(ended.cuts[dana.ID]) != 1 {
		t.Errorf("sessions ended %d times, want 1", len(ended.cuts[dana.ID]))
	}
}

// Attack: a person who fears their password is known changes it on the
// profile, and ending their other sessions fails. The new password was
// already stored: the attacker's sessions went on, and the person's retry
// (the same current password, as the page asks again) was a wrong
// password, counted towards the lock. Nothing may change unless the
// sessions ended.
func TestPasswordChangeStoredOnlyWithSessionsEnded(t *testing.T) {
	ctx := context.Background()
	now := func() time.Time { return time.Date(2026, 4, 1, 12, 0, 0, 0, time.UTC) }
	store, err := ticket.NewMemory(ticket.MinMemory, now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	f := newSignIn(t, store, now)
	users := f.Users.(*directory.Directory)
	alice, err := users.ByEmail(ctx, "alice@example.com")
	if err != nil {
		t.Fatal(err)
	}
	down := errors.New("the store is down")
	var ended int
	c := &PasswordChange{SignIn: f, Users: users, Now: now,
		EndSessions: func(context.Context, string, time.Time) error { return down }}
	const fresh = "a fresh sentence for a password"
	if err := c.Change(ctx, at, alice.ID, alicePassword, fresh, fresh); !errors.Is(err, down) {
		t.Fatalf("with the store down: %v", err)
	}
	c.EndSessions = func(context.Context, string, time.Time) error { ended++; return nil }
	if err := c.Change(ctx, at, alice.ID, alicePassword, fresh, fresh); err != nil {
		t.Fatalf("the same change again, once the store is back: %v", err)
	}
	if ended != 1 {
		t.Errorf("sessions ended %d times, want 1", ended)
	}
}
