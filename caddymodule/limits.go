package caddymodule

import (
	"fmt"
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/mailgate/caddy-mailgate/internal/flow"
	"github.com/mailgate/caddy-mailgate/internal/limit"
)

// LimitsConfig bounds how often mail may be asked for. Each limit is counted
// in the ticket store, so with a shared store (Redis) it holds for the whole
// cluster. Omitted limits keep their defaults, which stop mail-bombing and
// do not get in the way of people.
type LimitsConfig struct {
	// MailsPerAddress bounds sign-in mails per recipient address, from the
	// login form and the API together. Over it, the form shows the usual
	// "check your inbox" page and sends nothing (the page must not tell who
	// has an account); the API answers 429. Default: 5 per 15m.
	MailsPerAddress *RateLimit `json:"mails_per_address,omitempty"`

	// RequestsPerIP bounds link requests through the login form per client
	// IP (Caddy's resolved client IP, so trusted_proxies decides; IPv6 is
	// counted per /64). Over it, the page says to try again in N minutes,
	// with status 429. Default: 20 per 15m.
	RequestsPerIP *RateLimit `json:"requests_per_ip,omitempty"`

	// RequestsPerClient bounds the mail-sending API calls (login-email,
	// magic-link) per API client. Over it: 429 with Retry-After in the
	// endpoint's error shape. Default: 300 per 15m.
	RequestsPerClient *RateLimit `json:"requests_per_client,omitempty"`

	// FailuresPerIP bounds failed secrets per client IP: sign-in links,
	// codes and set-password steps that are wrong or used up, and failed
	// client authentications and authorization codes at the token
	// endpoint. Each attempt is counted before its secret is looked at and
	// given back when it was not a failure, so guesses sent at once get no
	// more tries than guesses sent one by one. Over it, the IP is refused
	// (the page says to wait; the APIs answer 429). IPv6 is counted per /64,
	// and per /48 with 16 times the max. Default: 30 per 15m.
	FailuresPerIP *RateLimit `json:"failures_per_ip,omitempty"`

	// WrongCodesPerAddress bounds wrong mailed codes per address (and
	// project), across codes. Each code allows three tries on its own and
	// then stops working, so a person who mistyped asks for a new one; this
	// is the softer bound above that, against someone who knows an address
	// and keeps asking for codes to guess at. While an address is over it,
	// no code is mailed to it or accepted for it, and the person is offered
	// a sign-in link instead (the API answers 429). Default: 10 per 24h,
	// which leaves a guesser a chance of 10 in a million per day.
	WrongCodesPerAddress *RateLimit `json:"wrong_codes_per_address,omitempty"`

	// FailedSignInsPerAccount locks an account after this many wrong
	// passwords (seed 004's sign-in), until the window that began with the
	// first of them ends; an unknown username is counted the same way, so
	// the lock tells nobody who has an account. Default: 5 per 15m.
	FailedSignInsPerAccount *RateLimit `json:"failed_sign_ins_per_account,omitempty"`
}

// RateLimit allows Max requests per Window. The window is fixed: it starts
// with the first request and does not slide.
type RateLimit struct {
	// Max is the number of requests allowed per window, 1 to 1000000.
	Max int64 `json:"max,omitempty"`
	// Window is the length of a window, 1s to 24h.
	Window caddy.Duration `json:"window,omitempty"`
}

// Default limits.
var (
	defaultMailsPerAddress   = RateLimit{Max: 5, Window: caddy.Duration(15 * time.Minute)}
	defaultRequestsPerIP     = RateLimit{Max: 20, Window: caddy.Duration(15 * time.Minute)}
	defaultRequestsPerClient = RateLimit{Max: 300, Window: caddy.Duration(15 * time.Minute)}
	defaultFailuresPerIP     = RateLimit{Max: 30, Window: caddy.Duration(15 * time.Minute)}
	defaultWrongCodes        = RateLimit{Max: 10, Window: caddy.Duration(24 * time.Hour)}
	defaultFailedSignIns     = RateLimit{Max: 5, Window: caddy.Duration(15 * time.Minute)}
)

// check refuses a limit that would limit nothing or everything.
func (r RateLimit) check(name string) error {
	if r.Max < 1 || r.Max > 1_000_000 {
		return fmt.Errorf("mailgate: limits %s: max %d must be between 1 and 1000000", name, r.Max)
	}
	if w := time.Duration(r.Window); w < time.Second || w > 24*time.Hour {
		return fmt.Errorf("mailgate: limits %s: window %s must be between 1s and 24h", name, w)
	}
	return nil
}

// rule is the limit as the flows take it, the default when not set.
func rule(r *RateLimit, def RateLimit) limit.Rule {
	if r == nil {
		r = &def
	}
	return limit.Rule{Max: r.Max, Window: time.Duration(r.Window)}
}

