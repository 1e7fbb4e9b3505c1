package caddymodule

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/mailgate/caddy-mailgate/internal/directory"
	"github.com/mailgate/caddy-mailgate/internal/flow"
	"github.com/mailgate/caddy-mailgate/internal/locale"
	"github.com/mailgate/caddy-mailgate/internal/mail"
)

// addLinkCommands adds `invite` and `reset` to the `caddy mailgate users`
// command: they mail a user an invitation or a password-reset link (seed
// 001), as an app does through the API, with the config's SMTP settings.
func addLinkCommands(users *cobra.Command) {
	for _, c := range []struct {
		name, short string
		typ         flow.EmailLinkType
	}{
		{"invite", "Mails an invitation link to a user who has not signed up yet", flow.Invitation},
		{"reset", "Mails a password-reset link to a user who has signed up", flow.PasswordReset},
	} {
		typ := c.typ
		cmd := &cobra.Command{
			Use:   c.name + " <email|id> [--config <path>] [--adapter <name>] [--realm <name>] [--locale <locale>]",
			Short: c.short,
			Long: c.short + `, with the SMTP settings of the config (the Caddyfile in
the current folder unless --config names another). The link is stored in the
realm's store, where the running Caddy reads it: that needs store redis, which
the command and the server share. A realm with the memory store keeps its
links inside the Caddy process, out of this command's reach; send those
links through the API instead (POST {prefix}/api/v1/users/{id}/email-link).`,
			Args: cobra.ExactArgs(1),
			RunE: caddycmd.WrapCommandFuncForCobra(func(fl caddycmd.Flags) (int, error) { return cmdEmailLink(fl, typ) }),
		}
		cmd.Flags().StringP("config", "c", "", "Configuration file")
		cmd.Flags().StringP("adapter", "a", "", "Name of the config adapter")
		cmd.Flags().String("realm", "", "Realm of the user, when the config has several (default: the config's only realm)")
		cmd.Flags().String("locale", "", "Language of the mail: en-GB, nl-BE or nl-NL (default: the user's)")
		users.AddCommand(cmd)
	}
}

