package flow

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/mailgate/caddy-mailgate/internal/directory"
	"github.com/mailgate/caddy-mailgate/internal/password"
	"github.com/mailgate/caddy-mailgate/internal/ticket"
)

// Errors of a chosen password. The pending step is not used up by them, so
// the person can try again on the same page.
var (
	ErrPasswordTooShort = errors.New("flow: the password is too short")
	ErrPasswordMismatch = errors.New("flow: the two passwords differ")
)

// PasswordStepTTL is how long the set-password page stays usable.
const PasswordStepTTL = 15 * time.Minute

// PasswordUsers stores passwords and finds the user a step belongs to.
type PasswordUsers interface {
	SetPassword(ctx context.Context, id, hash string) error
	ByID(ctx context.Context, id string) (directory.User, error)
}

// PasswordStep is the set-password step a login passes through when its app
// asked for resetPassword. The confirmed login waits in a one-time ticket,
// so the page cannot be replayed, and no session exists until the password
// is set.
type PasswordStep struct {
	// Store keeps the parked logins.
	Store ticket.Store
	Users PasswordUsers
	Now   func() time.Time
}

func (p *PasswordStep) steps() ticket.Kind[pendingPassword] {
	return ticket.Kind[pendingPassword]{Store: p.Store, Name: "pwset"}
}

type pendingPassword struct {
	UserID string      `json:"user_id"`
	Locale string      `json:"locale,omitempty"`
	Client ClientLogin `json:"client"`
	// Expires is when the step stops working, in Unix nanoseconds (see
	// redeem).
	Expires int64 `json:"expires"`
}

// Begin parks a confirmed app login until its password is set and returns
// the secret the set-password page carries.
func (p *PasswordStep) Begin(ctx context.Context, login Login) (string, error) {
	secret, err := p.steps().Issue(ctx, "", pendingPassword{
		UserID: login.User.ID, Locale: login.Locale, Client: *login.Client,
		Expires: p.Now().Add(PasswordStepTTL).UnixNano(),
	}, PasswordStepTTL)
	if err != nil {
		return "", fmt.Errorf("flow: storing the password step: %w", err)
	}
	return secret, nil
}

// Complete checks the chosen password against the policy, then uses up the
// step behind secret, stores the password and hands the login to use, which
// finishes it. A password that fails the policy leaves the step usable, and
// so does a failure to store it or of use (see redeem); an unknown, used or
// expired step is ErrLinkInvalid.
func (p *PasswordStep) Complete(ctx context.Context, secret, pw, confirm string, use func(Login) error) error {
	if err := checkNewPassword(pw, confirm); err != nil {
		return err
	}
	return redeem(ctx, p.steps(), secret, p.Now, stepHeld, func(pending pendingPassword) error {
		// A user disabled or deleted since the link was confirmed sets no
		// password and gets no login.
		u, err := p.Users.ByID(ctx, pending.UserID)
		if errors.Is(err, directory.ErrNotFound) || (err == nil && u.Status == directory.StatusDisabled) {
			return ErrLinkInvalid
		}
		if err != nil {
			return err
		}
		if err := checkOwnWords(pw, u); err != nil {
			return err
		}
		if err := p.Users.SetPassword(ctx, pending.UserID, password.New(pw).String()); err != nil {
			return err
		}
		// The step follows a mailed link: the link proved the address.
		return use(Login{User: u, Locale: pending.Locale, Client: &pending.Client, Method: MethodLink})
	})
}

// PasswordRulesError is a chosen password that breaks the policy
// (password.Policy, NIST SP 800-63B-4): the rules it breaks.
type PasswordRulesError struct{ Rules []password.Rule }

func (e *PasswordRulesError) Error() string {
	names := make([]string, len(e.Rules))
	for i, r := range e.Rules {
		names[i] = string(r)
	}
	return "flow: the password breaks the policy: " + strings.Join(names, ", ")
}

// Is makes a password that is too short ErrPasswordTooShort.
func (e *PasswordRulesError) Is(target error) bool {
	return target == ErrPasswordTooShort && slices.Contains(e.Rules, password.RuleTooShort)
}

// checkOwnWords refuses a password that is the account's own username or
// address (RuleContext), once the account is known: checkNewPassword ran
// before the secret was used and could not know it.
func checkOwnWords(pw string, u directory.User) error {
	if password.IsAbout(pw, u.Username, u.Email) {
		return &PasswordRulesError{Rules: []password.Rule{password.RuleContext}}
	}
	return nil
}

// checkNewPassword holds a chosen password to the policy, for every page
// where one is chosen (this step, a password reset): a *PasswordRulesError,
// or ErrPasswordMismatch when the two differ. The pages check before the
// secret is used, so the account's own name is checked afterwards
// (checkOwnWords), with the secret put back when it fails.
func checkNewPassword(pw, confirm string) error {
	if broken := (password.Policy{}).Check(pw); len(broken) > 0 {
		return &PasswordRulesError{Rules: broken}
	}
	if pw != confirm {
		return ErrPasswordMismatch
	}
	return nil
}

// stepHeld is when a step expires; it has no owner.
func stepHeld(p pendingPassword) (string, time.Time) { return "", time.Unix(0, p.Expires) }
