package caddymodule

import (
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/dustin/go-humanize"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("mailgate", parseCaddyfile)
	// After basic_auth, so it guards handle, route, respond and
	// reverse_proxy blocks alike.
	httpcaddyfile.RegisterDirectiveOrder("mailgate", httpcaddyfile.After, "basic_auth")
}

func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	m := new(Mailgate)
	err := m.UnmarshalCaddyfile(h.Dispenser)
	return m, err
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens. Syntax:
//
//	mailgate [<matcher>] {
//	    realm       <name>
//	    base_url    <https://host[:port]>
//	    prefix      <path>
//	    site_name   <name>
//	    allow email <address...>
//	    allow domain <domain...>
//	    session_ttl <duration>
//	    link_ttl    <duration>
//	    smtp <host:port> {
//	        tls          starttls|tls|none
//	        username     <username>
//	        password     <password>
//	        from         <"Name <address>">
//	        insecure
//	        dial_timeout <duration>
//	        timeout      <duration>
//	    }
//	    outbox <dir>
//	    store memory {
//	        max_memory <size>
//	    }
//	    identity_headers {
//	        user  <header>
//	        email <header>
//	        name  <header>
//	    }
//	}
//
// Every subdirective but allow may appear once.
func (m *Mailgate) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	seen := map[string]bool{}
	for d.NextBlock(0) {
		name := d.Val()
		if name != "allow" {
			if seen[name] {
				return d.Errf("duplicate subdirective %q", name)
			}
			seen[name] = true
		}
		var err error
		switch name {
		case "realm":
			err = oneArg(d, &m.Realm)
		case "base_url":
			err = oneArg(d, &m.BaseURL)
		case "prefix":
			err = oneArg(d, &m.Prefix)
		case "site_name":
			err = oneArg(d, &m.SiteName)
		case "allow":
			err = m.parseAllow(d)
		case "session_ttl":
			err = durationArg(d, &m.SessionTTL)
		case "link_ttl":
			err = durationArg(d, &m.LinkTTL)
		case "smtp":
			err = m.parseSMTP(d)
		case "outbox":
			err = oneArg(d, &m.Outbox)
		case "store":
			err = m.parseStore(d)
		case "identity_headers":
			err = m.parseIdentityHeaders(d)
		default:
			return d.Errf("unknown subdirective %q", name)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (m *Mailgate) parseAllow(d *caddyfile.Dispenser) error {
	if !d.NextArg() {
		return d.ArgErr()
	}
	kind := d.Val()
	values := d.RemainingArgs()
	if len(values) == 0 {
		return d.Errf("allow %s: at least one value is required", kind)
	}
	switch kind {
	case "email":
		m.AllowEmails = append(m.AllowEmails, values...)
	case "domain":
		m.AllowDomains = append(m.AllowDomains, values...)
	default:
		return d.Errf("allow %q: use allow email or allow domain", kind)
	}
	return nil
}

func (m *Mailgate) parseSMTP(d *caddyfile.Dispenser) error {
	c := &SMTPConfig{}
	m.SMTP = c
	if err := oneArgOpenBlock(d, &c.Address); err != nil {
		return err
	}
	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		name := d.Val()
		if seen[name] {
			return d.Errf("smtp: duplicate subdirective %q", name)
		}
		seen[name] = true
		var err error
		switch name {
		case "tls":
			err = oneArg(d, &c.TLS)
		case "username":
			err = oneArg(d, &c.Username)
		case "password":
			err = oneArg(d, &c.Password)
		case "from":
			err = oneArg(d, &c.From)
		case "insecure":
			if d.NextArg() {
				return d.ArgErr()
			}
			c.Insecure = true
		case "dial_timeout":
			err = durationArg(d, &c.DialTimeout)
		case "timeout":
			err = durationArg(d, &c.Timeout)
		default:
			return d.Errf("smtp: unknown subdirective %q", name)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (m *Mailgate) parseStore(d *caddyfile.Dispenser) error {
	s := &StoreConfig{}
	m.Store = s
	if err := oneArgOpenBlock(d, &s.Type); err != nil {
		return err
	}
	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		name := d.Val()
		if seen[name] {
			return d.Errf("store: duplicate subdirective %q", name)
		}
		seen[name] = true
		switch name {
		case "max_memory":
			var v string
			if err := oneArg(d, &v); err != nil {
				return err
			}
			size, err := humanize.ParseBytes(v)
			if err != nil {
				return d.Errf("store max_memory %q: %v", v, err)
			}
			s.MaxMemory = int64(size)
		default:
			return d.Errf("store: unknown subdirective %q", name)
		}
	}
	return nil
}

func (m *Mailgate) parseIdentityHeaders(d *caddyfile.Dispenser) error {
	if d.NextArg() {
		return d.ArgErr()
	}
	h := &IdentityHeaders{}
	m.IdentityHeaders = h
	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		name := d.Val()
		if seen[name] {
			return d.Errf("identity_headers: duplicate subdirective %q", name)
		}
		seen[name] = true
		var err error
		switch name {
		case "user":
			err = oneArg(d, &h.User)
		case "email":
			err = oneArg(d, &h.Email)
		case "name":
			err = oneArg(d, &h.Name)
		default:
			return d.Errf("identity_headers: unknown subdirective %q", name)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// oneArg reads exactly one argument on the current line.
func oneArg(d *caddyfile.Dispenser, dst *string) error {
	if !d.NextArg() {
		return d.ArgErr()
	}
	*dst = d.Val()
	if d.NextArg() {
		return d.ArgErr()
	}
	return nil
}

// oneArgOpenBlock reads exactly one argument, which may be followed by a
// block.
func oneArgOpenBlock(d *caddyfile.Dispenser, dst *string) error {
	if !d.NextArg() {
		return d.ArgErr()
	}
	*dst = d.Val()
	if d.CountRemainingArgs() > 0 {
		d.NextArg()
		return d.ArgErr()
	}
	return nil
}

func durationArg(d *caddyfile.Dispenser, dst *caddy.Duration) error {
	name := d.Val()
	var v string
	if err := oneArg(d, &v); err != nil {
		return err
	}
	dur, err := caddy.ParseDuration(v)
	if err != nil {
		return d.Errf("%s %q: %v", name, v, err)
	}
	*dst = caddy.Duration(dur)
	return nil
}

// Interface guard
var _ caddyfile.Unmarshaler = (*Mailgate)(nil)
