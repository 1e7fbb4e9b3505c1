package flow

import (
	"context"
	"errors"
	"strings"
	"sync"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"github.com/mailgate/caddy-mailgate/internal/directory"
	"github.com/mailgate/caddy-mailgate/internal/limit"
	"github.com/mailgate/caddy-mailgate/internal/password"
)

// ErrBadCredentials is a username or password that is wrong: one error for
// an unknown account, an account without a password and a wrong password,
// reached after the same work, so that the answer does not tell which.
var ErrBadCredentials = errors.New("flow: the username or password is wrong")

// ErrMayNotSignIn is a right password of an account that may not sign in
// now: disabled, invited and not signed up, or at an address the site's
// allow rules do not admit (whose session the guard would refuse). It is
// told only to one who knew the password.
var ErrMayNotSignIn = errors.New("flow: this account may not sign in now")

// RuleFailedSignIns names the per-account bound on wrong passwords in an
// *limit.ExceededError: the account is locked.
const RuleFailedSignIns = "failed_sign_ins_per_account"

// SignInUsers finds the account a sign-in names, by username or address.
type SignInUsers interface {
	ByEmail(ctx context.Context, email string) (directory.User, error)
	ByUsername(ctx context.Context, username string) (directory.User, error)
}

// SignInLimits bound wrong passwords. Both count before the password is
// hashed, so that guesses sent at once cannot all be tried.
type SignInLimits struct {
	// PerAccount locks an account after Max wrong passwords within Window
	// (NIST SP 800-63B-4 asks for at most 100): until the window of the
	// first of them ends. An unknown account is counted and locked the
	// same way, so that the lock does not tell who has an account.
	PerAccount limit.Failures
	// PerIP bounds one client's wrong passwords across accounts.
	PerIP limit.Failures
}

// SignIn checks a username and password: the password sign-in of seed 004
// and of the login page.
type SignIn struct {
	Users SignInUsers
	// Allowlist is the site's allow rules: the session a sign-in starts is
	// the site's, which admits only these addresses.
	Allowlist Allowlist
	// Hashing bounds the argon2id work that runs at once.
	Hashing *password.Hashing
	Limits  SignInLimits
	// Observer is told of the wrong passwords. Nil: nobody is told.
	Observer Observer
}

// Check returns the account whose username or address and password these
// are. Over a limit it is an *limit.ExceededError (the IP's, or the
// account's RuleFailedSignIns) and no password was hashed; when no hash
// could run in time, password.ErrBusy; a wrong pair, ErrBadCredentials; a
// right one of an account that may not sign in now, ErrMayNotSignIn.
func (f *SignIn) Check(ctx context.Context, who Requester, username, pw string) (directory.User, error) {
	ip, err := f.Limits.PerIP.TryIP(ctx, who.IP)
	if err != nil {
		return directory.User{}, err
	}
	defer func() { _ = ip.Done(context.WithoutCancel(ctx)) }()
	u, err := f.find(ctx, username)
	if err != nil && !errors.Is(err, directory.ErrNotFound) {
		return directory.User{}, err
	}
	subject := "user:" + u.ID
	if u.ID == "" {
		subject = "name:" + strings.ToLower(strings.TrimSpace(username))
	}
	account, err := f.Limits.PerAccount.Try(ctx, subject)
	if err != nil {
		return directory.User{}, err
	}
	defer func() { _ = account.Done(context.WithoutCancel(ctx)) }()
	// The decoy's password is in the source: a match against it is never
	// right, whatever the account's stored hash (none, or one that does
	// not parse).
	hash, usable := decoyHash(), false
	if h, err := password.Parse(u.PasswordHash); err == nil {
		hash, usable = h, true
	}
	var right bool
	if err := f.Hashing.Do(ctx, func() { right = hash.Matches(pw) }); err != nil {
		return directory.User{}, err
	}
	if !right || !usable {
		ip.Failed()
		account.Failed()
		ObservedIn(ctx, f.Observer).LoginFailed(MethodPassword, "bad_credentials")
		return directory.User{}, ErrBadCredentials
	}
	if err := f.Limits.PerAccount.Forgive(ctx, subject); err != nil {
		return directory.User{}, err
	}
	if u.Status != directory.StatusActive || !f.Allowlist.Allows(u.Email) {
		return directory.User{}, ErrMayNotSignIn
	}
	// Not a login yet: the caller reports it when the session starts,
	// which a step (SignInSteps) may come before.
	return u, nil
}

// find reads the account by address when the name has an @, by username
// otherwise.
func (f *SignIn) find(ctx context.Context, username string) (directory.User, error) {
	if strings.Contains(username, "@") {
		email, err := directory.NormalizeEmail(username)
		if err != nil {
			return directory.User{}, directory.ErrNotFound
		}
		return f.Users.ByEmail(ctx, email)
	}
	return f.Users.ByUsername(ctx, strings.ToLower(strings.TrimSpace(username)))
}

var (
	decoyOnce sync.Once
	decoy     password.Hash
)

// decoyHash is what the password of an account without one is compared
// with: a hash of this package's own parameters, so that the compare costs
// what a real one costs.
func decoyHash() password.Hash {
	decoyOnce.Do(func() { decoy = password.New("mailgate: no account has this password") })
	return decoy
}

// ShortForSingleFactor reports whether pw has fewer characters than a
// password that is the only factor needs (password.MinLengthSingleFactor),
// counted as password.Policy counts them: runes after NFKC.
func ShortForSingleFactor(pw string) bool {
	return utf8.RuneCountInString(norm.NFKC.String(pw)) < password.MinLengthSingleFactor
}
