package caddymodule

import (
	"fmt"
	"strings"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	loc "github.com/mailgate/caddy-mailgate/internal/locale"
)

// LocaleConfig is the language of the site's pages and of the mails its
// login form sends. The API's mails follow the locale each call names
// (seed 000: en-GB when it names none), and a mailed link's page follows
// its mail.
type LocaleConfig struct {
	// Default is the locale of a visitor whose Accept-Language names none
	// that mailgate writes, and of every visitor when Negotiate is false:
	// en-GB, nl-BE or nl-NL. Default: en-GB.
	Default string `json:"default,omitempty"`

	// Negotiate picks each visitor's locale from their Accept-Language
	// header, honouring q-values: nl-BE is nl-BE, nl is nl-NL, en and en-US
	// are en-GB. False: every visitor gets Default. Default: true.
	Negotiate *bool `json:"negotiate,omitempty"`
}

// check canonicalises Default (nl-be is nl-BE) or says what is supported.
func (c *LocaleConfig) check() error {
	if c.Default == "" {
		c.Default = loc.Default
	}
	l, err := loc.Parse(c.Default)
	if err != nil {
		return fmt.Errorf("mailgate: locale %q: use one of %s", c.Default, strings.Join(loc.All(), ", "))
	}
	c.Default = l
	return nil
}

// negotiate reports whether visitors' Accept-Language picks their locale.
func (c *LocaleConfig) negotiate() bool { return c.Negotiate == nil || *c.Negotiate }

// parseLocale reads `locale <tag> [{ negotiate on|off }]`.
func (m *Mailgate) parseLocale(d *caddyfile.Dispenser) error {
	c := &LocaleConfig{}
	m.Locale = c
	if err := oneArgOpenBlock(d, &c.Default); err != nil {
		return err
	}
	err := eachSubdirective(d, "locale", func(name string) error {
		if name != "negotiate" {
			return d.Errf("locale: unknown subdirective %q", name)
		}
		var v string
		if err := oneArg(d, &v); err != nil {
			return err
		}
		switch v {
		case "on", "off":
			on := v == "on"
			c.Negotiate = &on
			return nil
		}
		return d.Errf("locale negotiate %q: use on or off", v)
	})
	// On a copy: the adapted config keeps the tag as written.
	return checked(d, err, func() error {
		cc := *c
		return cc.check()
	})
}
