package flow

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/mailgate/caddy-mailgate/internal/directory"
	"github.com/mailgate/caddy-mailgate/internal/password"
)

// withAccent is n characters as internal/password counts them (NFKC,
// runes), one of them an e with a combining acute accent: n+1 runes as
// typed.
func withAccent(n int) string {
	return "Kx9#e\u0301" + strings.Repeat("q", n-5)
}

// A password is short for a single factor exactly when the policy would
// call it too short: counted after NFKC, so that the combining accent and
// a ligature count as the policy counts them.
func TestShortForSingleFactorCountsAsThePolicy(t *testing.T) {
	for _, c := range []struct {
		pw    string
		short bool
	}{
		{withAccent(14), true},        // 15 runes typed, 14 characters
		{withAccent(15), false},       // 16 runes typed, 15 characters
		{"Kx9#\ufb03mQ2$zzzw", false}, // 13 runes typed; the ligature is 3: 15
		{"Kx9#mQ2$", true},
		{"", true},
	} {
		if got := ShortForSingleFactor(c.pw); got != c.short {
			t.Errorf("%q: short %v, want %v", c.pw, got, c.short)
		}
		if got := slices.Contains(password.Policy{}.Check(c.pw), password.RuleTooShort); got != c.short {
			t.Errorf("%q: the policy says too short %v, want %v", c.pw, got, c.short)
		}
	}
}

// The limits of the second factor, with a combining character: 8
// characters are enough for the second-factor client, 7 are not, and the
// client without one still wants 15, not 14.
func TestNewPasswordLengthAtTheLimits(t *testing.T) {
	clock := newStepsClock()
	f, _, _, _, _ := codeSteps(t, clock.store(t), clock.now)
	var rules *PasswordRulesError
	if err := f.checkNew("kiosk", withAccent(8)); err != nil {
		t.Fatalf("8 characters with a second factor: %v", err)
	}
	if err := f.checkNew("kiosk", withAccent(7)); !errors.As(err, &rules) || rules.Rules[0] != password.RuleTooShort {
		t.Fatalf("7 characters with a second factor: %v", err)
	}
	if err := f.checkNew("web", withAccent(15)); err != nil {
		t.Fatalf("15 characters without: %v", err)
	}
	if err := f.checkNew("web", withAccent(14)); !errors.As(err, &rules) || rules.Rules[0] != password.RuleTooShort {
		t.Fatalf("14 characters without: %v", err)
	}
}

// An 8-character password set through the second-factor client signs in
// through it as before (the code first), but through a client without a
// second factor it goes to expired_password, whose new password needs 15
// characters, and only then to a session.
func TestShortPasswordWithoutSecondFactor(t *testing.T) {
	clock := newStepsClock()
	f, _, out, _, dana := codeSteps(t, clock.store(t), clock.now)
	ctx := context.Background()
	short := withAccent(8)

	st, token, err := f.Start(ctx, at, dana, short, SignInState{ClientID: "kiosk"})
	if err != nil || st.Step != StepEmailCode || token == "" || len(out.letters) != 1 {
		t.Fatalf("through the second-factor client: %+v %v", st, err)
	}
	st, token, err = f.Start(ctx, at, dana, short, SignInState{ClientID: "web", AskPersist: true})
	if err != nil || st.Step != StepExpiredPassword || token == "" {
		t.Fatalf("through a client without a second factor: %+v %q %v", st, token, err)
	}
	if len(out.letters) != 1 {
		t.Fatalf("%d letters: the client without a second factor mailed a code", len(out.letters))
	}
	// The same account with a long password is done at once there.
	if st, _, err := f.Start(ctx, at, dana, withAccent(15), SignInState{ClientID: "web"}); err != nil || st.Step != StepDone {
		t.Fatalf("a 15-character password: %+v %v", st, err)
	}
	// No password at all is no long one: Start measures what it is given.
	if st, _, err := f.Start(ctx, at, dana, "", SignInState{ClientID: "web"}); err != nil || st.Step != StepExpiredPassword {
		t.Fatalf("an empty password: %+v %v", st, err)
	}

	var rules *PasswordRulesError
	var next SignInStep
	use := func(_ directory.User, n SignInState, _ string) error { next = n.Step; return nil }
	if err := f.UpdateExpired(ctx, at, token, "web", withAccent(14), use); !errors.As(err, &rules) || rules.Rules[0] != password.RuleTooShort {
		t.Fatalf("a 14-character replacement: %v", err)
	}
	if err := f.UpdateExpired(ctx, at, token, "web", withAccent(15), use); err != nil || next != StepPersist {
		t.Fatalf("a 15-character replacement: %v, next %s", err, next)
	}
}
