package flow

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/mailgate/caddy-mailgate/internal/directory"
	"github.com/mailgate/caddy-mailgate/internal/limit"
	"github.com/mailgate/caddy-mailgate/internal/memstorage"
	"github.com/mailgate/caddy-mailgate/internal/password"
	"github.com/mailgate/caddy-mailgate/internal/storetest"
	"github.com/mailgate/caddy-mailgate/internal/ticket"
)

const alicePassword = "correct horse battery staple"

// newSignIn is a sign-in over store with alice (active, with a password),
// bob (disabled, with one) and carol (active, without one), locking an
// account after 5 wrong passwords in 15 minutes.
func newSignIn(t *testing.T, store ticket.Store, now func() time.Time) *SignIn {
	t.Helper()
	ctx := context.Background()
	users := directory.New(memstorage.New(), "mg", now)
	for email, status := range map[string]string{"alice@example.com": directory.StatusActive, "bob@example.com": directory.StatusDisabled} {
		u, err := users.Create(ctx, directory.NewUser{Email: email})
		if err != nil {
			t.Fatal(err)
		}
		if err := users.SetPassword(ctx, u.ID, password.New(alicePassword).String()); err != nil {
			t.Fatal(err)
		}
		if _, err := users.Update(ctx, u.ID, func(u *directory.User) error { u.Status = status; return nil }); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := users.EnsureByEmail(ctx, "carol@example.com"); err != nil {
		t.Fatal(err)
	}
	return &SignIn{
		Users:     users,
		Allowlist: NewAllowlist(nil, []string{"example.com"}),
		Hashing:   password.NewHashing(256<<20, 64, 1, time.Second),
		Limits: SignInLimits{
			PerAccount: limit.Failures{Rule: limit.Rule{Max: 5, Window: 15 * time.Minute}, Store: store, Name: RuleFailedSignIns},
			PerIP:      limit.Failures{Rule: limit.Rule{Max: 100, Window: 15 * time.Minute}, Store: store, Name: "failures_per_ip"},
		},
	}
}

var at = Requester{IP: "192.0.2.7"}

// The right password signs in by address or username; every wrong pair is
// the same error, whether the account is unknown, has no password, or the
// password is wrong; a right password of a disabled account says so.
func TestSignInAnswers(t *testing.T) {
	now := func() time.Time { return time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC) }
	storetest.Each(t, now, func(t *testing.T, s ticket.Store) {
		f := newSignIn(t, s, now)
		ctx := context.Background()
		for _, name := range []string{"alice@example.com", " Alice@Example.com ", "alice"} {
			if u, err := f.Check(ctx, at, name, alicePassword); err != nil || u.Email != "alice@example.com" {
				t.Fatalf("%q: %+v, %v", name, u, err)
			}
		}
		for _, c := range []struct{ name, pw string }{
			{"alice", "wrong horse battery staple"},
			{"nobody@example.com", alicePassword},
			{"nobody", alicePassword},
			{"carol", alicePassword},
			{"carol", "mailgate: no account has this password"},
			{"bob", "wrong horse battery staple"},
			{"not an address@", alicePassword},
		} {
			if _, err := f.Check(ctx, at, c.name, c.pw); !errors.Is(err, ErrBadCredentials) {
				t.Errorf("%s / %s: %v, want ErrBadCredentials", c.name, c.pw, err)
			}
		}
		if _, err := f.Check(ctx, at, "bob", alicePassword); !errors.Is(err, ErrMayNotSignIn) {
			t.Fatalf("a disabled account's right password: %v", err)
		}
		f.Allowlist = NewAllowlist([]string{"bob@example.com"}, nil)
		if _, err := f.Check(ctx, at, "alice", alicePassword); !errors.Is(err, ErrMayNotSignIn) {
			t.Fatalf("an address the allow rules no longer admit: %v", err)
		}
	})
}

// Five wrong passwords lock an account, known or not, until the window of
// the first ends; the right password is refused meanwhile without being
// hashed; a success before the lock starts the count afresh.
func TestSignInLocksAnAccount(t *testing.T) {
	clock := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	now := func() time.Time { return clock }
	mem, err := ticket.NewMemory(ticket.MinMemory, now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mem.Close() })
	f := newSignIn(t, mem, now)
	ctx := context.Background()
	for range 4 {
		_, _ = f.Check(ctx, at, "alice", "wrong")
	}
	if _, err := f.Check(ctx, at, "alice", alicePassword); err != nil {
		t.Fatalf("the right password after 4 wrong: %v", err)
	}
	for i := range 5 {
		if _, err := f.Check(ctx, at, "alice", "wrong"); !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("wrong password %d after the success: %v", i+1, err)
		}
	}
	for _, name := range []string{"alice", "alice@example.com"} {
		var exceeded *limit.ExceededError
		if _, err := f.Check(ctx, at, name, alicePassword); !errors.As(err, &exceeded) || exceeded.Rule != RuleFailedSignIns {
			t.Fatalf("%s locked, right password: %v", name, err)
		}
	}
	for range 5 {
		_, _ = f.Check(ctx, at, "nobody", "wrong")
	}
	if _, err := f.Check(ctx, at, "nobody", "wrong"); !errors.As(err, new(*limit.ExceededError)) {
		t.Fatalf("an unknown account is not locked like a known one: %v", err)
	}
	clock = clock.Add(15*time.Minute + time.Second)
	if _, err := f.Check(ctx, at, "alice", alicePassword); err != nil {
		t.Fatalf("after the window: %v", err)
	}
}

// Fifty wrong passwords sent at once get at most five compares, on the
// memory store and on Redis: the rest are refused before any hashing.
func TestFiftyWrongPasswordsAtOnce(t *testing.T) {
	now := func() time.Time { return time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC) }
	storetest.Each(t, now, func(t *testing.T, s ticket.Store) {
		f := newSignIn(t, s, now)
		var mu sync.Mutex
		results := map[string]int{}
		var wg sync.WaitGroup
		for range 50 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := f.Check(context.Background(), at, "alice", "wrong")
				kind := "other: "
				switch {
				case errors.Is(err, ErrBadCredentials):
					kind = "compared"
				case errors.As(err, new(*limit.ExceededError)):
					kind = "locked"
				default:
					kind += err.Error()
				}
				mu.Lock()
				results[kind]++
				mu.Unlock()
			}()
		}
		wg.Wait()
		if results["compared"] > 5 || results["compared"]+results["locked"] != 50 {
			t.Fatalf("results %v; want at most 5 compared, the rest locked", results)
		}
	})
}

// A sign-in that gets no hashing slot is ErrBusy and counts against nobody.
func TestSignInWhenHashingIsBusy(t *testing.T) {
	now := func() time.Time { return time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC) }
	mem, err := ticket.NewMemory(ticket.MinMemory, now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mem.Close() })
	f := newSignIn(t, mem, now)
	f.Hashing = password.NewHashing(1, 64, 1, time.Millisecond)
	hold := make(chan struct{})
	held := make(chan struct{})
	go func() { _ = f.Hashing.Do(context.Background(), func() { close(held); <-hold }) }()
	<-held
	for range 10 {
		if _, err := f.Check(context.Background(), at, "alice", "wrong"); !errors.Is(err, password.ErrBusy) {
			t.Fatalf("busy: %v", err)
		}
	}
	close(hold)
	f.Hashing = password.NewHashing(256<<20, 64, 1, time.Second)
	if _, err := f.Check(context.Background(), at, "alice", alicePassword); err != nil {
		t.Fatalf("after busy refusals: %v", err)
	}
}