// cmdEmailLink makes a link of type typ for the user the first argument
// names, by address or id, and mails it.
func cmdEmailLink(fl caddycmd.Flags, typ flow.EmailLinkType) (int, error) {
	who := fl.Arg(0)
	loc := fl.String("locale")
	if loc != "" {
		l, err := locale.Parse(loc)
		if err != nil {
			return caddy.ExitCodeFailedStartup, fmt.Errorf("--locale %q: use one of %s", loc, strings.Join(locale.All(), ", "))
		}
		loc = l
	}
	cfgJSON, handlers, err := loadMailgates(fl)
	if err != nil {
		return caddy.ExitCodeFailedStartup, err
	}
	m, err := realmHandler(handlers, fl.String("realm"))
	if err != nil {
		return caddy.ExitCodeFailedStartup, err
	}
	if err := m.applyDefaults(); err != nil {
		return caddy.ExitCodeFailedStartup, err
	}
	if m.Store.Type != "redis" {
		return caddy.ExitCodeFailedStartup, fmt.Errorf("realm %s uses the memory store, which lives inside the running Caddy: "+
			"a link made here would not work there. Send the link through the API (POST %s/api/v1/users/{id}/email-link), "+
			"or configure store redis, which the command and the server share", m.Realm, m.Prefix)
	}
	base, err := parseBaseURL(m.BaseURL)
	if err != nil {
		return caddy.ExitCodeFailedStartup, err
	}
	m.origin = base.Scheme + "://" + base.Host
	m.SiteName = cmp.Or(m.SiteName, base.Hostname())
	mailer, done, err := m.commandMailer(base)
	if err != nil {
		return caddy.ExitCodeFailedStartup, err
	}
	defer done()

	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	st, err := configStorage(ctx, cfgJSON)
	if err != nil {
		return caddy.ExitCodeFailedStartup, err
	}
	store, err := m.Store.newStore(m.Realm, zap.NewNop())
	if err != nil {
		return caddy.ExitCodeFailedStartup, err
	}
	defer store.Close()
	users := directory.New(st, "mailgate/"+m.Realm, time.Now)
	u, err := users.ByID(ctx, who)
	if errors.Is(err, directory.ErrNotFound) && strings.Contains(who, "@") {
		u, err = users.ByEmail(ctx, who)
	}
	if errors.Is(err, directory.ErrNotFound) {
		return caddy.ExitCodeFailedStartup, fmt.Errorf("realm %s has no user %s", m.Realm, who)
	}
	if err != nil {
		return caddy.ExitCodeFailedStartup, err
	}
	allow, err := m.allowlist()
	if err != nil {
		return caddy.ExitCodeFailedStartup, err
	}
	links := m.newEmailLinks(store, users, mailer, allow, nil)
	err = links.Create(ctx, flow.EmailLinkRequest{UserID: u.ID, Type: typ, Locale: loc})
	switch {
	case errors.Is(err, flow.ErrEmailLinkExists):
		return caddy.ExitCodeFailedStartup, fmt.Errorf("%s already has a live email link; it must be used, expire or be withdrawn (DELETE %s/api/v1/users/%s/email-link) first", u.Email, m.Prefix, u.ID)
	case errors.Is(err, flow.ErrSignedUp):
		return caddy.ExitCodeFailedStartup, fmt.Errorf("%s has completed the signup: send a password reset (users reset) instead", u.Email)
	case errors.Is(err, flow.ErrNotSignedUp):
		return caddy.ExitCodeFailedStartup, fmt.Errorf("%s has not completed the signup: send an invitation (users invite) instead", u.Email)
	case errors.Is(err, flow.ErrUserDisabled):
		return caddy.ExitCodeFailedStartup, fmt.Errorf("%s is disabled", u.Email)
	case errors.Is(err, flow.ErrNotAdmitted):
		return caddy.ExitCodeFailedStartup, fmt.Errorf("%s is not admitted by the site's allow rules: a link to mailgate's pages would sign them in to a site that turns them away", u.Email)
	case err != nil:
		return caddy.ExitCodeFailedStartup, err
	}
	fmt.Printf("%s: %s link mailed to %s (user %s); it works once, for %s\n",
		m.SiteName, typ, u.Email, u.ID, links.TTL(typ))
	return caddy.ExitCodeSuccess, nil
}

// realmHandler is the mailgate handler of realm, or of the config's only
// realm when realm is empty.
func realmHandler(handlers []*Mailgate, realm string) (*Mailgate, error) {
	byRealm := map[string]*Mailgate{}
	for _, m := range handlers {
		r := cmp.Or(m.Realm, defaultRealm)
		if _, seen := byRealm[r]; !seen {
			byRealm[r] = m
		}
	}
	if realm == "" {
		if len(byRealm) > 1 {
			return nil, errors.New("the config has several realms: name one with --realm")
		}
		return handlers[0], nil
	}
	m, ok := byRealm[realm]
	if !ok {
		return nil, fmt.Errorf("the config has no mailgate handler of realm %s", realm)
	}
	return m, nil
}

// commandMailer is the mailer of a command: SMTP as configured, or the
// outbox. done says goodbye to the mail server.
func (m *Mailgate) commandMailer(base *url.URL) (*mail.Mailer, func(), error) {
	zone, err := timeZone(m.TimeZone)
	if err != nil {
		return nil, nil, err
	}
	if m.SMTP == nil {
		from, err := mail.ParseFrom(fmt.Sprintf("%q <mailgate@%s>", m.SiteName, base.Hostname()))
		if err != nil {
			return nil, nil, err
		}
		fmt.Printf("mails go to the development outbox %s\n", m.Outbox)
		return &mail.Mailer{From: from, Transport: &mail.Outbox{Dir: m.Outbox, Now: now}, Now: now, Zone: zone}, func() {}, nil
	}
	mm, err := m.SMTP.mailer(base)
	if err != nil {
		return nil, nil, err
	}
	mm.Zone = zone
	return mm, func() {
		if s, ok := mm.Transport.(*mail.SMTP); ok {
			_ = s.Close()
		}
	}, nil
}
