package flow

import (
	"context"
	"errors"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailgate/caddy-mailgate/internal/directory"
	"github.com/mailgate/caddy-mailgate/internal/limit"
	"github.com/mailgate/caddy-mailgate/internal/password"
	"github.com/mailgate/caddy-mailgate/internal/storetest"
	"github.com/mailgate/caddy-mailgate/internal/ticket"
)

// codeSteps is the steps over store with the kiosk client enforcing an
// emailed code, mailed by the real engine into out.
func codeSteps(t *testing.T, store ticket.Store, now func() time.Time) (*SignInSteps, *EmailCode, *outbox, *directory.Directory, directory.User) {
	t.Helper()
	f, users, dana, _ := newSteps(t, store, now)
	out := &outbox{}
	codes := &EmailCode{
		Store: store, Users: users, Mailer: out,
		Allowlist: NewAllowlist([]string{"dana@example.com"}, nil),
		LinkURL: func(s, _, _ string) string {
			return "https://login.example.com/login/email/link?t=" + url.QueryEscape(s)
		},
		SiteName: "Example",
		Now:      now,
		Limits: CodeLimits{
			PerIP:           limit.Rule{Max: 100, Window: 15 * time.Minute},
			PerAddress:      limit.Rule{Max: 3, Window: 15 * time.Minute},
			WrongPerAddress: limit.Rule{Max: 10, Window: 24 * time.Hour},
		},
	}
	f.Codes = codes
	f.SecondFactor = map[string]EmailCodeClient{"kiosk": {Name: "The Kiosk", ReturnURL: "https://kiosk.example.com"}}
	return f, codes, out, users, dana
}

// confirmLast confirms the link of the last letter, as the person does on
// the code-confirm page.
func confirmLast(t *testing.T, codes *EmailCode, out *outbox) {
	t.Helper()
	if len(out.letters) == 0 {
		t.Fatal("no letter was mailed")
	}
	u, err := url.Parse(out.letters[len(out.letters)-1].Link)
	if err != nil {
		t.Fatal(err)
	}
	next, err := codes.ConfirmLink(context.Background(), u.Query().Get("t"))
	if err != nil || next != "https://kiosk.example.com" {
		t.Fatalf("confirming: %q, %v", next, err)
	}
}

// A client with a second factor: the password is followed by a mailed code;
// resumes answer email_code with the same token until the link is
// confirmed, then the next step, once.
func TestEmailCodeStep(t *testing.T) {
	clock := newStepsClock()
	f, codes, out, users, dana := codeSteps(t, clock.store(t), clock.now)
	ctx := context.Background()
	resume := func(token string) (SignInState, string, error) {
		var st SignInState
		var next string
		err := f.Resume(ctx, at, token, func(_ directory.User, s SignInState, tok string) error { st, next = s, tok; return nil })
		return st, next, err
	}

	st, token, err := f.Start(ctx, at, dana, alicePassword, SignInState{ClientID: "kiosk"})
	if err != nil || st.Step != StepEmailCode || token == "" || st.Email != "dana@example.com" {
		t.Fatalf("start: %+v %q %v", st, token, err)
	}
	if st.Expires != clock.now().Add(EmailCodeTTL).UnixNano() {
		t.Fatalf("the step expires at %v, want with its code", time.Unix(0, st.Expires))
	}
	l := out.letters[0]
	if l.To != "dana@example.com" || l.App != "The Kiosk" || l.Link == "" || l.Code == "" || l.RequestIP != at.IP {
		t.Fatalf("letter %+v", l)
	}
	// Another client's sign-in has no second factor.
	if st, _, err := f.Start(ctx, at, dana, alicePassword, SignInState{ClientID: "web"}); err != nil || st.Step != StepDone {
		t.Fatalf("a client without second factor: %+v %v", st, err)
	}
	for range 3 {
		if st, same, err := resume(token); err != nil || st.Step != StepEmailCode || same != token {
			t.Fatalf("before confirmation: %+v %q %v", st, same, err)
		}
	}
	// The email_code token is nothing to the other steps.
	if err := f.Persist(ctx, at, token, func(directory.User, SignInState) error { return nil }); !errors.Is(err, ErrStateInvalid) {
		t.Fatalf("persist with an email_code token: %v", err)
	}
	confirmLast(t, codes, out)
	if st, next, err := resume(token); err != nil || st.Step != StepDone || next != "" {
		t.Fatalf("after confirmation: %+v %q %v", st, next, err)
	}
	if _, _, err := resume(token); !errors.Is(err, ErrStateInvalid) {
		t.Fatalf("a used token: %v", err)
	}

	// After the code: an expired password, then persist.
	_, token, err = f.Start(ctx, at, expire(t, users, dana), alicePassword, SignInState{ClientID: "kiosk", AskPersist: true})
	if err != nil {
		t.Fatal(err)
	}
	confirmLast(t, codes, out)
	st, expiredToken, err := resume(token)
	if err != nil || st.Step != StepExpiredPassword || expiredToken == "" || expiredToken == token {
		t.Fatalf("expired after the code: %+v %v", st, err)
	}
	var nextStep SignInStep
	if err := f.UpdateExpired(ctx, at, expiredToken, "kiosk", "Kx9#mQ2$", func(_ directory.User, n SignInState, _ string) error {
		nextStep = n.Step
		return nil
	}); err != nil || nextStep != StepPersist {
		t.Fatalf("an 8-character password with the second factor: %v, next %s", err, nextStep)
	}
}

