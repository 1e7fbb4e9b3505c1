package caddymodule

import (
	"cmp"
	"strconv"

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
	if isStrip(h.Dispenser) {
		s := new(Strip)
		return s, s.UnmarshalCaddyfile(h.Dispenser)
	}
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
//	    time_zone   <IANA zone>
//	    locale      en-GB|nl-BE|nl-NL {
//	        negotiate on|off
//	    }
//	    allow email <address...>
//	    allow domain <domain...>
//	    session_ttl <duration>
//	    persistent_session_ttl <duration>
//	    session_idle <duration>
//	    session_cache <entries>
//	    link_ttl    <duration>
//	    smtp <host:port> {
//	        tls             starttls|tls|none
//	        username        <username>
//	        password        <password>
//	        from            <"Name <address>">
//	        insecure
//	        dial_timeout    <duration>
//	        timeout         <duration>
//	        max_connections <n>
//	        idle_timeout    <duration>
//	        ca_file         <path>
//	        local_name      <name>
//	    }
//	    outbox <dir>
//	    project <uuid> {
//	        name               <name>
//	        callback_url       <url...>
//	        error_callback_url <url>
//	        cors_origin        <origin...>
//	        custom_payload
//	        token_ttl          <duration>
//	    }
//	    store memory {
//	        max_memory <size>
//	    }
//	    store redis {
//	        address    <host:port>
//	        sentinel   <host:port...>
//	        master_name <name>
//	        sentinel_username <user>
//	        sentinel_password <password>
//	        cluster    <host:port...>
//	        min_replicas_ack <n>
//	        ack_timeout <duration>
//	        username   <user>
//	        password   <password>
//	        db         <n>
//	        tls
//	        key_prefix <prefix>
//	        timeout    <duration>
//	        counters   <n>
//	    }
//	    identity_headers {
//	        user  <header>
//	        email <header>
//	        name  <header>
//	    }
//	    assertion off
//	    assertion {
//	        header   <header>
//	        audience <aud>
//	        ttl      <duration>
//	    }
//	    limits {
//	        mails_per_address   <max> <window>
//	        requests_per_ip     <max> <window>
//	        requests_per_client <max> <window>
//	        failures_per_ip     <max> <window>
//	        wrong_codes_per_address <max> <window>
//	        failed_sign_ins_per_account <max> <window>
//	    }
//	    key_rotation <duration>
//	    access_token_ttl <duration>
//	    email_links {
//	        invitation_ttl     <duration>
//	        password_reset_ttl <duration>
//	    }
//	    client <id> {
//	        name              <name for mails>
//	        secret            <secret>
//	        secret_hash       <argon2id or bcrypt hash>
//	        redirect_uri      <uri...>
//	        email_link_prefix <url...>
//	        dpop              required|allowed
//	        force_create
//	        scopes            <scope...>
//	        sign_in
//	        ask_persist
//	        second_factor     email_code
//	        cors_origin       <origin...>
//	    }
//	    password_hashing_memory <size>
//	    password_max_age <duration>
//	    admins <user id or email...>
//	    password_login on|off
//	    password_keep_signed_in checkbox|ask|off
//	}
//
// `mailgate strip` is another handler (Strip): on a route that mailgate does
// not guard, it removes the identity headers, the assertion header and
// mailgate's cookies.
//
//	mailgate [<matcher>] strip {
//	    identity_headers {
//	        user  <header>
//	        email <header>
//	        name  <header>
//	    }
//	    assertion_header <header>
//	}
//
// Every subdirective but allow and client may appear once. Durations take
// Caddy's units and `d` for days: `invitation_ttl 7d`.
func (m *Mailgate) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	err := eachSubdirective(d, "", func(name string) error {
		switch name {
		case "realm":
			return checked(d, oneArg(d, &m.Realm), func() error { return checkRealm(m.Realm) })
		case "base_url":
			return checked(d, oneArg(d, &m.BaseURL), func() error {
				_, err := parseBaseURL(m.BaseURL)
				return err
			})
		case "prefix":
			return checked(d, oneArg(d, &m.Prefix), func() error { return checkPrefix(m.Prefix) })
		case "site_name":
			return oneArg(d, &m.SiteName)
		case "time_zone":
			return checked(d, oneArg(d, &m.TimeZone), func() error {
				_, err := timeZone(m.TimeZone)
				return err
			})
		case "locale":
			return m.parseLocale(d)
		case "allow":
			return m.parseAllow(d)
		case "session_ttl":
			return checked(d, durationArg(d, &m.SessionTTL), func() error { return checkSessionTTL(m.SessionTTL) })
		case "persistent_session_ttl":
			return checked(d, durationArg(d, &m.PersistentSessionTTL), func() error {
				return checkPersistentSessionTTL(m.PersistentSessionTTL, cmp.Or(m.SessionTTL, caddy.Duration(defaultSessionTTL)))
			})
		case "session_idle":
			return checked(d, durationArg(d, &m.SessionIdle), func() error { return checkSessionIdle(m.SessionIdle) })
		case "session_cache":
			return checked(d, intArg(d, &m.SessionCache), func() error { return checkSessionCache(m.SessionCache) })
		case "key_rotation":
			return checked(d, durationArg(d, &m.KeyRotation), func() error { return checkKeyRotation(m.KeyRotation) })
		case "link_ttl":
			return checked(d, durationArg(d, &m.LinkTTL), func() error { return checkLinkTTL(m.LinkTTL) })
		case "smtp":
			return m.parseSMTP(d)
		case "outbox":
			return oneArg(d, &m.Outbox)
		case "store":
			return m.parseStore(d)
		case "identity_headers":
			return m.parseIdentityHeaders(d)
		case "assertion":
			return m.parseAssertion(d)
		case "limits":
			return m.parseLimits(d)
		case "access_token_ttl":
			return durationArg(d, &m.AccessTokenTTL)
		case "password_hashing_memory":
			var v string
			if err := oneArg(d, &v); err != nil {
				return err
			}
			size, err := humanize.ParseBytes(v)
			if err != nil {
				return d.Errf("password_hashing_memory %q: %v", v, err)
			}
			m.PasswordHashingMemory = int64(size)
			return checked(d, nil, func() error { return checkHashingMemory(m.PasswordHashingMemory) })
		case "password_max_age":
			return checked(d, durationArg(d, &m.PasswordMaxAge), func() error { return checkPasswordMaxAge(m.PasswordMaxAge) })
		case "password_login":
			return m.parsePasswordLogin(d)
		case "password_keep_signed_in":
			return checked(d, oneArg(d, &m.PasswordKeepSignedIn), func() error { return checkPasswordKeepSignedIn(m.PasswordKeepSignedIn) })
		case "email_links":
			return m.parseEmailLinks(d)
		case "client":
			return m.parseClient(d)
		case "project":
			return m.parseProject(d)
		case "admins":
			m.Admins = d.RemainingArgs()
			if len(m.Admins) == 0 {
				return d.ArgErr()
			}
			return checked(d, nil, func() error { return checkAdmins(m.Admins) })
		}
		return d.Errf("unknown subdirective %q", name)
	})
	// Named by the line that closes the block, which lacks what it needs.
	return checked(d, err, func() error {
		if m.BaseURL == "" {
			return errNoBaseURL
		}
		return m.checkMailTarget()
	})
}

