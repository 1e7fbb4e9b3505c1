package caddymodule

import (
	"errors"
	"fmt"
	"strings"

	"github.com/mailgate/caddy-mailgate/internal/directory"
	"github.com/mailgate/caddy-mailgate/internal/flow"
	"github.com/mailgate/caddy-mailgate/internal/ticket"
	"github.com/mailgate/caddy-mailgate/internal/web"
)

// provisionAccount builds what the person's own pages need: the profile,
// the no-access page and the operator dashboard (docs/pages.md). A
// password can be changed on the profile only where the site signs people
// in with passwords (pw is not nil).
func (m *Mailgate) provisionAccount(users *directory.Directory, store ticket.Store, pw *passwords) *web.Account {
	m.sessionLog = users
	a := &web.Account{
		Users:        users,
		Sessions:     users,
		EndSessions:  m.sessions.RevokeUser,
		SessionEnded: m.sessions.UserTokenRevoked,
		Admins:       m.isAdmin,
		Admin:        m.userAdmin(users, store),
		Links:        m.emailLinks,
	}
	// The profile checks the current password with the very sign-in the
	// API and the login page use, so that its limits, lockout and hashing
	// budget are shared.
	if pw != nil {
		a.Passwords = &flow.PasswordChange{
			SignIn: pw.signIn, Users: users, EndSessions: m.sessions.RevokeUser, Now: now, Observer: m.observer,
		}
	}
	return a
}

// isAdmin reports whether u is named in admins, by id or by address.
func (m *Mailgate) isAdmin(u directory.User) bool {
	for _, a := range m.Admins {
		if a == u.ID {
			return true
		}
		if strings.Contains(a, "@") {
			if email, err := directory.NormalizeEmail(a); err == nil && email == u.Email {
				return true
			}
		}
	}
	return false
}

// checkAdmins accepts user ids and addresses that parse.
func checkAdmins(admins []string) error {
	for _, a := range admins {
		if strings.Contains(a, "@") {
			if _, err := directory.NormalizeEmail(a); err != nil {
				return fmt.Errorf("admins: %q is not an email address: %v", a, err)
			}
		} else if a == "" {
			return errors.New("admins: an empty entry")
		}
	}
	return nil
}
