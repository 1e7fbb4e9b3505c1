package flow

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailgate/caddy-mailgate/internal/directory"
	"github.com/mailgate/caddy-mailgate/internal/limit"
	"github.com/mailgate/caddy-mailgate/internal/memstorage"
	"github.com/mailgate/caddy-mailgate/internal/password"
	"github.com/mailgate/caddy-mailgate/internal/storetest"
	"github.com/mailgate/caddy-mailgate/internal/ticket"
)

// stepsClock is a clock a test moves.
type stepsClock struct{ at atomic.Int64 }

func newStepsClock() *stepsClock {
	c := &stepsClock{}
	c.at.Store(time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *stepsClock) now() time.Time       { return time.Unix(0, c.at.Load()).UTC() }
func (c *stepsClock) move(d time.Duration) { c.at.Add(int64(d)) }
func (c *stepsClock) store(t *testing.T) ticket.Store {
	t.Helper()
	m, err := ticket.NewMemory(ticket.MinMemory, c.now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return m
}

// endedSessions records the cut-offs EndSessions was called with.
type endedSessions struct {
	mu   sync.Mutex
	cuts map[string][]time.Time
}

func (e *endedSessions) end(_ context.Context, userID string, before time.Time) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.cuts == nil {
		e.cuts = map[string][]time.Time{}
	}
	e.cuts[userID] = append(e.cuts[userID], before)
	return nil
}

// newSteps is the steps over store, with dana (active, a password set
// now) in its directory.
func newSteps(t *testing.T, store ticket.Store, now func() time.Time) (*SignInSteps, *directory.Directory, directory.User, *endedSessions) {
	t.Helper()
	ctx := context.Background()
	users := directory.New(memstorage.New(), "mg", now)
	u, err := users.Create(ctx, directory.NewUser{Email: "dana@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if err := users.SetPassword(ctx, u.ID, password.New(alicePassword).String()); err != nil {
		t.Fatal(err)
	}
	if u, err = users.SignUp(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	ended := &endedSessions{}
	return &SignInSteps{
		Store:       store,
		Users:       users,
		Hashing:     password.NewHashing(256<<20, 64, 1, time.Second),
		Failures:    limit.Failures{Rule: limit.Rule{Max: 1000, Window: 15 * time.Minute}, Store: store, Name: "failures_per_ip"},
		EndSessions: ended.end,
		Now:         now,
	}, users, u, ended
}

const newPassword = "a new and rather long passphrase"

// expire is the operator expiring u's password.
func expire(t *testing.T, users *directory.Directory, u directory.User) directory.User {
	t.Helper()
	u, err := users.Update(context.Background(), u.ID, func(u *directory.User) error { u.PasswordExpired = true; return nil })
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// The first step: an expired password (by the operator or by age) before
// anything, then persist when the client asks it, else done.
func TestSignInStepsStart(t *testing.T) {
	clock := newStepsClock()
	f, users, dana, _ := newSteps(t, clock.store(t), clock.now)
	ctx := context.Background()
	step := func(u directory.User, ask bool) SignInStep {
		t.Helper()
		st, token, err := f.Start(ctx, at, u, alicePassword, SignInState{ClientID: "kiosk", AskPersist: ask})
		if err != nil || (st.Step == StepDone) != (token == "") {
			t.Fatalf("start: %+v %q %v", st, token, err)
		}
		return st.Step
	}
	if s := step(dana, false); s != StepDone {
		t.Fatalf("a fresh password: %s", s)
	}
	if s := step(dana, true); s != StepPersist {
		t.Fatalf("ask_persist: %s", s)
	}
	f.PasswordMaxAge = 90 * 24 * time.Hour
	clock.move(90*24*time.Hour - time.Second)
	if s := step(dana, false); s != StepDone {
		t.Fatalf("a second before password_max_age: %s", s)
	}
	clock.move(time.Second)
	if s := step(dana, true); s != StepExpiredPassword {
		t.Fatalf("at password_max_age: %s", s)
	}
	f.PasswordMaxAge = 0
	if s := step(expire(t, users, dana), false); s != StepExpiredPassword {
		t.Fatalf("expired by the operator: %s", s)
	}
}

// A stateToken is for its step only (a persist token is unknown to
// update-expired-password, and the refusal leaves it usable), for its
// client only, used once, and dead after ten minutes by the flow's clock:
// on the memory store and on Redis, whose own clock does not move.
func TestStateTokenSingleUsePurposeBoundExpiring(t *testing.T) {
	clock := newStepsClock()
	storetest.Each(t, clock.now, func(t *testing.T, s ticket.Store) {
		f, users, dana, _ := newSteps(t, s, clock.now)
		ctx := context.Background()
		_, persist, err := f.Start(ctx, at, dana, alicePassword, SignInState{ClientID: "kiosk", AskPersist: true})
		if err != nil {
			t.Fatal(err)
		}
		used := 0
		count := func(directory.User, SignInState) error { used++; return nil }
		none := func(directory.User, SignInState, string) error { t.Fatal("a password was updated"); return nil }
		if err := f.UpdateExpired(ctx, at, persist, "kiosk", newPassword, none); !errors.Is(err, ErrStateInvalid) {
			t.Fatalf("a persist token at update-expired-password: %v", err)
		}
		if st, u, err := resumeStep(ctx, f, at, persist); err != nil || st.Step != StepPersist || u.ID != dana.ID {
			t.Fatalf("resume: %+v %v", st, err)
		}
		if err := f.Persist(ctx, at, persist, count); err != nil || used != 1 {
			t.Fatalf("persist: %v, used %d", err, used)
		}
		if err := f.Persist(ctx, at, persist, count); !errors.Is(err, ErrStateInvalid) || used != 1 {
			t.Fatalf("persist again: %v", err)
		}
		if _, _, err := resumeStep(ctx, f, at, persist); !errors.Is(err, ErrStateInvalid) {
			t.Fatalf("resume a used token: %v", err)
		}

		expiredDana := expire(t, users, dana)
		_, expired, err := f.Start(ctx, at, expiredDana, alicePassword, SignInState{ClientID: "kiosk"})
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Persist(ctx, at, expired, count); !errors.Is(err, ErrStateInvalid) || used != 1 {
			t.Fatalf("an expired_password token at login-persist: %v", err)
		}
		if err := f.UpdateExpired(ctx, at, expired, "other-app", newPassword, none); !errors.Is(err, ErrStateInvalid) {
			t.Fatalf("another client's token: %v", err)
		}
		_, late, err := f.Start(ctx, at, expiredDana, alicePassword, SignInState{ClientID: "kiosk", AskPersist: true})
		if err != nil {
			t.Fatal(err)
		}
		_, latePersist, err := f.Start(ctx, at, dana, alicePassword, SignInState{ClientID: "kiosk", AskPersist: true})
		if err != nil {
			t.Fatal(err)
		}
		clock.move(StateTokenTTL)
		defer clock.move(-StateTokenTTL)
		if _, _, err := resumeStep(ctx, f, at, late); !errors.Is(err, ErrStateInvalid) {
			t.Fatalf("resume after ten minutes: %v", err)
		}
		if err := f.UpdateExpired(ctx, at, late, "kiosk", newPassword, none); !errors.Is(err, ErrStateInvalid) {
			t.Fatalf("update after ten minutes: %v", err)
		}
		if err := f.Persist(ctx, at, latePersist, count); !errors.Is(err, ErrStateInvalid) || used != 1 {
			t.Fatalf("persist after ten minutes: %v", err)
		}
	})
}

// update-expired-password holds the password to the policy without using
// the token up, then stores it, ends the other sessions as of before the
// new one, and goes on to persist when the client asks it.
func TestUpdateExpiredPassword(t *testing.T) {
	clock := newStepsClock()
	f, users, dana, ended := newSteps(t, clock.store(t), clock.now)
	ctx := context.Background()
	_, token, err := f.Start(ctx, at, expire(t, users, dana), alicePassword, SignInState{ClientID: "kiosk", AskPersist: true, Persistent: true})
	if err != nil {
		t.Fatal(err)
	}
	for pw, want := range map[string]password.Rule{"short": password.RuleTooShort, "dana@example.com!!": password.RuleContext, alicePassword: RuleSameAsExpired} {
		var rules *PasswordRulesError
		err := f.UpdateExpired(ctx, at, token, "kiosk", pw, func(directory.User, SignInState, string) error { return nil })
		if !errors.As(err, &rules) || rules.Rules[0] != want {
			t.Fatalf("%q: %v, want %s", pw, err, want)
		}
	}
	var next SignInState
	var nextToken string
	err = f.UpdateExpired(ctx, at, token, "kiosk", newPassword, func(u directory.User, n SignInState, tok string) error {
		next, nextToken = n, tok
		return nil
	})
	if err != nil || next.Step != StepPersist || nextToken == "" || !next.Persistent {
		t.Fatalf("update: %v, next %+v %q", err, next, nextToken)
	}
	u, _ := users.ByID(ctx, dana.ID)
	h, _ := password.Parse(u.PasswordHash)
	if u.PasswordExpired || !h.Matches(newPassword) || !u.PasswordSet.Equal(clock.now()) {
		t.Fatalf("stored: %+v", u)
	}
	if cuts := ended.cuts[dana.ID]; len(cuts) != 1 || !cuts[0].Equal(clock.now()) {
		t.Fatalf("sessions ended: %v", cuts)
	}
	if st, _, err := resumeStep(ctx, f, at, nextToken); err != nil || st.Step != StepPersist {
		t.Fatalf("the persist step after: %+v %v", st, err)
	}
}

// Tries at stateTokens are counted per IP before the lookup: over
// failures_per_ip even a live token is refused.
func TestStateTokenTriesAreLimited(t *testing.T) {
	clock := newStepsClock()
	f, _, dana, _ := newSteps(t, clock.store(t), clock.now)
	f.Failures.Rule = limit.Rule{Max: 3, Window: 15 * time.Minute}
	ctx := context.Background()
	_, token, err := f.Start(ctx, at, dana, alicePassword, SignInState{ClientID: "kiosk", AskPersist: true})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, _, err := resumeStep(ctx, f, at, "guess"); !errors.Is(err, ErrStateInvalid) {
			t.Fatalf("a guess: %v", err)
		}
	}
	var exceeded *limit.ExceededError
	if err := f.Persist(ctx, at, token, func(directory.User, SignInState) error { return nil }); !errors.As(err, &exceeded) {
		t.Fatalf("over the limit: %v", err)
	}
	if err := f.Persist(ctx, Requester{IP: "192.0.2.99"}, token, func(directory.User, SignInState) error { return nil }); err != nil {
		t.Fatalf("the token was used up by the refused try: %v", err)
	}
}

// Fifty uses of one stateToken at once, at login-persist and at
// update-expired-password: exactly one goes through, on the memory store
// and on Redis.
func TestStateTokenFiftyAtOnce(t *testing.T) {
	clock := newStepsClock()
	storetest.Each(t, clock.now, func(t *testing.T, s ticket.Store) {
		f, users, dana, _ := newSteps(t, s, clock.now)
		ctx := context.Background()
		fifty := func(use func(token string) error, token string) (ok, invalid int) {
			var wg sync.WaitGroup
			var okN, invalidN atomic.Int32
			for range 50 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					switch err := use(token); {
					case err == nil:
						okN.Add(1)
					case errors.Is(err, ErrStateInvalid):
						invalidN.Add(1)
					default:
						t.Errorf("unexpected: %v", err)
					}
				}()
			}
			wg.Wait()
			return int(okN.Load()), int(invalidN.Load())
		}
		_, persist, err := f.Start(ctx, at, dana, alicePassword, SignInState{ClientID: "kiosk", AskPersist: true})
		if err != nil {
			t.Fatal(err)
		}
		var sessions atomic.Int32
		ok, invalid := fifty(func(token string) error {
			return f.Persist(ctx, at, token, func(directory.User, SignInState) error { sessions.Add(1); return nil })
		}, persist)
		if ok != 1 || invalid != 49 || sessions.Load() != 1 {
			t.Fatalf("persist: %d through, %d refused, %d sessions", ok, invalid, sessions.Load())
		}
		_, expired, err := f.Start(ctx, at, expire(t, users, dana), alicePassword, SignInState{ClientID: "kiosk"})
		if err != nil {
			t.Fatal(err)
		}
		sessions.Store(0)
		ok, invalid = fifty(func(token string) error {
			return f.UpdateExpired(ctx, at, token, "kiosk", newPassword, func(directory.User, SignInState, string) error { sessions.Add(1); return nil })
		}, expired)
		if ok != 1 || invalid != 49 || sessions.Load() != 1 {
			t.Fatalf("update-expired-password: %d through, %d refused, %d sessions", ok, invalid, sessions.Load())
		}
	})
}

// resumeStep is login-resume without a session: the step token is at (or
// goes on to), and its account.
func resumeStep(ctx context.Context, f *SignInSteps, who Requester, token string) (SignInState, directory.User, error) {
	var st SignInState
	var u directory.User
	err := f.Resume(ctx, who, token, func(user directory.User, s SignInState, _ string) error {
		st, u = s, user
		return nil
	})
	return st, u, err
}
