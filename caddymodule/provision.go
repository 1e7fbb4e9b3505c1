package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"time"
	"unicode"

	"go.uber.org/zap"

	"github.com/mailgate/caddy-mailgate/internal/redirect"

	"github.com/caddyserver/caddy/v2"

	"github.com/mailgate/caddy-mailgate/internal/directory"
	"github.com/mailgate/caddy-mailgate/internal/flow"
	"github.com/mailgate/caddy-mailgate/internal/session"
	"github.com/mailgate/caddy-mailgate/internal/ticket"
	"github.com/mailgate/caddy-mailgate/internal/web"
)

var realmPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// Provision checks the configuration, then builds the engine. Every error
// names the value at fault.
func (m *Mailgate) Provision(ctx caddy.Context) error {
	m.logger = ctx.Logger()
	m.access = m.logger.Named("access")
	m.observer = events{logger: m.logger}
	if err := m.applyDefaults(); err != nil {
		return err
	}
	if err := m.provisionObservers(ctx); err != nil {
		return err
	}
	base, err := parseBaseURL(m.BaseURL)
	if err != nil {
		return err
	}
	m.origin = base.Scheme + "://" + base.Host
	m.baseHost = base.Hostname()
	m.hostWarned = new(atomic.Bool)
	m.secure = base.Scheme == "https"
	if m.SiteName == "" {
		m.SiteName = base.Hostname()
	}
	allow, err := m.allowlist()
	if err != nil {
		return err
	}
	if err := checkAdmins(m.Admins); err != nil {
		return err
	}
	if len(m.AllowEmails) == 0 && len(m.AllowDomains) == 0 {
		m.logger.Warn("no allow email or allow domain configured: nobody can log in")
	}
	zone, err := timeZone(m.TimeZone)
	if err != nil {
		return err
	}
	mailer, err := m.mailer(ctx, base, zone)
	if err != nil {
		return err
	}
	m.deliveries = mailer
	pages, err := web.New()
	if err != nil {
		return err
	}

	m.realmKey = "mailgate/" + m.Realm
	r, err := loadRealm(ctx, m.realmKey, *m.Store, m.KeyRotation, m.observer, m.logger)
	if err != nil {
		m.realmKey = ""
		return err
	}
	m.store, m.storage, m.ring = r.store, ctx.Storage(), r.ring
	store := fullLogger{Store: timedStore{Store: r.store, backend: m.Store.Type, observer: m.observer}, logger: m.logger}
	users := directory.New(ctx.Storage(), m.realmKey, now)
	m.provisionSessions(r.ring, store, users, allow)
	links := m.newLinks(store, mailer, allow, users)
	m.emailLinks = m.newEmailLinks(store, users, mailer, allow, m.sessions.RevokeUser)
	codes := flow.AuthCodes{Store: store}
	tokens, err := m.provisionAPI(r.ring, store, users, links, codes)
	if err != nil {
		return err
	}
	pw := m.provisionPasswords(store, users, allow)
	signIn := m.provisionSignIn(pw)
	emailCodes := m.provisionCodes(store, mailer, allow, users, tokens, signIn)
	pw.secondFactorBy(emailCodes)
	m.pages = &web.Handler{
		Pages:          pages,
		Forms:          web.Forms{Keys: func() [][]byte { return r.ring.DeriveKeys("form token") }, Origin: m.origin, Secure: m.secure},
		Links:          links,
		Codes:          emailCodes,
		ErrorCallbacks: m.errorCallbacks(),
		Sessions:       m.sessions,
		ClientIP:       clientIP,
		Failures:       m.Limits.failures(store),
		Passwords:      &flow.PasswordStep{Store: store, Users: users, Now: now},
		EmailLinks:     m.emailLinks,
		Finish:         &flow.ClientFinish{Codes: codes, Tokens: tokens, TokenTTL: tokens.TTL, Now: now, Observer: m.observer},
		JWKS:           m.jwks(r.ring),
		JWKSMaxAge:     jwksMaxAge,
		LinkTTL:        time.Duration(m.LinkTTL),
		SiteName:       m.SiteName,
		Locale:         m.Locale.Default,
		Negotiate:      m.Locale.negotiate(),
		Prefix:         m.Prefix,
		Secure:         m.secure,
		Observer:       m.observer,
		Now:            now,
		Zone:           zone,
		Account:        m.provisionAccount(users, store, pw),
		PasswordLogin:  m.provisionPasswordLogin(pw),
	}
	m.pages.Mount()
	m.loginURL = m.origin + m.Prefix + "/login"
	m.challenge = fmt.Sprintf(`Mailgate realm=%q, login_url=%q`, m.Realm, m.loginURL)
	m.lastHealth = new(atomic.Pointer[healthAnswer])
	live.Store(m, struct{}{})
	return nil
}