// checked runs check once a (sub)directive has parsed without error, and
// gives its error the Caddyfile's file and line: the same check at
// provisioning could only name the value, after Caddy's whole module chain.
// Checks that need the environment or the network stay at provisioning.
func checked(d *caddyfile.Dispenser, err error, check func() error) error {
	if err != nil {
		return err
	}
	if err := check(); err != nil {
		return d.Err(err.Error())
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

func (m *Mailgate) parseStore(d *caddyfile.Dispenser) error {
	s := &StoreConfig{}
	m.Store = s
	if err := oneArgOpenBlock(d, &s.Type); err != nil {
		return err
	}
	err := eachSubdirective(d, "store", func(name string) error {
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
			return nil
		case "address":
			return oneArg(d, &s.Address)
		case "username":
			return oneArg(d, &s.Username)
		case "password":
			return oneArg(d, &s.Password)
		case "db":
			return intArg(d, &s.DB)
		case "tls":
			if d.NextArg() {
				return d.ArgErr()
			}
			s.TLS = true
			return nil
		case "key_prefix":
			return oneArg(d, &s.KeyPrefix)
		case "timeout":
			return durationArg(d, &s.Timeout)
		case "counters":
			return intArg(d, &s.Counters)
		case "sentinel", "cluster":
			addrs := d.RemainingArgs()
			if len(addrs) == 0 {
				return d.ArgErr()
			}
			if name == "sentinel" {
				s.Sentinel = append(s.Sentinel, addrs...)
			} else {
				s.Cluster = append(s.Cluster, addrs...)
			}
			return nil
		case "master_name":
			return oneArg(d, &s.MasterName)
		case "sentinel_username":
			return oneArg(d, &s.SentinelUsername)
		case "sentinel_password":
			return oneArg(d, &s.SentinelPassword)
		case "min_replicas_ack":
			return intArg(d, &s.MinReplicasAck)
		case "ack_timeout":
			return durationArg(d, &s.AckTimeout)
		}
		return d.Errf("store: unknown subdirective %q", name)
	})
	return checked(d, err, func() error {
		sc := *s
		return sc.applyDefaults()
	})
}

func (m *Mailgate) parseIdentityHeaders(d *caddyfile.Dispenser) error {
	if d.NextArg() {
		return d.ArgErr()
	}
	h := &IdentityHeaders{}
	m.IdentityHeaders = h
	return eachSubdirective(d, "identity_headers", func(name string) error {
		switch name {
		case "user":
			return oneArg(d, &h.User)
		case "email":
			return oneArg(d, &h.Email)
		case "name":
			return oneArg(d, &h.Name)
		}
		return d.Errf("identity_headers: unknown subdirective %q", name)
	})
}

// parseAssertion reads `assertion off` or an assertion block.
func (m *Mailgate) parseAssertion(d *caddyfile.Dispenser) error {
	a := &AssertionConfig{}
	m.Assertion = a
	if d.NextArg() {
		if d.Val() != "off" || d.NextArg() {
			return d.Errf("assertion: use `assertion off` or an assertion block")
		}
		a.Off = true
		return nil
	}
	err := eachSubdirective(d, "assertion", func(name string) error {
		switch name {
		case "header":
			return oneArg(d, &a.Header)
		case "audience":
			return oneArg(d, &a.Audience)
		case "ttl":
			return durationArg(d, &a.TTL)
		}
		return d.Errf("assertion: unknown subdirective %q", name)
	})
	return checked(d, err, a.check)
}

func (m *Mailgate) parseClient(d *caddyfile.Dispenser) error {
	c := ClientConfig{}
	if err := oneArgOpenBlock(d, &c.ID); err != nil {
		return err
	}
	err := eachSubdirective(d, "client "+c.ID, func(name string) error {
		switch name {
		case "name":
			return oneArg(d, &c.Name)
		case "secret":
			return oneArg(d, &c.Secret)
		case "secret_hash":
			return oneArg(d, &c.SecretHash)
		case "redirect_uri":
			c.RedirectURIs = d.RemainingArgs()
			if len(c.RedirectURIs) == 0 {
				return d.ArgErr()
			}
			return nil
		case "email_link_prefix":
			c.EmailLinkPrefixes = d.RemainingArgs()
			if len(c.EmailLinkPrefixes) == 0 {
				return d.ArgErr()
			}
			return nil
		case "dpop":
			return oneArg(d, &c.DPoP)
		case "force_create":
			if d.NextArg() {
				return d.ArgErr()
			}
			c.ForceCreate = true
			return nil
		case "scopes":
			c.Scopes = d.RemainingArgs()
			if len(c.Scopes) == 0 {
				return d.ArgErr()
			}
			return nil
		case "sign_in":
			if d.NextArg() {
				return d.ArgErr()
			}
			c.SignIn = true
			return nil
		case "ask_persist":
			if d.NextArg() {
				return d.ArgErr()
			}
			c.AskPersist = true
			return nil
		case "second_factor":
			if !d.NextArg() {
				return d.ArgErr()
			}
			c.SecondFactor = d.Val()
			if d.NextArg() {
				return d.ArgErr()
			}
			return nil
		case "cors_origin":
			c.CORSOrigins = d.RemainingArgs()
			if len(c.CORSOrigins) == 0 {
				return d.ArgErr()
			}
			return nil
		}
		return d.Errf("client %s: unknown subdirective %q", c.ID, name)
	})
	m.Clients = append(m.Clients, c)
	return checked(d, err, c.check)
}

func (m *Mailgate) parseProject(d *caddyfile.Dispenser) error {
	p := ProjectConfig{}
	if err := oneArgOpenBlock(d, &p.ID); err != nil {
		return err
	}
	err := eachSubdirective(d, "project "+p.ID, func(name string) error {
		switch name {
		case "name":
			return oneArg(d, &p.Name)
		case "callback_url":
			p.CallbackURLs = d.RemainingArgs()
			if len(p.CallbackURLs) == 0 {
				return d.ArgErr()
			}
			return nil
		case "error_callback_url":
			return oneArg(d, &p.ErrorCallbackURL)
		case "cors_origin":
			p.CORSOrigins = d.RemainingArgs()
			if len(p.CORSOrigins) == 0 {
				return d.ArgErr()
			}
			return nil
		case "custom_payload":
			if d.NextArg() {
				return d.ArgErr()
			}
			p.CustomPayload = true
			return nil
		case "token_ttl":
			return durationArg(d, &p.TokenTTL)
		}
		return d.Errf("project %s: unknown subdirective %q", p.ID, name)
	})
	m.Projects = append(m.Projects, p)
	return checked(d, err, p.check)
}

// eachSubdirective calls parse for each line of the block the dispenser is
// at, refusing a subdirective that appears twice (allow excepted, at the top
// level). section prefixes errors inside a nested block.
func eachSubdirective(d *caddyfile.Dispenser, section string, parse func(name string) error) error {
	prefix := ""
	if section != "" {
		prefix = section + ": "
	}
	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		name := d.Val()
		if seen[name] && !(section == "" && (name == "allow" || name == "client" || name == "project")) {
			return d.Errf("%sduplicate subdirective %q", prefix, name)
		}
		seen[name] = true
		if err := parse(name); err != nil {
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

// intArg reads one whole number.
func intArg(d *caddyfile.Dispenser, dst *int) error {
	name := d.Val()
	var v string
	if err := oneArg(d, &v); err != nil {
		return err
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return d.Errf("%s %q: not a whole number", name, v)
	}
	*dst = n
	return nil
}

// Interface guard
var _ caddyfile.Unmarshaler = (*Mailgate)(nil)
