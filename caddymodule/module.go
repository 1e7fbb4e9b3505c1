// Package caddymodule is the only part of mailgate that knows Caddy: it
// registers the http.handlers.mailgate module and the mailgate directive,
// turns the configuration into the engine's parts, and routes requests to
// the guard or to mailgate's own endpoints.
package caddymodule

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/mailgate/caddy-mailgate/internal/api"
	"github.com/mailgate/caddy-mailgate/internal/directory"
	"github.com/mailgate/caddy-mailgate/internal/dpop"
	"github.com/mailgate/caddy-mailgate/internal/flow"
	"github.com/mailgate/caddy-mailgate/internal/mail"
	"github.com/mailgate/caddy-mailgate/internal/session"
	"github.com/mailgate/caddy-mailgate/internal/ticket"
	"github.com/mailgate/caddy-mailgate/internal/web"
)

func init() {
	caddy.RegisterModule(Mailgate{})
}

// Mailgate puts a site behind a passwordless email login. Every request
// outside Prefix must carry a valid session cookie; people get one by
// clicking a link that mailgate mails them. Apps behind the proxy receive the
// person's identity in request headers.
//
// After a successful check, the placeholders `{http.auth.user.id}` and
// `{http.auth.user.email}` hold the user's id and address.
type Mailgate struct {
	// Realm names the state that sites share: sites with the same realm
	// share sessions, pending links and users. Storage keys live under
	// `mailgate/<realm>/`. Letters, digits, `-` and `_`. Default: `default`.
	Realm string `json:"realm,omitempty"`

	// BaseURL is the origin (`https://host[:port]`) from which every mailed
	// link is built and against which form posts are checked. It is never
	// taken from the request's Host or X-Forwarded-* headers. `http://` is
	// accepted only for loopback hosts (local development). Required.
	BaseURL string `json:"base_url,omitempty"`

	// Prefix is the path under which mailgate serves its own pages and
	// endpoints (login page, link confirmation, logout, JWKS). Requests
	// under it never reach the upstream. Default: `/.mailgate`.
	Prefix string `json:"prefix,omitempty"`

	// SiteName is shown on the pages and in the mails. Default: the host of
	// BaseURL.
	SiteName string `json:"site_name,omitempty"`

	// AllowEmails are the addresses that may log in.
	AllowEmails []string `json:"allow_emails,omitempty"`

	// AllowDomains lets every address of these domains log in. Subdomains
	// are not included.
	AllowDomains []string `json:"allow_domains,omitempty"`

	// SessionTTL is how long a session lasts. Default: 12h.
	SessionTTL caddy.Duration `json:"session_ttl,omitempty"`

	// LinkTTL is how long a mailed link can be used. Default: 10m, NIST SP
	// 800-63B's limit for out-of-band secrets.
	LinkTTL caddy.Duration `json:"link_ttl,omitempty"`

	// SMTP delivers the mails. Exactly one of SMTP and Outbox is required.
	SMTP *SMTPConfig `json:"smtp,omitempty"`

	// Outbox is a folder where mails are written as .eml files instead of
	// being sent, and the login link is logged: for development only.
	Outbox string `json:"outbox,omitempty"`

	// Store keeps pending links, revoked sessions and DPoP replay
	// markers. Default: memory with 64MiB.
	Store *StoreConfig `json:"store,omitempty"`

	// Clients are the apps allowed to call the server-to-server API
	// (`{prefix}/oauth/token`, `{prefix}/api/v1/…`).
	Clients []ClientConfig `json:"clients,omitempty"`

	// AccessTokenTTL is how long an API access token lasts. Default: 5m.
	AccessTokenTTL caddy.Duration `json:"access_token_ttl,omitempty"`

	// IdentityHeaders names the request headers that carry the identity to
	// the upstream. Incoming copies of them, in any case and with `_` for
	// `-`, are always removed.
	IdentityHeaders *IdentityHeaders `json:"identity_headers,omitempty"`

	logger    *zap.Logger
	access    *zap.Logger
	realmKey  string
	origin    string
	secure    bool
	forms     web.Forms
	sessions  *session.Manager
	ring      *session.KeyRing
	links     *flow.MagicLink
	pages     *web.Pages
	headers   headerSet
	loginURL  string
	challenge string
	token     *api.TokenEndpoint
	codes     flow.Codes
	pending   ticket.Tickets
	users     *directory.Directory
	// api holds the server-to-server endpoints by path under the prefix.
	api map[string]http.Handler
}

