package flow

import (
	"context"
	"errors"
	"time"

	"github.com/mailgate/caddy-mailgate/internal/directory"
	"github.com/mailgate/caddy-mailgate/internal/password"
)

// ErrNoPassword is a change of password asked for an account that has
// none: it signs in by mailed links only, and gets a password by a reset.
var ErrNoPassword = errors.New("flow: this account has no password to change")

// PasswordChange lets a signed-in person change their password on the
// profile page. The current password is checked by the password sign-in
// (SignIn.Check), so a wrong one is counted, limited and locks the account
// exactly as a wrong sign-in does: a stolen session cannot be used to
// guess the password any faster than the sign-in form can.
type PasswordChange struct {
	SignIn *SignIn
	Users  PasswordUsers
	// EndSessions ends every session of the user issued before a time
	// (session.Manager.RevokeUser): a changed password signs the person
	// out everywhere else, as a reset does.
	EndSessions func(ctx context.Context, userID string, before time.Time) error
	Now         func() time.Time
	Observer    Observer
}

// Change sets the user's new password pw (typed twice, confirm) if current
// is their password. The new one is checked first, so a policy error (a
// *PasswordRulesError or ErrPasswordMismatch) costs no attempt; then the
// errors are SignIn.Check's: ErrBadCredentials for a wrong current
// password, an *limit.ExceededError, password.ErrBusy. On success every
// session of the user issued before now has ended: the caller starts a new
// one for the person who changed it.
func (f *PasswordChange) Change(ctx context.Context, who Requester, userID, current, pw, confirm string) error {
	u, err := f.Users.ByID(ctx, userID)
	if err != nil {
		return err
	}
	if u.PasswordHash == "" {
		return ErrNoPassword
	}
	if err := checkNewPassword(pw, confirm); err != nil {
		return err
	}
	if err := checkOwnWords(pw, u); err != nil {
		return err
	}
	if _, err := f.SignIn.Check(ctx, who, u.Email, current); err != nil {
		return err
	}
	var hash string
	if err := f.SignIn.Hashing.Do(ctx, func() { hash = password.New(pw).String() }); err != nil {
		return err
	}
	// The sessions end first: a failure between the two must not leave a
	// changed password with the old sessions running.
	if err := f.EndSessions(ctx, u.ID, f.Now()); err != nil {
		return err
	}
	if err := f.Users.SetPassword(ctx, u.ID, hash); err != nil {
		return err
	}
	ObservedIn(ctx, f.Observer).PasswordSet(u.ID)
	return nil
}

// Every directory serves the change.
var _ PasswordUsers = (*directory.Directory)(nil)
