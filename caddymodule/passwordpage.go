package caddymodule

import (
	"fmt"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

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
// when password_login is off. It runs the password engine seed 004's
// sign-in runs (pw), so the two share a hashing bound, a lockout and their
// steps.
func (m *Mailgate) provisionPasswordLogin(pw *passwords) *web.PasswordLogin {
	if !m.PasswordLogin {
		return nil
	}
	keep := m.PasswordKeepSignedIn
	if keep == "" {
		keep = web.KeepCheckbox
	}
	return &web.PasswordLogin{Credentials: pw.signIn, Steps: pw.steps, Sessions: m.sessions, Keep: keep}
}