// ClientConfig is an app allowed to call the server-to-server API.
type ClientConfig struct {
	// ID is the client_id.
	ID string `json:"id,omitempty"`

	// Secret is the client secret, at least 16 characters; placeholders
	// such as `{env.SHOP_SECRET}` are replaced. It is hashed with argon2id
	// at provisioning and not kept. Exactly one of Secret and SecretHash.
	Secret string `json:"secret,omitempty"`

	// SecretHash is an argon2id (`$argon2id$v=19$…`) or bcrypt (`$2b$…`)
	// hash of the secret, for configs that must not hold the secret.
	SecretHash string `json:"secret_hash,omitempty"`

	// RedirectURIs are where the client's logins may end. A redirect_uri
	// in a request must equal one of them exactly.
	RedirectURIs []string `json:"redirect_uris,omitempty"`

	// DPoP is `required` (default: only DPoP-bound tokens) or `allowed`
	// (Bearer tokens too).
	DPoP string `json:"dpop,omitempty"`

	// ForceCreate lets the client create users that do not exist yet.
	ForceCreate bool `json:"force_create,omitempty"`

	// Scopes are the API calls the client may make: `login_email`,
	// `magic_link`.
	Scopes []string `json:"scopes,omitempty"`
}

// SMTPConfig is the mail server mails are handed to.
type SMTPConfig struct {
	// Address is `host:port` of the server.
	Address string `json:"address,omitempty"`

	// TLS is `starttls` (default: upgrade, and refuse a server that does
	// not offer it), `tls` (implicit TLS, usually port 465) or `none`.
	// `none` is refused for a host that is not loopback unless Insecure.
	TLS string `json:"tls,omitempty"`

	// Username and Password, if set, are sent with AUTH PLAIN. Placeholders
	// such as `{env.SMTP_PASSWORD}` are replaced at provisioning.
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`

	// From is the sender, such as `Example <login@example.com>`. Required.
	From string `json:"from,omitempty"`

	// Insecure allows `tls none` to a host that is not loopback, which
	// sends links and credentials in the clear.
	Insecure bool `json:"insecure,omitempty"`

	// DialTimeout bounds connecting and the TLS handshake. Default: 10s.
	DialTimeout caddy.Duration `json:"dial_timeout,omitempty"`

	// Timeout bounds the rest of the exchange. Default: 30s.
	Timeout caddy.Duration `json:"timeout,omitempty"`
}

// StoreConfig chooses the ticket store.
type StoreConfig struct {
	// Type is `memory`, the only store so far: it lives inside this Caddy
	// process and survives config reloads, not restarts.
	Type string `json:"type,omitempty"`

	// MaxMemory bounds the memory store, in bytes; at least 2MiB. A
	// quarter holds markers (revoked sessions, used DPoP proofs), which are
	// never dropped to make room: when that quarter is full, logouts and
	// API calls answer 503 until older markers expire. The rest holds
	// pending links and codes; when it is full the oldest are dropped, and
	// their owners must ask again. Default: 64MiB.
	MaxMemory int64 `json:"max_memory,omitempty"`
}

// IdentityHeaders names the identity headers. Empty fields get the defaults.
type IdentityHeaders struct {
	// User carries the user's id. Default: `Remote-User`.
	User string `json:"user,omitempty"`
	// Email carries the address. Default: `Remote-Email`.
	Email string `json:"email,omitempty"`
	// Name carries the display name, when known. Default: `Remote-Name`.
	Name string `json:"name,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (Mailgate) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.mailgate",
		New: func() caddy.Module { return new(Mailgate) },
	}
}

const (
	defaultRealm      = "default"
	defaultPrefix     = "/.mailgate"
	defaultSessionTTL = 12 * time.Hour
	defaultLinkTTL    = 10 * time.Minute
	defaultMaxMemory  = 64 << 20
	defaultDial       = 10 * time.Second
	defaultTimeout    = 30 * time.Second
	defaultAccessTTL  = 5 * time.Minute
	// dpopWindow is how far a DPoP proof's iat may be from now.
	dpopWindow = time.Minute
)

var realmPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// Provision checks the configuration, then builds the engine. Every error
// names the value at fault.
func (m *Mailgate) Provision(ctx caddy.Context) error {
	m.logger = ctx.Logger()
	m.access = m.logger.Named("access")
	if err := m.applyDefaults(); err != nil {
		return err
	}
	base, err := parseBaseURL(m.BaseURL)
	if err != nil {
		return err
	}
	m.origin = base.Scheme + "://" + base.Host
	m.secure = base.Scheme == "https"
	if m.SiteName == "" {
		m.SiteName = base.Hostname()
	}
	allow, err := m.allowlist()
	if err != nil {
		return err
	}
	mailer, err := m.mailer(base)
	if err != nil {
		return err
	}
	pages, err := web.New()
	if err != nil {
		return err
	}
	m.pages = pages

	m.realmKey = "mailgate/" + m.Realm
	r, err := loadRealm(ctx, m.realmKey, storeSettings{Type: m.Store.Type, MaxMemory: m.Store.MaxMemory})
	if err != nil {
		m.realmKey = ""
		return err
	}
	m.ring = r.ring
	m.forms = web.Forms{Key: r.ring.DeriveKey("form token"), Origin: m.origin, Secure: m.secure}
	store := markLogger{Store: r.store, logger: m.logger}
	users := directory.New(ctx.Storage(), m.realmKey, now)
	m.users = users
	m.headers = newHeaderSet(m.IdentityHeaders)
	m.sessions = session.NewManager(session.Config{
		Signer:      session.Signer{Ring: r.ring, Issuer: m.origin, Audience: m.Realm, Now: now},
		TTL:         time.Duration(m.SessionTTL),
		Revocations: store,
		Identities:  identities{users},
		Prepare:     m.headers.prepare,
	})
	m.links = &flow.MagicLink{
		Tickets:   ticket.Tickets{Store: r.store, Kind: "link"},
		Users:     users,
		Mailer:    mailer,
		Allowlist: allow,
		LinkURL:   m.linkURL,
		TTL:       time.Duration(m.LinkTTL),
		SiteName:  m.SiteName,
		Sleep:     flow.SleepContext,
		Now:       now,
	}
	m.codes = flow.Codes{Tickets: ticket.Tickets{Store: r.store, Kind: "code"}}
	m.pending = ticket.Tickets{Store: r.store, Kind: "pwset"}
	if err := m.provisionAPI(r.ring, store, users); err != nil {
		return err
	}
	m.loginURL = m.origin + m.Prefix + "/login"
	m.challenge = fmt.Sprintf(`Mailgate realm=%q, login_url=%q`, m.Realm, m.loginURL)
	return nil
}

// linkURL is the mailed link for secret; a locale other than the default
// rides along, so the confirmation page speaks the mail's language.
func (m *Mailgate) linkURL(secret, locale string) string {
	u := m.origin + m.Prefix + "/link?t=" + secret
	if locale != "" && locale != web.DefaultLocale {
		u += "&l=" + url.QueryEscape(locale)
	}
	return u
}