// provisionSessions builds the session manager: tokens signed by the
// realm's ring, revocations kept as markers, identities from the directory
// that this config's allow rules admit.
func (m *Mailgate) provisionSessions(ring *session.KeyRing, revocations session.Revocations, users *directory.Directory, allow flow.Allowlist) {
	m.headers = newHeaderSet(m.IdentityHeaders)
	m.headers.assertion = m.Assertion.headerName()
	m.assertions = m.provisionAssertions(ring)
	m.sessions = session.NewManager(session.Config{
		Signer:        session.Signer{Ring: ring, Issuer: m.origin, Audience: m.Realm, Now: now},
		TTL:           time.Duration(m.SessionTTL),
		PersistentTTL: time.Duration(m.PersistentSessionTTL),
		Idle:          time.Duration(m.SessionIdle),
		Revocations:   revocations,
		Identities:    newIdentities(users, allow, now),
		Prepare:       m.headers.prepare,
		CacheSize:     m.SessionCache,
		CacheCounters: m.decisions.cache,
		// with_logout must outlast the longest-lived user JWT.
		UserTokenTTL: m.longestProjectTokenTTL(),
	})
}

// jwks publishes the ring's public keys, reading the ring from storage again
// when the last reading is older than keyRefresh, so that keys stored by
// another instance are published without a reload.
func (m *Mailgate) jwks(ring *session.KeyRing) func(context.Context) []byte {
	return func(ctx context.Context) []byte {
		if err := ring.Refresh(ctx, keyRefresh); err != nil {
			m.logger.Warn("publishing the keys in hand", zap.Error(err))
		}
		return ring.JWKS()
	}
}

// urls builds the links that are mailed, from base_url and the prefix.
func (m *Mailgate) urls() web.URLs { return web.URLs{Origin: m.origin, Prefix: m.Prefix} }

// newLinks builds the mailed-link flow.
func (m *Mailgate) newLinks(store ticket.Store, mailer flow.Mailer, allow flow.Allowlist, users *directory.Directory) *flow.MagicLink {
	return &flow.MagicLink{
		Store:     store,
		Users:     users,
		Mailer:    mailer,
		Allowlist: allow,
		LinkURL:   m.urls().LinkURL,
		TTL:       time.Duration(m.LinkTTL),
		SiteName:  m.SiteName,
		Now:       now,
		Limits:    m.Limits.linkLimits(),
		Observer:  m.observer,
	}
}

// Cleanup releases this instance's hold on the realm's shared state; the
// state itself lives on while a newer config uses the same realm.
func (m *Mailgate) Cleanup() error {
	// Mails still queued are delivered or given up (their links dropped)
	// before the realm's store may close. Caddy also cleans up a module
	// whose Provision failed, without ending its context: Stop ends the
	// queue itself rather than wait for that.
	live.Delete(m)
	if m.deliveries != nil {
		m.deliveries.Stop()
		closeSMTP(m.deliveries)
	}
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
	if err := checkRealm(m.Realm); err != nil {
		return err
	}
	if _, err := timeZone(m.TimeZone); err != nil {
		return err
	}
	if m.Prefix == "" {
		m.Prefix = defaultPrefix
	}
	m.Prefix = strings.TrimSuffix(m.Prefix, "/")
	if err := checkPrefix(m.Prefix); err != nil {
		return err
	}
	if m.SessionTTL == 0 {
		m.SessionTTL = caddy.Duration(defaultSessionTTL)
	}
	if m.LinkTTL == 0 {
		m.LinkTTL = caddy.Duration(defaultLinkTTL)
	}
	if err := checkSessionTTL(m.SessionTTL); err != nil {
		return err
	}
	if m.PersistentSessionTTL == 0 {
		m.PersistentSessionTTL = caddy.Duration(maxSessionTTL)
	}
	if err := checkPersistentSessionTTL(m.PersistentSessionTTL, m.SessionTTL); err != nil {
		return err
	}
	if err := checkSessionIdle(m.SessionIdle); err != nil {
		return err
	}
	if err := m.Assertion.check(); err != nil {
		return err
	}
	if m.SessionCache == 0 {
		m.SessionCache = session.DefaultCacheSize
	}
	if err := checkSessionCache(m.SessionCache); err != nil {
		return err
	}
	if err := checkLinkTTL(m.LinkTTL); err != nil {
		return err
	}
	if m.KeyRotation == 0 {
		m.KeyRotation = caddy.Duration(defaultKeyRotation)
	}
	if err := checkKeyRotation(m.KeyRotation); err != nil {
		return err
	}
	// JSON configs reach here without the Caddyfile's checks.
	if err := m.Limits.check(); err != nil {
		return err
	}
	for _, c := range m.Clients {
		if err := c.check(); err != nil {
			return err
		}
	}
	if m.PasswordHashingMemory != 0 {
		if err := checkHashingMemory(m.PasswordHashingMemory); err != nil {
			return err
		}
	}
	if err := checkPasswordMaxAge(m.PasswordMaxAge); err != nil {
		return err
	}
	if err := checkPasswordKeepSignedIn(m.PasswordKeepSignedIn); err != nil {
		return err
	}
	if err := m.checkProjects(); err != nil {
		return err
	}
	if m.Locale == nil {
		m.Locale = &LocaleConfig{}
	}
	if err := m.Locale.check(); err != nil {
		return err
	}
	if m.EmailLinks == nil {
		m.EmailLinks = &EmailLinksConfig{}
	}
	if err := m.EmailLinks.applyDefaults(); err != nil {
		return err
	}
	if m.Store == nil {
		m.Store = &StoreConfig{}
	}
	if err := m.Store.applyDefaults(); err != nil {
		return err
	}
	return nil
}

