package caddymodule

import (
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/mailgate/caddy-mailgate/internal/clientapi"
	"github.com/mailgate/caddy-mailgate/internal/directory"
	"github.com/mailgate/caddy-mailgate/internal/flow"
	"github.com/mailgate/caddy-mailgate/internal/password"
	"github.com/mailgate/caddy-mailgate/internal/ticket"
	"github.com/mailgate/caddy-mailgate/internal/web"
)

// checkPasswordKeepSignedIn accepts the offers of "keep me signed in".
func checkPasswordKeepSignedIn(v string) error {
	switch v {
	case "", web.KeepCheckbox, web.KeepAsk, web.KeepOff:
		return nil
	}
	return fmt.Errorf("mailgate: password_keep_signed_in %q: use checkbox, ask or off", v)
}

// parsePasswordLogin reads `password_login on|off`.
func (m *Mailgate) parsePasswordLogin(d *caddyfile.Dispenser) error {
	var v string
	if err := oneArg(d, &v); err != nil {
		return err
	}
	switch v {
	case "on", "off":
		m.PasswordLogin = v == "on"
		return nil
	}
	return d.Errf("password_login %q: use on or off", v)
}

// provisionPasswordLogin builds the login page's password sign-in, or nil
// when password_login is off. It runs the very sign-in of seed 004 when
// one is configured (signIn, whose hashing bound and steps it shares), and
// otherwise one built the same way for the pages alone.
func (m *Mailgate) provisionPasswordLogin(signIn *clientapi.SignIn, store ticket.Store, users *directory.Directory, allow flow.Allowlist) *web.PasswordLogin {
	if !m.PasswordLogin {
		return nil
	}
	keep := m.PasswordKeepSignedIn
	if keep == "" {
		keep = web.KeepCheckbox
	}
	if signIn != nil {
		return &web.PasswordLogin{Credentials: signIn.Credentials, Steps: signIn.Steps, Sessions: m.sessions, Keep: keep}
	}
	if m.PasswordHashingMemory == 0 {
		m.PasswordHashingMemory = defaultHashingMemory
	}
	hashing := password.NewHashing(m.PasswordHashingMemory, hashingWait)
	return &web.PasswordLogin{
		Credentials: &flow.SignIn{
			Users:     users,
			Allowlist: allow,
			Hashing:   hashing,
			Limits:    m.Limits.signInLimits(store),
		},
		Steps: &flow.SignInSteps{
			Store:          store,
			Users:          users,
			Hashing:        hashing,
			PasswordMaxAge: time.Duration(m.PasswordMaxAge),
			Failures:       m.Limits.failures(store),
			EndSessions:    m.sessions.RevokeUser,
			Now:            now,
			Observer:       m.observer,
		},
		Sessions: m.sessions,
		Keep:     keep,
	}
}