// provisionAPI builds the server-to-server API: clients, access tokens and
// the DPoP checks. Its tokens are signed by the realm's keys with the API's
// URL as audience, so no session token can pass as an access token.
func (m *Mailgate) provisionAPI(ring *session.KeyRing, store ticket.Store, users *directory.Directory) error {
	if m.AccessTokenTTL == 0 {
		m.AccessTokenTTL = caddy.Duration(defaultAccessTTL)
	}
	repl := caddy.NewReplacer()
	configs := make([]api.ClientConfig, len(m.Clients))
	for i, c := range m.Clients {
		configs[i] = api.ClientConfig{
			ID: c.ID, Secret: repl.ReplaceKnown(c.Secret, ""), SecretHash: c.SecretHash,
			RedirectURIs: c.RedirectURIs, DPoP: c.DPoP, ForceCreate: c.ForceCreate, Scopes: c.Scopes,
		}
	}
	clients, err := api.NewClients(configs)
	if err != nil {
		return fmt.Errorf("mailgate: %w", err)
	}
	tokens := &api.Tokens{
		Signer: session.Signer{Ring: ring, Issuer: m.origin, Audience: m.origin + m.Prefix + "/api", Now: now},
		TTL:    time.Duration(m.AccessTokenTTL),
	}
	verifier := &dpop.Verifier{Replay: store, Now: now, Window: dpopWindow}
	m.token = &api.TokenEndpoint{
		Clients: clients, Tokens: tokens, DPoP: verifier, Codes: m.codes, Users: users,
		URL: m.origin + m.Prefix + "/oauth/token",
	}
	auth := &api.Authenticator{Clients: clients, Tokens: tokens, DPoP: verifier}
	m.api = map[string]http.Handler{
		"/api/v1/login-email": api.EchoCorrelation(&api.LoginEmail{
			Auth: auth, URL: m.origin + m.Prefix + "/api/v1/login-email", Users: users, Links: m.links,
			OnError: func(err error) { m.logger.Error("login-email: link not sent", zap.Error(err)) },
		}),
		"/api/v1/magic-link": api.EchoCorrelation(&api.MagicLink{
			Auth: auth, URL: m.origin + m.Prefix + "/api/v1/magic-link", Users: users, Links: m.links,
			OnError: func(err error) { m.logger.Error("magic-link: link not sent", zap.Error(err)) },
		}),
	}
	return nil
}

// Cleanup releases this instance's hold on the realm's shared state; the
// state itself lives on while a newer config uses the same realm.
func (m *Mailgate) Cleanup() error {
	if m.realmKey == "" {
		return nil
	}
	_, err := realms.Delete(m.realmKey)
	return err
}

func (m *Mailgate) applyDefaults() error {
	if m.Realm == "" {
		m.Realm = defaultRealm
	}
	if !realmPattern.MatchString(m.Realm) {
		return fmt.Errorf("mailgate: realm %q: use 1 to 64 letters, digits, '-' or '_'", m.Realm)
	}
	if m.Prefix == "" {
		m.Prefix = defaultPrefix
	}
	m.Prefix = strings.TrimSuffix(m.Prefix, "/")
	if !strings.HasPrefix(m.Prefix, "/") || m.Prefix == "" || strings.ContainsAny(m.Prefix, "?#") {
		return fmt.Errorf("mailgate: prefix %q: must be a path such as /.mailgate", m.Prefix)
	}
	if m.SessionTTL == 0 {
		m.SessionTTL = caddy.Duration(defaultSessionTTL)
	}
	if m.LinkTTL == 0 {
		m.LinkTTL = caddy.Duration(defaultLinkTTL)
	}
	if m.SessionTTL < caddy.Duration(time.Minute) {
		return fmt.Errorf("mailgate: session_ttl %s: must be at least 1m", time.Duration(m.SessionTTL))
	}
	if m.LinkTTL < caddy.Duration(time.Minute) || m.LinkTTL > caddy.Duration(24*time.Hour) {
		return fmt.Errorf("mailgate: link_ttl %s: must be between 1m and 24h", time.Duration(m.LinkTTL))
	}
	if m.Store == nil {
		m.Store = &StoreConfig{}
	}
	if m.Store.Type == "" {
		m.Store.Type = "memory"
	}
	if m.Store.Type != "memory" {
		return fmt.Errorf("mailgate: store %q: unknown (known: memory)", m.Store.Type)
	}
	if m.Store.MaxMemory == 0 {
		m.Store.MaxMemory = defaultMaxMemory
	}
	if m.Store.MaxMemory < ticket.MinMemory {
		return fmt.Errorf("mailgate: store max_memory %d bytes: must be at least 2MiB", m.Store.MaxMemory)
	}
	return nil
}

