package caddymodule

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyevents"
	"go.uber.org/zap"

	"github.com/mailgate/caddy-mailgate/internal/mail"
	"github.com/mailgate/caddy-mailgate/internal/redirect"
)

// SMTPConfig is the mail server mails are handed to.
type SMTPConfig struct {
	// Address is `host:port` of the server.
	Address string `json:"address,omitempty"`

	// TLS is `starttls` (default: upgrade, and refuse a server that does
	// not offer it), `tls` (implicit TLS, usually port 465) or `none`.
	// `none` is refused for a host that is not loopback unless Insecure.
	TLS string `json:"tls,omitempty"`

	// Username and Password, if set, are sent with AUTH PLAIN. Placeholders
	// such as `{env.SMTP_PASSWORD}` are replaced at provisioning; one that
	// is empty in Caddy's environment is a config error, not an empty AUTH.
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`

	// From is the sender, such as `Example <login@example.com>`. Required.
	From string `json:"from,omitempty"`

	// Insecure allows `tls none` to a host that is not loopback, which
	// sends links and credentials in the clear.
	Insecure bool `json:"insecure,omitempty"`

	// DialTimeout bounds connecting and the TLS handshake, or, before a
	// connection is reused, making sure that it still answers. Default: 10s.
	DialTimeout caddy.Duration `json:"dial_timeout,omitempty"`

	// Timeout bounds the rest of the exchange of each mail. Default: 30s.
	Timeout caddy.Duration `json:"timeout,omitempty"`

	// MaxConnections bounds the connections to the server open at once,
	// which are reused from one mail to the next: a reused connection
	// costs neither a TLS handshake nor an AUTH. The mails delivered at
	// once share them: to a server that offers PIPELINING and CHUNKING
	// (Postfix, the large providers), the mails waiting for a connection
	// go together, many in one round trip, so a few connections carry
	// thousands of mails a second. Raise it only for a server that is
	// slow to answer or offers neither; some servers allow a client no
	// more than three. From 1 to 64. Default: 4.
	MaxConnections int `json:"max_connections,omitempty"`

	// IdleTimeout is how long a connection may wait for the next mail;
	// one that waited longer is closed rather than reused. Keep it below
	// the server's own limit (often 5 minutes); one the server closed
	// first is replaced, without an error. Default: 30s.
	IdleTimeout caddy.Duration `json:"idle_timeout,omitempty"`

	// CAFile is a PEM file of the certificates that the server's
	// certificate must chain to, instead of the system's trusted roots: for a server whose
	// certificate a private CA issued. Unlike SSL_CERT_FILE, which would
	// replace the trusted roots of the whole Caddy process, it changes
	// nothing but the trust in this server. Read at provisioning; not with
	// `tls none`.
	CAFile string `json:"ca_file,omitempty"`

	// LocalName is the name mailgate greets the server with (EHLO), which
	// some servers check: a host name, or an address literal such as
	// `[192.0.2.1]`. Default: the host of BaseURL (an IP address in
	// brackets), not `localhost`, which some servers refuse.
	LocalName string `json:"local_name,omitempty"`
}

// parseSMTP reads the smtp block. What the values alone can tell is checked
// as the block closes, so that an error names its line; the CA file is read
// at provisioning.
func (m *Mailgate) parseSMTP(d *caddyfile.Dispenser) error {
	c := &SMTPConfig{}
	m.SMTP = c
	if err := oneArgOpenBlock(d, &c.Address); err != nil {
		return err
	}
	err := eachSubdirective(d, "smtp", func(name string) error {
		switch name {
		case "tls":
			return oneArg(d, &c.TLS)
		case "username":
			return oneArg(d, &c.Username)
		case "password":
			return oneArg(d, &c.Password)
		case "from":
			return oneArg(d, &c.From)
		case "insecure":
			if d.NextArg() {
				return d.ArgErr()
			}
			c.Insecure = true
			return nil
		case "dial_timeout":
			return durationArg(d, &c.DialTimeout)
		case "timeout":
			return durationArg(d, &c.Timeout)
		case "max_connections":
			var v string
			if err := oneArg(d, &v); err != nil {
				return err
			}
			// 0 would mean the default in JSON; written out, it is a
			// mistake.
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return d.Errf("smtp max_connections %q: must be from 1 to %d", v, maxSMTPConnections)
			}
			c.MaxConnections = n
			return nil
		case "idle_timeout":
			if err := durationArg(d, &c.IdleTimeout); err != nil {
				return err
			}
			if c.IdleTimeout <= 0 {
				return d.Errf("smtp idle_timeout %s: must be more than 0", d.Val())
			}
			return nil
		case "ca_file":
			return oneArg(d, &c.CAFile)
		case "local_name":
			return oneArg(d, &c.LocalName)
		}
		return d.Errf("smtp: unknown subdirective %q", name)
	})
	// On a copy: check fills in defaults, which the adapted config leaves
	// out.
	return checked(d, err, func() error {
		cc := *c
		return cc.check()
	})
}

// maxSMTPConnections bounds max_connections: more would not make login
// mails faster, and would look like a flood to a mail server.
const maxSMTPConnections = 64

// checkMailTarget requires exactly one place for mails to go.
func (m *Mailgate) checkMailTarget() error {
	switch {
	case m.SMTP != nil && m.Outbox != "":
		return errors.New("mailgate: both smtp and outbox are set; choose one")
	case m.SMTP == nil && m.Outbox == "":
		return errors.New("mailgate: neither smtp nor outbox is set; mails need somewhere to go")
	}
	return nil
}

// retryBackoff, when not zero, replaces the queue's wait before a failed
// mail's second attempt (it doubles after). Only tests set it, to see a
// retry through Caddy without waiting for it.
var retryBackoff atomic.Int64

// mailer builds the mail delivery and starts its queue (see mail.Queue),
// which runs until ctx ends: when Caddy unloads this config, after a reload
// or at shutdown, the queue delivers what it still holds for a few seconds
// and gives up the rest, dropping their links. The queue is the flow's
// Mailer: the browser form queues, the API sends at once.
func (m *Mailgate) mailer(ctx caddy.Context, base *url.URL, zone *time.Location) (*mail.Queue, error) {
	if err := m.checkMailTarget(); err != nil {
		return nil, err
	}
	var sender mail.Sender
	switch {
	case m.Outbox != "":
		from, err := mail.ParseFrom(fmt.Sprintf("%q <mailgate@%s>", m.SiteName, base.Hostname()))
		if err != nil {
			return nil, err
		}
		m.logger.Warn("mails go to the development outbox, not to people", zap.String("outbox", m.Outbox))
		mailer := &mail.Mailer{From: from, Transport: &mail.Outbox{Dir: m.Outbox, Now: now}, Now: now, Zone: zone}
		sender = outboxMailer{Mailer: mailer, dir: m.Outbox, logger: m.logger}
	default:
		mm, err := m.SMTP.mailer(base)
		if err != nil {
			return nil, err
		}
		mm.Zone = zone
		if s, ok := mm.Transport.(*mail.SMTP); ok {
			if err := m.probeOnStart(ctx, s); err != nil {
				return nil, err
			}
		}
		sender = mm
	}
	q := &mail.Queue{
		Sender:  sender,
		Logger:  m.logger.Named("mail"),
		Backoff: time.Duration(retryBackoff.Load()),
		Now:     now,
		Delivered: func(l mail.Letter, attempts int, latency time.Duration) {
			m.observer.MailDelivered(l.Template, attempts, latency)
		},
		Retried: func(l mail.Letter) { m.observer.MailRetried(l.Template) },
	}
	q.Start(ctx)
	return q, nil
}

// probeOnStart has the mail server probed once Caddy has started this
// config, not when it only provisions it: `caddy validate` and `caddy adapt
// --validate` provision a config without starting it, and checking a
// config needs no network, nor warns about a server that may not be
// reachable from where it is checked. Caddy emits "started" when every app
// of the config has started.
func (m *Mailgate) probeOnStart(ctx caddy.Context, s *mail.SMTP) error {
	events, err := ctx.App("events")
	if err != nil {
		return err
	}
	return events.(*caddyevents.App).On("started", onEvent(func() { go m.probeSMTP(ctx, s) }))
}

// onEvent is a Caddy event handler that runs f.
type onEvent func()

func (f onEvent) Handle(context.Context, caddy.Event) error {
	f()
	return nil
}

// probeSMTP tries the mail server once, in the background, when the config
// has started: a wrong address, TLS mode or password then shows in the log
// at start rather than at the first login, and a server that is down does
// not stop Caddy from starting.
func (m *Mailgate) probeSMTP(ctx context.Context, s *mail.SMTP) {
	if err := s.Check(ctx); err != nil {
		if ctx.Err() != nil {
			return // the config was unloaded meanwhile
		}
		m.logger.Warn("the mail server cannot be used: logins will fail until it can; check with caddy mailgate test-mail --to <address>",
			zap.String("address", s.Addr), zap.Error(err))
		return
	}
	m.logger.Debug("the mail server answers", zap.String("address", s.Addr))
}

// check fills in the SMTP defaults and checks what needs nothing but the
// config itself; the Caddyfile parser runs it too, for errors with a line.
func (c *SMTPConfig) check() error {
	host, _, err := net.SplitHostPort(c.Address)
	if err != nil || host == "" {
		return fmt.Errorf("mailgate: smtp address %q: must be host:port", c.Address)
	}
	if c.TLS == "" {
		c.TLS = mail.TLSStartTLS
	}
	switch c.TLS {
	case mail.TLSStartTLS, mail.TLSImplicit:
	case mail.TLSNone:
		if !redirect.IsLoopback(host) && !c.Insecure {
			return fmt.Errorf("mailgate: smtp tls none to %s: links and passwords would cross the network in the clear; use starttls or tls, or add insecure", host)
		}
	default:
		return fmt.Errorf("mailgate: smtp tls %q: use starttls, tls or none", c.TLS)
	}
	if c.MaxConnections < 0 || c.MaxConnections > maxSMTPConnections {
		return fmt.Errorf("mailgate: smtp max_connections %d: must be from 1 to %d", c.MaxConnections, maxSMTPConnections)
	}
	if c.IdleTimeout < 0 {
		return fmt.Errorf("mailgate: smtp idle_timeout %s: must be more than 0", time.Duration(c.IdleTimeout))
	}
	if c.CAFile != "" && c.TLS == mail.TLSNone {
		return fmt.Errorf("mailgate: smtp ca_file %s: tls none checks no certificate; use starttls or tls", c.CAFile)
	}
	if c.LocalName != "" && !validLocalName(c.LocalName) {
		return fmt.Errorf("mailgate: smtp local_name %q: must be a host name such as mail.example.com, or an address literal such as [192.0.2.1]", c.LocalName)
	}
	if c.From == "" {
		return errors.New("mailgate: smtp from is required")
	}
	if _, err := mail.ParseFrom(c.From); err != nil {
		return fmt.Errorf("mailgate: smtp from %q: not a valid address", c.From)
	}
	return nil
}

// mailer checks the SMTP settings, fills in their defaults and builds the
// mailer that delivers through them; base is the site's base_url, whose
// host is the default local_name.
func (c *SMTPConfig) mailer(base *url.URL) (*mail.Mailer, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	// check has parsed it once already.
	from, err := mail.ParseFrom(c.From)
	if err != nil {
		return nil, err
	}
	username, err := expandSecret("smtp username", c.Username)
	if err != nil {
		return nil, err
	}
	password, err := expandSecret("smtp password", c.Password)
	if err != nil {
		return nil, err
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = caddy.Duration(defaultDial)
	}
	if c.Timeout == 0 {
		c.Timeout = caddy.Duration(defaultTimeout)
	}
	if c.LocalName == "" {
		c.LocalName = ehloName(base.Hostname())
	}
	var tlsConfig *tls.Config
	if c.CAFile != "" {
		roots, err := loadCAFile(c.CAFile)
		if err != nil {
			return nil, err
		}
		tlsConfig = &tls.Config{RootCAs: roots}
	}
	transport := &mail.SMTP{
		Addr:        c.Address,
		TLS:         c.TLS,
		Username:    username,
		Password:    password,
		DialTimeout: time.Duration(c.DialTimeout),
		Timeout:     time.Duration(c.Timeout),
		// Zero means mail's defaults, which the docs above state.
		MaxConns:    c.MaxConnections,
		IdleTimeout: time.Duration(c.IdleTimeout),
		TLSConfig:   tlsConfig,
		LocalName:   c.LocalName,
	}
	return &mail.Mailer{From: from, Transport: transport, Now: now}, nil
}

// loadCAFile reads the certificates of ca_file.
func loadCAFile(path string) (*x509.CertPool, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("mailgate: smtp ca_file: %w", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(raw) {
		return nil, fmt.Errorf("mailgate: smtp ca_file %s: no PEM certificate in it", path)
	}
	return roots, nil
}

// ehloName is how EHLO names host: a domain as it is, an IP address as an
// address literal (RFC 5321, 4.1.3).
func ehloName(host string) string {
	ip, err := netip.ParseAddr(host)
	switch {
	case err != nil:
		return host
	case ip.Is4():
		return "[" + ip.String() + "]"
	default:
		return "[IPv6:" + ip.String() + "]"
	}
}

// validLocalName accepts what EHLO may carry: a domain (letters, digits,
// '-' and '.') or an address literal in brackets. Anything else, such as a
// space, would change the command itself.
func validLocalName(name string) bool {
	if strings.HasPrefix(name, "[") && strings.HasSuffix(name, "]") {
		literal := strings.TrimPrefix(name[1:len(name)-1], "IPv6:")
		_, err := netip.ParseAddr(literal)
		return err == nil
	}
	for _, r := range name {
		if !(r == '-' || r == '.' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return name != ""
}

// closeSMTP closes the connections that q's mail server transport keeps
// open, if it has one. Cleanup calls it after stopping q, so that the
// mails q drains still reuse them.
func closeSMTP(q *mail.Queue) {
	if mm, ok := q.Sender.(*mail.Mailer); ok {
		if s, ok := mm.Transport.(*mail.SMTP); ok {
			_ = s.Close()
		}
	}
}