// each calls f for every limit that is set, by its config name.
func (c *LimitsConfig) each(f func(name string, r *RateLimit) error) error {
	if c == nil {
		return nil
	}
	for _, l := range []struct {
		name string
		r    *RateLimit
	}{
		{"mails_per_address", c.MailsPerAddress},
		{"requests_per_ip", c.RequestsPerIP},
		{"requests_per_client", c.RequestsPerClient},
		{"failures_per_ip", c.FailuresPerIP},
		{"wrong_codes_per_address", c.WrongCodesPerAddress},
		{"failed_sign_ins_per_account", c.FailedSignInsPerAccount},
	} {
		if l.r != nil {
			if err := f(l.name, l.r); err != nil {
				return err
			}
		}
	}
	return nil
}

// check checks every limit that is set.
func (c *LimitsConfig) check() error {
	return c.each(func(name string, r *RateLimit) error { return r.check(name) })
}

// linkLimits are the limits of the mailed-link flow.
func (c *LimitsConfig) linkLimits() flow.LinkLimits {
	if c == nil {
		c = &LimitsConfig{}
	}
	return flow.LinkLimits{
		PerAddress: rule(c.MailsPerAddress, defaultMailsPerAddress),
		PerIP:      rule(c.RequestsPerIP, defaultRequestsPerIP),
		PerClient:  rule(c.RequestsPerClient, defaultRequestsPerClient),
	}
}

// codeLimits are the limits of the mailed-code flow: the link flow's, per
// IP and per address, and wrong codes per address.
func (c *LimitsConfig) codeLimits() flow.CodeLimits {
	links := c.linkLimits()
	if c == nil {
		c = &LimitsConfig{}
	}
	return flow.CodeLimits{
		PerIP:           links.PerIP,
		PerAddress:      links.PerAddress,
		WrongPerAddress: rule(c.WrongCodesPerAddress, defaultWrongCodes),
	}
}

// failures is the limit on failed secrets per IP, counted in store.
func (c *LimitsConfig) failures(store limit.FailureCounter) limit.Failures {
	if c == nil {
		c = &LimitsConfig{}
	}
	return limit.Failures{Rule: rule(c.FailuresPerIP, defaultFailuresPerIP), Store: store, Name: "failures_per_ip"}
}

// signInLimits are the limits of the password sign-in: wrong passwords per
// account and, as for every secret, per IP.
func (c *LimitsConfig) signInLimits(store limit.FailureCounter) flow.SignInLimits {
	perIP := c.failures(store)
	if c == nil {
		c = &LimitsConfig{}
	}
	return flow.SignInLimits{
		PerAccount: limit.Failures{Rule: rule(c.FailedSignInsPerAccount, defaultFailedSignIns), Store: store, Name: flow.RuleFailedSignIns},
		PerIP:      perIP,
	}
}

// parseLimits reads
//
//	limits {
//	    mails_per_address   <max> <window>
//	    requests_per_ip     <max> <window>
//	    requests_per_client <max> <window>
//	    failures_per_ip     <max> <window>
//	    wrong_codes_per_address <max> <window>
//	    failed_sign_ins_per_account <max> <window>
//	}
func (m *Mailgate) parseLimits(d *caddyfile.Dispenser) error {
	if d.NextArg() {
		return d.ArgErr()
	}
	c := &LimitsConfig{}
	m.Limits = c
	err := eachSubdirective(d, "limits", func(name string) error {
		var dst **RateLimit
		switch name {
		case "mails_per_address":
			dst = &c.MailsPerAddress
		case "requests_per_ip":
			dst = &c.RequestsPerIP
		case "requests_per_client":
			dst = &c.RequestsPerClient
		case "failures_per_ip":
			dst = &c.FailuresPerIP
		case "wrong_codes_per_address":
			dst = &c.WrongCodesPerAddress
		case "failed_sign_ins_per_account":
			dst = &c.FailedSignInsPerAccount
		default:
			return d.Errf("limits: unknown subdirective %q (known: mails_per_address, requests_per_ip, requests_per_client, failures_per_ip, wrong_codes_per_address, failed_sign_ins_per_account)", name)
		}
		args := d.RemainingArgs()
		if len(args) != 2 {
			return d.Errf("limits %s: want <max> <window>, such as 5 15m", name)
		}
		n, err := strconv.ParseInt(args[0], 10, 64)
		if err != nil {
			return d.Errf("limits %s: max %q is not a whole number", name, args[0])
		}
		w, err := caddy.ParseDuration(args[1])
		if err != nil {
			return d.Errf("limits %s: window %q: %v", name, args[1], err)
		}
		*dst = &RateLimit{Max: n, Window: caddy.Duration(w)}
		return checked(d, nil, func() error { return (*dst).check(name) })
	})
	return err
}