// parseBaseURL accepts an origin: scheme and host, nothing else. Plain HTTP
// is allowed for loopback hosts only, because the session cookie then loses
// its Secure flag.
func parseBaseURL(s string) (*url.URL, error) {
	if s == "" {
		return nil, errors.New("mailgate: base_url is required (the origin of mailed links, such as https://app.example.com)")
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("mailgate: base_url %q: %v", s, err)
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Opaque != "" {
		return nil, fmt.Errorf("mailgate: base_url %q: must be an absolute http(s) URL such as https://app.example.com", s)
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("mailgate: base_url %q: must be an origin only, without path, query, fragment or user info", s)
	}
	if u.Scheme == "http" && !isLoopback(u.Hostname()) {
		return nil, fmt.Errorf("mailgate: base_url %q: plain http is allowed for localhost only; use https", s)
	}
	return u, nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (m *Mailgate) allowlist() (flow.Allowlist, error) {
	emails := make([]string, 0, len(m.AllowEmails))
	for _, e := range m.AllowEmails {
		n, err := directory.NormalizeEmail(e)
		if err != nil {
			return flow.Allowlist{}, fmt.Errorf("mailgate: allow email %q: not a valid address", e)
		}
		emails = append(emails, n)
	}
	for _, d := range m.AllowDomains {
		if d == "" || strings.ContainsAny(d, "@/ ") || !strings.Contains(d, ".") {
			return flow.Allowlist{}, fmt.Errorf("mailgate: allow domain %q: not a domain name", d)
		}
	}
	if len(emails) == 0 && len(m.AllowDomains) == 0 {
		m.logger.Warn("no allow email or allow domain configured: nobody can log in")
	}
	return flow.NewAllowlist(emails, m.AllowDomains), nil
}

func (m *Mailgate) mailer(base *url.URL) (flow.Mailer, error) {
	switch {
	case m.SMTP != nil && m.Outbox != "":
		return nil, errors.New("mailgate: both smtp and outbox are set; choose one")
	case m.SMTP == nil && m.Outbox == "":
		return nil, errors.New("mailgate: neither smtp nor outbox is set; mails need somewhere to go")
	case m.Outbox != "":
		from, err := mail.ParseFrom(fmt.Sprintf("%q <mailgate@%s>", m.SiteName, base.Hostname()))
		if err != nil {
			return nil, err
		}
		m.logger.Warn("mails go to the development outbox, not to people", zap.String("outbox", m.Outbox))
		mailer := &mail.Mailer{From: from, Transport: &mail.Outbox{Dir: m.Outbox, Now: now}, Now: now}
		return outboxMailer{Mailer: mailer, dir: m.Outbox, logger: m.logger}, nil
	}
	c := m.SMTP
	repl := caddy.NewReplacer()
	host, _, err := net.SplitHostPort(c.Address)
	if err != nil || host == "" {
		return nil, fmt.Errorf("mailgate: smtp address %q: must be host:port", c.Address)
	}
	if c.TLS == "" {
		c.TLS = mail.TLSStartTLS
	}
	switch c.TLS {
	case mail.TLSStartTLS, mail.TLSImplicit:
	case mail.TLSNone:
		if !isLoopback(host) && !c.Insecure {
			return nil, fmt.Errorf("mailgate: smtp tls none to %s: links and passwords would cross the network in the clear; use starttls or tls, or add insecure", host)
		}
	default:
		return nil, fmt.Errorf("mailgate: smtp tls %q: use starttls, tls or none", c.TLS)
	}
	if c.From == "" {
		return nil, errors.New("mailgate: smtp from is required")
	}
	from, err := mail.ParseFrom(c.From)
	if err != nil {
		return nil, fmt.Errorf("mailgate: smtp from %q: not a valid address", c.From)
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = caddy.Duration(defaultDial)
	}
	if c.Timeout == 0 {
		c.Timeout = caddy.Duration(defaultTimeout)
	}
	transport := &mail.SMTP{
		Addr:        c.Address,
		TLS:         c.TLS,
		Username:    repl.ReplaceKnown(c.Username, ""),
		Password:    repl.ReplaceKnown(c.Password, ""),
		DialTimeout: time.Duration(c.DialTimeout),
		Timeout:     time.Duration(c.Timeout),
	}
	return &mail.Mailer{From: from, Transport: transport, Now: now}, nil
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Mailgate)(nil)
	_ caddy.CleanerUpper          = (*Mailgate)(nil)
	_ caddyhttp.MiddlewareHandler = (*Mailgate)(nil)
)
