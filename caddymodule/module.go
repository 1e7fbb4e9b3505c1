// Package caddymodule is the only part of mailgate that knows Caddy: it
// registers the http.handlers.mailgate module and the mailgate directive,
// turns the configuration into the engine's parts, and routes requests to
// the guard or to mailgate's own endpoints.
package caddymodule

import (
	"net/http"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"

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

	// TimeZone is the IANA time zone (such as `Europe/Brussels`) in which
	// mails say when they were asked for, with the zone's abbreviation:
	// "1 Apr 2026 11:30 CEST". A mail cannot know its reader's zone, so it
	// is the site's. Default: UTC.
	TimeZone string `json:"time_zone,omitempty"`

	// Locale is the language of the pages and of the login form's mails:
	// the visitor's, from Accept-Language, among en-GB, nl-BE and nl-NL,
	// or the site's default. Omitted: en-GB by default, negotiated.
	Locale *LocaleConfig `json:"locale,omitempty"`

	// AllowEmails are the addresses that may log in.
	AllowEmails []string `json:"allow_emails,omitempty"`

	// AllowDomains lets every address of these domains log in. A domain
	// does not include its subdomains; `*.example.com` allows every
	// subdomain of example.com (and not example.com itself). A request
	// that matches no rule is logged at info with its domain, and answered
	// like any other.
	AllowDomains []string `json:"allow_domains,omitempty"`

	// SessionTTL is how long a session lasts, 1m to 30 days. Default: 12h.
	SessionTTL caddy.Duration `json:"session_ttl,omitempty"`

	// PersistentSessionTTL is how long a session lasts that the person
	// asked to keep (seed 004's `persistent`): its cookie outlives the
	// browser, with this lifetime. session_ttl to 30 days (NIST SP
	// 800-63B-4's limit for reauthentication at AAL1). Default: 30 days.
	PersistentSessionTTL caddy.Duration `json:"persistent_session_ttl,omitempty"`

	// SessionIdle ends a session unused for this long (NIST SP 800-63B-4
	// reauthentication after inactivity), at least 2m. The guard re-issues
	// the cookie of a session in use at most once a minute, with a new
	// inactivity deadline and the same absolute end (session_ttl, or
	// persistent_session_ttl, from the sign-in), so the check needs no
	// store: a session idle for between session_idle − 1m and session_idle
	// is refused, and the person signs in again. Default: off.
	SessionIdle caddy.Duration `json:"session_idle,omitempty"`

	// SessionCache is how many verified sessions this handler remembers,
	// so that a returning session costs a lookup instead of a MAC check
	// and a read of the user. When it is full, the sessions seen once are
	// dropped before the ones in use (S3-FIFO). Each takes about 600
	// bytes (docs/performance.md). 1,024 to 16,777,216. Default: 65,536.
	SessionCache int `json:"session_cache,omitempty"`

	// KeyRotation is how long a signing key signs before a new one takes
	// over, at least 1h. A new key is published 5 minutes before it
	// signs, and an old one keeps verifying until every token it signed
	// has expired, so a rotation logs nobody out. The realm's instances
	// rotate once between them; `caddy mailgate rotate-keys` rotates now.
	// Default: 30 days.
	KeyRotation caddy.Duration `json:"key_rotation,omitempty"`

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

	// Projects are the apps that log people in with mailed codes, calling
	// the client-side API from the browser (`{prefix}/login/email/…`).
	Projects []ProjectConfig `json:"projects,omitempty"`

	// EmailLinks sets the invitation and password-reset links (seed 001),
	// which apps with the `email_link` scope ask for and the operator
	// sends with `caddy mailgate users invite|reset`; see
	// docs/email-links.md. Omitted: the defaults (see EmailLinksConfig).
	EmailLinks *EmailLinksConfig `json:"email_links,omitempty"`

	// AccessTokenTTL is how long an API access token lasts. Default: 5m.
	AccessTokenTTL caddy.Duration `json:"access_token_ttl,omitempty"`

	// PasswordHashingMemory bounds the memory of the password checks that
	// run at once, in bytes: each argon2id check holds 19 MiB, so the
	// default, 256 MiB, runs 13 at a time. Half the cores (GOMAXPROCS, one
	// at least) bound them too, whatever the memory, and together they take
	// at most a quarter of the cores' time (each rests between its checks):
	// a check keeps a core busy for ~40 ms. A sign-in that gets no turn
	// within a second is answered 503 with Retry-After, so a flood of
	// sign-ins can neither take the machine's memory nor starve the
	// proxied requests of CPU. At least 19 MiB.
	PasswordHashingMemory int64 `json:"password_hashing_memory,omitempty"`

	// PasswordMaxAge is how old a password may get before the next
	// password sign-in must replace it (seed 004's `next:
	// "expired_password"`), at least 24h. Default: 0, passwords do not
	// age, as NIST SP 800-63B-4 advises; the operator can still expire one
	// user's password (`caddy mailgate users expire-password`).
	PasswordMaxAge caddy.Duration `json:"password_max_age,omitempty"`

	// PasswordLogin offers "use a password instead" on mailgate's own
	// login page: a username (or address) and password form that runs the
	// sign-in of seed 004's API, with its lockout, limits and steps (a new
	// password in place of an expired one, "keep me signed in"), as pages
	// that work without script. Only users with a password can use it.
	// Default: off.
	PasswordLogin bool `json:"password_login,omitempty"`

	// PasswordKeepSignedIn is how the password form offers "keep me signed
	// in" (a session of persistent_session_ttl whose cookie outlives the
	// browser): `checkbox` on the form, `ask` on a page of its own after
	// the password, or `off`. Default: `checkbox`.
	PasswordKeepSignedIn string `json:"password_keep_signed_in,omitempty"`

	// IdentityHeaders names the request headers that carry the identity to
	// the upstream. Incoming copies of them, in any case and with `_` for
	// `-`, are always removed.
	IdentityHeaders *IdentityHeaders `json:"identity_headers,omitempty"`

	// Assertion sets the signed identity assertion sent to the upstream
	// with every proxied request (docs/assertion.md). Omitted: on, in
	// `Mailgate-Assertion`, for base_url's origin, valid 5m.
	Assertion *AssertionConfig `json:"assertion,omitempty"`

	// Limits bound how often mail may be asked for, per address, per
	// client IP and per API client. Omitted: the defaults (see
	// LimitsConfig).
	Limits *LimitsConfig `json:"limits,omitempty"`

	// Admins are the users who may open the operator dashboard
	// (`{prefix}/_/op-dashboard`), by user id or email address. Everyone
	// else signed in is answered 403. Default: nobody.
	Admins []string `json:"admins,omitempty"`

	logger *zap.Logger
	access *zap.Logger
	// observer hears what the flows and contracts report (events.go).
	observer flow.Observer
	// deliveries is the mail queue of the login form; Cleanup stops it.
	deliveries *mail.Queue
	realmKey   string
	origin     string
	secure     bool
	// baseHost is base_url's host name; hostWarned is set once a page was
	// asked for on another (see warnForeignHost).
	baseHost   string
	hostWarned *atomic.Bool
	sessions   *session.Manager
	headers    headerSet
	// assertions signs the upstream's assertion; nil when it is off.
	assertions *assertions
	loginURL   string
	challenge  string
	// The three contracts under the prefix: the server-to-server API, the
	// API apps call from the browser, and the pages. A request goes to the
	// first whose routes have its path.
	api       *http.ServeMux
	clientAPI *http.ServeMux
	pages     *web.Handler
	// emailLinks is seed 001's flow, which the API and the pages share.
	emailLinks *flow.EmailLinks
	// sessionLog records the sessions issued, for the profile page.
	sessionLog sessionRecords

	// What metrics, health and the admin endpoint read (metrics.go,
	// health.go): the guard's decision counters, the realm's store
	// (unwrapped), the storage that holds the key ring, and the ring.
	decisions guardCounters
	store     ticket.Store
	storage   certmagic.Storage
	ring      *session.KeyRing
	// lastHealth is the public health answer of the last second.
	lastHealth *atomic.Pointer[healthAnswer]
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

// Interface guards
var (
	_ caddy.Provisioner           = (*Mailgate)(nil)
	_ caddy.CleanerUpper          = (*Mailgate)(nil)
	_ caddyhttp.MiddlewareHandler = (*Mailgate)(nil)
)
