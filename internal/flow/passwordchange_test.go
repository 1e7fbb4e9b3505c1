package flow

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/mailgate/caddy-mailgate/internal/directory"
	"github.com/mailgate/caddy-mailgate/internal/limit"
	"github.com/mailgate/caddy-mailgate/internal/memstorage"
	"github.com/mailgate/caddy-mailgate/internal/password"
	"github.com/mailgate/caddy-mailgate/internal/ticket"
)

// A change of password: the new one is held to the policy before the
// current one is checked (a policy error spends no attempt), a wrong
// current one is a failed sign-in, and a right one stores the new hash and
// ends the user's sessions.
func TestPasswordChange(t *testing.T) {
	ctx := context.Background()
	clock := time.Date(2026, 4, 1, 12, 0, 0, 0, time.UTC)
	now := func() time.Time { return clock }
	store, err := ticket.NewMemory(ticket.MinMemory, now)
	if err != nil {
		t.Fatal(err)
	}
	users := directory.New(memstorage.New(), "mg", now)
	const current = "correct horse battery staple"
	dana, err := users.Create(ctx, directory.NewUser{Email: "dana@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := users.SignUp(ctx, dana.ID); err != nil {
		t.Fatal(err)
	}
	linkOnly, err := users.Create(ctx, directory.NewUser{Email: "lee@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if err := users.SetPassword(ctx, dana.ID, password.New(current).String()); err != nil {
		t.Fatal(err)
	}
	perAccount := limit.Failures{Rule: limit.Rule{Max: 2, Window: 15 * time.Minute}, Store: store, Name: RuleFailedSignIns}
	var ended []string
	f := &PasswordChange{
		SignIn: &SignIn{
			Users: users, Allowlist: NewAllowlist(nil, []string{"example.com"}),
			Hashing: password.NewHashing(256<<20, 64, 1, time.Second),
			Limits: SignInLimits{
				PerAccount: perAccount,
				PerIP:      limit.Failures{Rule: limit.Rule{Max: 100, Window: 15 * time.Minute}, Store: store, Name: "failures_per_ip"},
			},
		},
		Users: users, Now: now,
		EndSessions: func(_ context.Context, id string, before time.Time) error {
			ended = append(ended, id+"@"+before.Format(time.TimeOnly))
			return nil
		},
	}
	const fresh = "a fresh sentence for a password"
	var weak *PasswordRulesError
	// Policy errors, many of them, spend none of the two attempts.
	for range 3 {
		if err := f.Change(ctx, at, dana.ID, "wrong", "dana@example.com", "dana@example.com"); !errors.As(err, &weak) || weak.Rules[0] != password.RuleContext {
			t.Fatalf("own address: %v", err)
		}
		if err := f.Change(ctx, at, dana.ID, "wrong", fresh, fresh+"!"); !errors.Is(err, ErrPasswordMismatch) {
			t.Fatalf("mismatch: %v", err)
		}
	}
	if err := f.Change(ctx, at, linkOnly.ID, "", fresh, fresh); !errors.Is(err, ErrNoPassword) {
		t.Fatalf("an account without a password: %v", err)
	}
	if err := f.Change(ctx, at, dana.ID, "wrong", fresh, fresh); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("a wrong current password: %v", err)
	}
	if err := f.Change(ctx, at, dana.ID, current, fresh, fresh); err != nil {
		t.Fatalf("the change: %v", err)
	}
	u, _ := users.ByID(ctx, dana.ID)
	if h, err := password.Parse(u.PasswordHash); err != nil || !h.Matches(fresh) {
		t.Fatalf("the new password is not stored: %v", err)
	}
	if len(ended) != 1 || ended[0] != dana.ID+"@12:00:00" {
		t.Fatalf("sessions ended: %v", ended)
	}
}