// The step ends with its code: three minutes after the mail, the token is
// refused.
func TestEmailCodeStepExpires(t *testing.T) {
	clock := newStepsClock()
	f, codes, out, _, dana := codeSteps(t, clock.store(t), clock.now)
	ctx := context.Background()
	_, token, err := f.Start(ctx, at, dana, alicePassword, SignInState{ClientID: "kiosk"})
	if err != nil {
		t.Fatal(err)
	}
	confirmLast(t, codes, out)
	clock.move(EmailCodeTTL)
	if _, _, err := resumeStep(ctx, f, at, token); !errors.Is(err, ErrStateInvalid) {
		t.Fatalf("after three minutes: %v", err)
	}
}

// The engine's limits hold: over its mails per address, the sign-in is
// refused with its *limit.ExceededError and no token.
func TestEmailCodeStepLimited(t *testing.T) {
	clock := newStepsClock()
	f, _, out, _, dana := codeSteps(t, clock.store(t), clock.now)
	ctx := context.Background()
	for range 3 {
		if _, _, err := f.Start(ctx, at, dana, alicePassword, SignInState{ClientID: "kiosk"}); err != nil {
			t.Fatal(err)
		}
	}
	var exceeded *limit.ExceededError
	if _, token, err := f.Start(ctx, at, dana, alicePassword, SignInState{ClientID: "kiosk"}); !errors.As(err, &exceeded) || token != "" {
		t.Fatalf("fourth mail: %q %v", token, err)
	}
	if len(out.letters) != 3 {
		t.Fatalf("%d letters, want 3", len(out.letters))
	}
}

// New passwords need 8 characters where the client enforces the second
// factor, 15 elsewhere.
func TestNewPasswordLengthFollowsSecondFactor(t *testing.T) {
	clock := newStepsClock()
	f, _, _, _, _ := codeSteps(t, clock.store(t), clock.now)
	var rules *PasswordRulesError
	if err := f.checkNew("kiosk", "Kx9#mQ2$"); err != nil {
		t.Fatalf("8 characters with a second factor: %v", err)
	}
	if err := f.checkNew("kiosk", "Kx9#mQ2"); !errors.As(err, &rules) || rules.Rules[0] != password.RuleTooShort {
		t.Fatalf("7 characters with a second factor: %v", err)
	}
	if err := f.checkNew("web", "Kx9#mQ2$zz"); !errors.As(err, &rules) || rules.Rules[0] != password.RuleTooShort {
		t.Fatalf("10 characters without: %v", err)
	}
}

// Fifty resumes at once after the confirmation: one goes on (the session
// starts once), the others find the token used; on the memory store and
// on Redis.
func TestEmailCodeStepFiftyResumesAtOnce(t *testing.T) {
	clock := newStepsClock()
	storetest.Each(t, clock.now, func(t *testing.T, s ticket.Store) {
		f, codes, out, _, dana := codeSteps(t, s, clock.now)
		ctx := context.Background()
		_, token, err := f.Start(ctx, at, dana, alicePassword, SignInState{ClientID: "kiosk"})
		if err != nil {
			t.Fatal(err)
		}
		confirmLast(t, codes, out)
		var wg sync.WaitGroup
		var done, invalid atomic.Int32
		for range 50 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := f.Resume(ctx, at, token, func(_ directory.User, st SignInState, _ string) error {
					if st.Step == StepDone {
						done.Add(1)
					}
					return nil
				})
				switch {
				case errors.Is(err, ErrStateInvalid):
					invalid.Add(1)
				case err != nil:
					t.Errorf("unexpected: %v", err)
				}
			}()
		}
		wg.Wait()
		if done.Load() != 1 || invalid.Load() != 49 {
			t.Fatalf("%d done, %d refused; want 1 and 49", done.Load(), invalid.Load())
		}
	})
}
