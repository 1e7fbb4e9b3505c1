// Package admin holds the operations on users that the users API, the
// command line and a future operator dashboard share, so that taking a
// person's access away is one piece of code whichever door it comes
// through. It knows neither HTTP nor Caddy.
package admin

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/mailgate/caddy-mailgate/internal/directory"
	"github.com/mailgate/caddy-mailgate/internal/flow"
	"github.com/mailgate/caddy-mailgate/internal/locale"
	"github.com/mailgate/caddy-mailgate/internal/ticket"
)

// MaxName bounds a display name: it is sent to the apps in a header.
const MaxName = 200

// InvalidError is a field of a new user or a change that is not accepted.
type InvalidError struct {
	Field  string
	Reason string
}

func (e *InvalidError) Error() string { return e.Field + ": " + e.Reason }

// ErrIncomplete is a change that was stored but whose consequences could
// not all be carried out (a session revocation the store refused): the user
// is disabled or deleted as asked, but the same call must be made again to
// make sure every session ends. It wraps the cause.
var ErrIncomplete = errors.New("admin: the change is stored, but not every session, link or code could be ended; repeat it")

// Directory is where users are kept (directory.Directory).
type Directory interface {
	Create(ctx context.Context, n directory.NewUser) (directory.User, error)
	ByID(ctx context.Context, id string) (directory.User, error)
	ByEmail(ctx context.Context, email string) (directory.User, error)
	Update(ctx context.Context, id string, change func(*directory.User) error) (directory.User, error)
	Delete(ctx context.Context, id string) error
	List(ctx context.Context) ([]directory.User, error)
}

// Sessions ends every session and user JWT of a user issued before a time,
// on every instance that shares the store (session.Manager).
type Sessions interface {
	RevokeUser(ctx context.Context, userID string, before time.Time) error
}

// EmailLinks withdraws a user's live invitation or reset link
// (flow.EmailLinks).
type EmailLinks interface {
	Withdraw(ctx context.Context, userID string) error
}

// Users manages users: the operations behind the users API and the
// `caddy mailgate users` commands.
type Users struct {
	Directory Directory
	Sessions  Sessions
	// Pending is the realm's store, where flow.EndPending records that an
	// address's links and codes stop working.
	Pending ticket.Revocations
	// EmailLinks, if set, has a disabled user's live invitation or reset
	// link withdrawn, so that one re-enabled later can be sent a new one.
	EmailLinks EmailLinks
	Now        func() time.Time
	// Observer is told of every change of a user's standing. Nil: nobody
	// is told.
	Observer flow.Observer
}

// Change is a PATCH of a user: the fields that are not nil are set.
type Change struct {
	Name *string
	// Status is directory.StatusActive or directory.StatusDisabled;
	// invited is the state of a user who has not signed up, which nobody
	// can set.
	Status *string
	Locale *string
}

// Create adds an invited user. A name or locale that is not accepted is an
// *InvalidError; see directory.Directory.Create for the others.
func (a *Users) Create(ctx context.Context, n directory.NewUser, by string) (directory.User, error) {
	if err := checkName(n.Name); err != nil {
		return directory.User{}, err
	}
	l, err := checkLocale(n.Locale)
	if err != nil {
		return directory.User{}, err
	}
	n.Locale = l
	u, err := a.Directory.Create(ctx, n)
	if err != nil {
		return directory.User{}, err
	}
	flow.ObservedIn(ctx, a.Observer).UserChanged(u.ID, flow.UserCreated, by)
	return u, nil
}

// Get returns the user with id.
func (a *Users) Get(ctx context.Context, id string) (directory.User, error) {
	return a.Directory.ByID(ctx, id)
}

// Find returns the user with the address email, in any spelling that
// normalizes to it; one that does not parse is directory.ErrInvalidEmail.
func (a *Users) Find(ctx context.Context, email string) (directory.User, error) {
	email, err := directory.NormalizeEmail(email)
	if err != nil {
		return directory.User{}, err
	}
	return a.Directory.ByEmail(ctx, email)
}

// Lookup finds a user by id, or by address when ref holds an '@': what an
// operator types on the command line.
func (a *Users) Lookup(ctx context.Context, ref string) (directory.User, error) {
	if strings.Contains(ref, "@") {
		return a.Find(ctx, ref)
	}
	return a.Get(ctx, ref)
}

// List returns every user, by address.
func (a *Users) List(ctx context.Context) ([]directory.User, error) {
	return a.Directory.List(ctx)
}

