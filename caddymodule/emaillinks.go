package caddymodule

import (
	"context"
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/mailgate/caddy-mailgate/internal/directory"
	"github.com/mailgate/caddy-mailgate/internal/flow"
	"github.com/mailgate/caddy-mailgate/internal/ticket"
)

// EmailLinksConfig sets the invitation and password-reset links (seed 001)
// that apps ask for through `{prefix}/api/v1/users/{userId}/email-link` and
// the operator with `caddy mailgate users invite|reset`.
type EmailLinksConfig struct {
	// InvitationTTL is how long an invitation link works, 1h to 30 days.
	// Default: 7 days (`7d`).
	InvitationTTL caddy.Duration `json:"invitation_ttl,omitempty"`

	// PasswordResetTTL is how long a password-reset link works, 5m to 24h.
	// Default: 1h.
	PasswordResetTTL caddy.Duration `json:"password_reset_ttl,omitempty"`
}

const (
	defaultInvitationTTL    = 7 * 24 * time.Hour
	defaultPasswordResetTTL = time.Hour
)

// applyDefaults fills the lifetimes left out and checks them.
func (c *EmailLinksConfig) applyDefaults() error {
	if c.InvitationTTL == 0 {
		c.InvitationTTL = caddy.Duration(defaultInvitationTTL)
	}
	if c.PasswordResetTTL == 0 {
		c.PasswordResetTTL = caddy.Duration(defaultPasswordResetTTL)
	}
	return c.check()
}

// check keeps the lifetimes where they make sense and where the store can
// hold them (31 days at most): an invitation waits for a person to read
// their mail, a reset link guards an account that already exists.
func (c EmailLinksConfig) check() error {
	if d := time.Duration(c.InvitationTTL); d != 0 && (d < time.Hour || d > 30*24*time.Hour) {
		return fmt.Errorf("mailgate: email_links invitation_ttl %s: must be between 1h and 720h (30 days)", d)
	}
	if d := time.Duration(c.PasswordResetTTL); d != 0 && (d < 5*time.Minute || d > 24*time.Hour) {
		return fmt.Errorf("mailgate: email_links password_reset_ttl %s: must be between 5m and 24h", d)
	}
	return nil
}

func (m *Mailgate) parseEmailLinks(d *caddyfile.Dispenser) error {
	if d.NextArg() {
		return d.ArgErr()
	}
	c := &EmailLinksConfig{}
	m.EmailLinks = c
	err := eachSubdirective(d, "email_links", func(name string) error {
		switch name {
		case "invitation_ttl":
			return durationArg(d, &c.InvitationTTL)
		case "password_reset_ttl":
			return durationArg(d, &c.PasswordResetTTL)
		}
		return d.Errf("email_links: unknown subdirective %q", name)
	})
	return checked(d, err, c.check)
}

// newEmailLinks builds the email-link flow. Its mails go out at once, not
// through the queue, since the API's answer (and the command's) promises
// the handover. The default pages' URLs come from urls, built from
// base_url. endSessions is nil where no session may be ended (the command
// line, which only makes links). allow is the site's allow rules, which
// the default pages' links must fit.
func (m *Mailgate) newEmailLinks(store ticket.Store, users *directory.Directory, mailer flow.Sender, allow flow.Allowlist, endSessions func(ctx context.Context, userID string, before time.Time) error) *flow.EmailLinks {
	urls := m.urls()
	return &flow.EmailLinks{
		Store:         store,
		Users:         users,
		Mailer:        mailer,
		PageURL:       urls.EmailLinkURL,
		RevokeURL:     urls.RevokeURL,
		InvitationTTL: time.Duration(m.EmailLinks.InvitationTTL),
		ResetTTL:      time.Duration(m.EmailLinks.PasswordResetTTL),
		SiteName:      m.SiteName,
		Admits:        allow.Allows,
		EndSessions:   endSessions,
		Now:           now,
		Observer:      m.observer,
	}
}