// The checks below need nothing but the value, so the Caddyfile parser runs
// them too, and an error carries the file and line.

func checkRealm(realm string) error {
	if !realmPattern.MatchString(realm) {
		return fmt.Errorf("mailgate: realm %q: use 1 to 64 letters, digits, '-' or '_'", realm)
	}
	return nil
}

// checkPrefix accepts a path of plain segments. The contracts' routes are
// ServeMux patterns under the prefix, so a brace would turn a segment into
// a wildcard and white space would split a pattern.
func checkPrefix(prefix string) error {
	p := strings.TrimSuffix(prefix, "/")
	if !strings.HasPrefix(p, "/") || strings.ContainsAny(p, "?#{}%") || strings.ContainsFunc(p, unicode.IsSpace) || strings.Contains(p, "//") {
		return fmt.Errorf("mailgate: prefix %q: must be a path such as /.mailgate", prefix)
	}
	return nil
}

// Bounds of session_cache: below about a thousand entries otter's
// admission no longer keeps the sessions in use; above, a handler could hold
// gigabytes.
const minSessionCache, maxSessionCache = 1 << 10, 1 << 24

func checkSessionCache(n int) error {
	if n < minSessionCache || n > maxSessionCache {
		return fmt.Errorf("mailgate: session_cache %d: must be between %d and %d entries", n, minSessionCache, maxSessionCache)
	}
	return nil
}

func checkSessionTTL(d caddy.Duration) error {
	if d < caddy.Duration(time.Minute) || d > caddy.Duration(maxSessionTTL) {
		return fmt.Errorf("mailgate: session_ttl %s: must be between 1m and 720h (30 days)", time.Duration(d))
	}
	return nil
}

func checkPersistentSessionTTL(d, sessionTTL caddy.Duration) error {
	if d < sessionTTL || d > caddy.Duration(maxSessionTTL) {
		return fmt.Errorf("mailgate: persistent_session_ttl %s: must be between session_ttl (%s) and 720h (30 days)", time.Duration(d), time.Duration(sessionTTL))
	}
	return nil
}

// checkSessionIdle accepts off (0), or at least two of the refresh
// intervals, so that a session in use is refreshed before it counts as idle.
func checkSessionIdle(d caddy.Duration) error {
	if d != 0 && (d < caddy.Duration(2*session.RefreshEvery) || d > caddy.Duration(maxSessionTTL)) {
		return fmt.Errorf("mailgate: session_idle %s: must be between 2m and 720h (30 days), or omitted for no inactivity limit", time.Duration(d))
	}
	return nil
}

func checkLinkTTL(d caddy.Duration) error {
	if d < caddy.Duration(time.Minute) || d > caddy.Duration(flow.MaxLinkTTL) {
		return fmt.Errorf("mailgate: link_ttl %s: must be between 1m and 24h", time.Duration(d))
	}
	return nil
}

// errNoBaseURL is the error of a config without base_url: the Caddyfile
// parser returns it with the line of the block that lacks it.
var errNoBaseURL = errors.New("mailgate: base_url is required (the origin of mailed links, such as https://app.example.com)")

// parseBaseURL accepts an origin: scheme and host, nothing else. Plain HTTP
// is allowed for loopback hosts only, because the session cookie then loses
// its Secure flag.
func parseBaseURL(s string) (*url.URL, error) {
	if s == "" {
		return nil, errNoBaseURL
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
	if u.Scheme == "http" && !redirect.IsLoopback(u.Hostname()) {
		return nil, fmt.Errorf("mailgate: base_url %q: plain http is allowed for localhost only; use https", s)
	}
	return u, nil
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
		// A "*" is a whole leading label or nothing: "*.example.com".
		name := strings.TrimPrefix(d, "*.")
		if name == "" || strings.ContainsAny(name, "@/ *") || !strings.Contains(name, ".") {
			return flow.Allowlist{}, fmt.Errorf("mailgate: allow domain %q: not a domain name, or *.domain for every subdomain", d)
		}
	}
	return flow.NewAllowlist(emails, m.AllowDomains), nil
}