// Update applies c to the user with id. Enabling a user who never signed
// up makes them invited again, not active: only a sign-in proves an
// address. Disabling ends every session, user JWT, link and code of the
// user, even when the user was disabled already, so that repeating a
// disable whose revocation failed (ErrIncomplete) completes it.
func (a *Users) Update(ctx context.Context, id string, c Change, by string) (directory.User, error) {
	if c.Name != nil {
		if err := checkName(*c.Name); err != nil {
			return directory.User{}, err
		}
	}
	if c.Locale != nil {
		l, err := checkLocale(*c.Locale)
		if err != nil {
			return directory.User{}, err
		}
		c.Locale = &l
	}
	if c.Status != nil && *c.Status != directory.StatusActive && *c.Status != directory.StatusDisabled {
		return directory.User{}, &InvalidError{Field: "status", Reason: "must be active or disabled; a user is invited until they sign up"}
	}
	var was string
	u, err := a.Directory.Update(ctx, id, func(u *directory.User) error {
		was = u.Status
		if c.Name != nil {
			u.Name = *c.Name
		}
		if c.Locale != nil {
			u.Locale = *c.Locale
		}
		switch {
		case c.Status == nil:
		case *c.Status == directory.StatusDisabled:
			u.Status = directory.StatusDisabled
		case u.Status == directory.StatusDisabled && u.SignedUp.IsZero():
			u.Status = directory.StatusInvited
		case u.Status == directory.StatusDisabled:
			u.Status = directory.StatusActive
		}
		return nil
	})
	if err != nil {
		return directory.User{}, err
	}
	// The change is stored: it is reported even if ending the sessions
	// fails below, which a repeat completes without a second report.
	switch {
	case u.Status == directory.StatusDisabled && was != directory.StatusDisabled:
		flow.ObservedIn(ctx, a.Observer).UserChanged(u.ID, flow.UserDisabled, by)
	case u.Status != directory.StatusDisabled && was == directory.StatusDisabled:
		flow.ObservedIn(ctx, a.Observer).UserChanged(u.ID, flow.UserEnabled, by)
	}
	if u.Status == directory.StatusDisabled {
		if err := a.end(ctx, u); err != nil {
			return u, err
		}
	}
	return u, nil
}

// SetStatus is Update of the status alone, for the command line's enable
// and disable.
func (a *Users) SetStatus(ctx context.Context, id, status, by string) (directory.User, error) {
	return a.Update(ctx, id, Change{Status: &status}, by)
}

// Delete removes the user with id, after disabling them (which ends every
// session, token, link and code of theirs), so that no sign-in can slip in
// between and nothing of theirs outlives the record. The address may sign
// up again, as a new user with a new id; a link mailed before the deletion
// does not bring the old account back.
func (a *Users) Delete(ctx context.Context, id, by string) error {
	if _, err := a.SetStatus(ctx, id, directory.StatusDisabled, by); err != nil {
		return err
	}
	if err := a.Directory.Delete(ctx, id); err != nil {
		return err
	}
	flow.ObservedIn(ctx, a.Observer).UserChanged(id, flow.UserDeleted, by)
	return nil
}

// RevokeSessions ends every session and user JWT of the user with id,
// without disabling them: they may sign in again at once. The cut-off is
// now, as with_logout's is (see session.Manager.RevokeUser for the second
// it leaves).
func (a *Users) RevokeSessions(ctx context.Context, id string) (directory.User, error) {
	u, err := a.Directory.ByID(ctx, id)
	if err != nil {
		return directory.User{}, err
	}
	if err := a.Sessions.RevokeUser(ctx, u.ID, a.Now()); err != nil {
		return u, fmt.Errorf("admin: ending the sessions: %w", err)
	}
	flow.ObservedIn(ctx, a.Observer).SignedOut(u.ID, true)
	return u, nil
}

// end ends every session, user JWT, link and code of a disabled user. The
// sessions' cut-off is the next second: tokens carry their issue time in
// whole seconds, and one issued in this second, by a sign-in that read the
// user just before the disable, must end too. Nobody loses a session they
// should keep: a disabled user gets none.
func (a *Users) end(ctx context.Context, u directory.User) error {
	now := a.Now()
	if err := a.Sessions.RevokeUser(ctx, u.ID, now.Add(time.Second)); err != nil {
		return fmt.Errorf("%w: %w", ErrIncomplete, err)
	}
	if err := flow.EndPending(ctx, a.Pending, u.Email, now); err != nil {
		return fmt.Errorf("%w: %w", ErrIncomplete, err)
	}
	if a.EmailLinks != nil {
		if err := a.EmailLinks.Withdraw(ctx, u.ID); err != nil && !errors.Is(err, flow.ErrNoEmailLink) {
			return fmt.Errorf("%w: %w", ErrIncomplete, err)
		}
	}
	return nil
}

// checkName accepts a display name of printable characters: it reaches
// the apps as a header value, where a control character could end the
// header.
func checkName(name string) error {
	if len(name) > MaxName {
		return &InvalidError{Field: "name", Reason: fmt.Sprintf("at most %d bytes", MaxName)}
	}
	if !utf8.ValidString(name) || strings.IndexFunc(name, func(r rune) bool { return !unicode.IsPrint(r) && r != ' ' }) >= 0 {
		return &InvalidError{Field: "name", Reason: "printable UTF-8 text only, no control characters"}
	}
	return nil
}

// checkLocale returns the canonical spelling of a supported locale; empty
// stays empty, the site's locale.
func checkLocale(l string) (string, error) {
	if l == "" {
		return "", nil
	}
	canon, err := locale.Parse(l)
	if err != nil {
		return "", &InvalidError{Field: "locale", Reason: "one of " + strings.Join(locale.All(), ", ")}
	}
	return canon, nil
}

// ErrNoPassword is an account without a password, which has none to
// expire.
var ErrNoPassword = errors.New("admin: the user has no password")

// ExpirePassword makes the user with id replace their password at the
// next password sign-in (seed 004's expired_password step), before any
// session starts; sessions that run go on. Storing a new password ends
// the order.
func (a *Users) ExpirePassword(ctx context.Context, id string) (directory.User, error) {
	return a.Directory.Update(ctx, id, func(u *directory.User) error {
		if u.PasswordHash == "" {
			return ErrNoPassword
		}
		u.PasswordExpired = true
		return nil
	})
}
