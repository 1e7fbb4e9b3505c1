package session

import (
	"cmp"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwt"

	"github.com/mailgate/caddy-mailgate/internal/ticket"
)

// ErrRevoked is returned for a well-signed session that was logged out, on
// its own or with every session of its user issued before it (RevokeUser).
var ErrRevoked = errors.New("session: revoked")

// Identity is whom a session speaks for.
type Identity struct {
	UserID string
	Email  string
	Name   string
}

// Session is a verified session token.
type Session struct {
	Identity
	ID     string
	Expiry time.Time
	// AMR is how the person signed in (RFC 8176 values, then the method:
	// see AMR), nil for a session issued before sessions said so. It may
	// be shared with other sessions: read it, never write.
	AMR []string
	// AuthTime is when the person signed in; a session refreshed for
	// session_idle keeps it, and its absolute lifetime counts from it.
	AuthTime time.Time
	// Persistent: the person asked to keep the session; its cookie
	// outlives the browser.
	Persistent bool
	// Data is what Manager.Prepare returned for this session. It is computed
	// once per token, so the guard can keep per-request work to lookups.
	Data any

	// issuedAt is when the session began in Unix seconds (auth_time, or
	// iat for a token without it), held against the user's cut-off
	// (RevokeUser): a token refreshed for session_idle keeps it, so no
	// refresh outlives a logout-all.
	issuedAt int64
	// The keys of the session's and of its user's revocations, made once
	// per token so the per-request checks do not allocate.
	revokedKey     string
	userRevokedKey string
	// refreshed is the token's iat in Unix seconds: when the session was
	// last seen in use, to a minute, for Config.Idle.
	refreshed int64
	// renewal is the token that replaced this one (Refresh), handed to
	// every request that still carries this one.
	renewal atomic.Pointer[Renewal]
}

// Revocations records logged-out session ids, and per user the time before
// which every session was logged out, until the tokens they concern expire,
// never dropped to make room. Revoked and RevokedBefore are read on every
// request from this process's memory; an error means the set may be stale
// and the session is refused. A user's cut-off only ever moves later. The
// ticket store satisfies it (see ticket.Revocations), so a cluster sharing a
// store shares logouts.
type Revocations interface {
	Revoke(ctx context.Context, key string, ttl time.Duration) error
	Revoked(key string) (bool, error)
	RevokeBefore(ctx context.Context, key string, before time.Time, ttl time.Duration) error
	RevokedBefore(key string) (time.Time, bool, error)
}

// Every ticket store serves as the manager's revocation list.
var _ Revocations = (ticket.Revocations)(nil)

// Identities finds whom a session speaks for. The token carries opaque ids
// only, no address or name (a cookie should hold no personal data, NIST SP
// 800-63B-4), so they are looked up once, when a token is first verified.
// An error wrapping ErrInvalid refuses the session (no such user, or one who
// may no longer log in); any other error means the users cannot be read.
type Identities interface {
	Identity(ctx context.Context, userID string) (Identity, error)
}

// Manager issues, verifies and revokes sessions.
type Manager struct {
	signer        Signer
	ttl           time.Duration
	persistentTTL time.Duration
	// maxTTL is the longest lifetime a session token may claim.
	maxTTL      time.Duration
	revocations Revocations
	identities  Identities
	prepare     func(*Session) any
	cache       *verifiedCache
	// revokeFor is how long a RevokeUser cut-off must last: the longest
	// lifetime of anything checked against it.
	revokeFor time.Duration
	// idle is Config.Idle.
	idle time.Duration
	// counters is Config.CacheCounters.
	counters CacheCounters
}

// CacheCounters hears the verified-token cache's lookups, for the
// operator's metrics. Each is called on every request the guard checks:
// it must not allocate (a Prometheus counter resolved at provisioning,
// its Inc, is fine). Nil: not counted.
type CacheCounters struct {
	// Hit is called when a token was found verified in the cache.
	Hit func()
	// Miss is called when a token had to be verified: its signature
	// checked and its user read.
	Miss func()
}

// Config configures a Manager.
type Config struct {
	Signer      Signer
	TTL         time.Duration
	Revocations Revocations
	Identities  Identities
	// Prepare, if set, is called once when a token is first verified; its
	// result is kept as Session.Data for as long as the token is cached.
	Prepare func(*Session) any
	// CacheSize bounds the number of verified tokens remembered.
	CacheSize int
	// UserTokenTTL is the longest lifetime of the user JWTs that
	// UserTokenRevoked checks, when it is longer than TTL: RevokeUser's
	// cut-off then lasts until the last of them expires.
	UserTokenTTL time.Duration
	// PersistentTTL is the lifetime of a session the person asked to keep
	// (IssuePersistent); zero: TTL.
	PersistentTTL time.Duration
	// Idle, if set, refuses a session unused for longer: one whose token
	// was issued, or last refreshed, Idle ago. Refresh re-issues a token
	// in use at most once every RefreshEvery, so a session in use lives on
	// until its absolute lifetime (TTL, or PersistentTTL), counted from the
	// sign-in, ends it. Zero: no inactivity limit.
	Idle time.Duration
	// CacheCounters, if set, counts the cache's hits and misses.
	CacheCounters CacheCounters
}

// count reports one lookup to whichever counter is set.
func (c CacheCounters) count(hit bool) {
	if hit && c.Hit != nil {
		c.Hit()
	} else if !hit && c.Miss != nil {
		c.Miss()
	}
}

// RefreshEvery is how often, at most, Refresh re-issues a session in use
// when Config.Idle is set: a session idle for between Idle − RefreshEvery
// and Idle is refused.
const RefreshEvery = time.Minute

// NewManager returns a Manager for cfg.
func NewManager(cfg Config) *Manager {
	persistent := cmp.Or(cfg.PersistentTTL, cfg.TTL)
	return &Manager{
		signer:        cfg.Signer,
		ttl:           cfg.TTL,
		persistentTTL: persistent,
		maxTTL:        max(cfg.TTL, persistent),
		revocations:   cfg.Revocations,
		identities:    cfg.Identities,
		prepare:       cfg.Prepare,
		revokeFor:     max(cfg.TTL, persistent, cfg.UserTokenTTL),
		idle:          cfg.Idle,
		counters:      cfg.CacheCounters,
		cache:         newVerifiedCache(cfg.CacheSize),
	}
}

// IssueOptions says what a new session carries beyond its user.
type IssueOptions struct {
	// Method is how the person signed in, as flow.Method names it (link,
	// code, password, invitation, password_reset): the token's amr claim
	// (see AMR). Empty: not known, and no amr.
	Method string
	// Persistent: the person asked to keep the session ("keep me signed
	// in"); it lasts PersistentTTL and its cookie outlives the browser.
	Persistent bool
}

// Issue creates a session for the user and returns its signed token, which
// names the user and the session by id and nothing else. IssueWith also
// says how the person signed in.
func (m *Manager) Issue(userID string) (token string, expiry time.Time, err error) {
	return m.IssueWith(userID, IssueOptions{})
}

// IssuePersistent is Issue for a session the person asked to keep ("keep
// me signed in"): it lasts PersistentTTL.
func (m *Manager) IssuePersistent(userID string) (token string, expiry time.Time, err error) {
	return m.IssueWith(userID, IssueOptions{Persistent: true})
}

// IssueWith creates a session for the user as o says and returns its
// signed token: ids, how and when the person signed in, and whether the
// session is to be kept; nothing that names the person.
func (m *Manager) IssueWith(userID string, o IssueOptions) (token string, expiry time.Time, err error) {
	ttl := m.ttl
	if o.Persistent {
		ttl = m.persistentTTL
	}
	now := m.signer.Now().Truncate(time.Second)
	expiry = now.Add(ttl)
	t := jwt.New()
	_ = t.Set(jwt.SubjectKey, userID)
	_ = t.Set(jwt.ExpirationKey, expiry)
	_ = t.Set("sid", ticket.NewSecret())
	_ = t.Set("auth_time", now.Unix())
	if amr := AMR(o.Method); amr != nil {
		_ = t.Set("amr", amr)
	}
	if o.Persistent {
		_ = t.Set("persistent", true)
	}
	token, err = m.signer.signSession(t)
	return token, expiry, err
}

// Verify returns the session behind token. A token seen before costs a hash,
// a map lookup and the revocation check; only a new token pays for the
// signature and the identity lookup. Errors other than ErrInvalid and
// ErrRevoked mean the revocation list or the users could not be read: the
// caller must fail closed.
func (m *Manager) Verify(ctx context.Context, token string) (*Session, error) {
	key := tokenKey(token)
	now := m.signer.Now()
	s, ok := m.cache.get(key, now)
	m.counters.count(ok)
	if !ok {
		var err error
		if s, err = m.verify(ctx, token); err != nil {
			return nil, err
		}
		m.cache.put(key, s, s.Expiry.Add(Skew), now)
	}
	revoked, err := m.revocations.Revoked(s.revokedKey)
	if err != nil {
		return nil, fmt.Errorf("session: reading revocations: %w", err)
	}
	if revoked {
		return nil, ErrRevoked
	}
	cutoff, ok, err := m.revocations.RevokedBefore(s.userRevokedKey)
	if err != nil {
		return nil, fmt.Errorf("session: reading revocations: %w", err)
	}
	// Unix() floors a cut-off within a second to that second: see
	// RevokeUser for why a session of the cut-off's second stays valid.
	if ok && s.issuedAt < cutoff.Unix() {
		return nil, ErrRevoked
	}
	if m.idle > 0 && !now.Before(time.Unix(s.refreshed, 0).Add(m.idle)) {
		return nil, errIdle
	}
	return s, nil
}

// errIdle refuses a session unused for longer than Config.Idle.
var errIdle = fmt.Errorf("%w: session unused for too long", ErrInvalid)

// Renewal is a session's token re-issued by Refresh, for the cookie.
type Renewal struct {
	Token      string
	Expiry     time.Time
	Persistent bool
	// line is the Set-Cookie line, made by the first SetCookie: every
	// request that still carries the old token gets the same one.
	line atomic.Pointer[string]
}

// SetCookie adds the renewal's session cookie to h, as http.SetCookie
// would, but formats it once: a page's requests already under way when the
// session was re-issued each hand it out again. The line goes into a
// slice of this answer's own, since a handler may rewrite a header's
// values in place (Caddy's header replacements do). secure is the site's,
// the same on every call for one Manager's renewals.
func (r *Renewal) SetCookie(h http.Header, secure bool) {
	line := r.line.Load()
	if line == nil {
		s := Cookie(r.Token, r.Expiry, secure, r.Persistent).String()
		line = &s
		r.line.Store(line)
	}
	h["Set-Cookie"] = append(h["Set-Cookie"], *line)
}

// Refresh re-issues s, a session just verified, when Config.Idle is set and
// its token is RefreshEvery old: a token of the same session, user, sign-in
// time, amr and absolute expiry, issued now, which the caller sets as the
// cookie. It returns nil when no refresh is due, which costs a comparison.
// The new token is cached as verified, with s's Data, so its next request
// is a lookup; and every request that still carries the old one gets the
// same new token, so a page's parallel requests make one.
func (m *Manager) Refresh(s *Session) (*Renewal, error) {
	if m.idle <= 0 {
		return nil, nil
	}
	now := m.signer.Now()
	if now.Before(time.Unix(s.refreshed, 0).Add(RefreshEvery)) {
		return nil, nil
	}
	if r := s.renewal.Load(); r != nil {
		return r, nil
	}
	iat := now.Truncate(time.Second)
	if iat.Before(s.AuthTime) {
		iat = s.AuthTime
	}
	t := jwt.New()
	_ = t.Set(jwt.SubjectKey, s.UserID)
	_ = t.Set(jwt.ExpirationKey, s.Expiry)
	_ = t.Set("sid", s.ID)
	_ = t.Set("auth_time", s.AuthTime.Unix())
	if len(s.AMR) > 0 {
		_ = t.Set("amr", s.AMR)
	}
	if s.Persistent {
		_ = t.Set("persistent", true)
	}
	token, err := m.signer.signSessionAt(t, iat)
	if err != nil {
		return nil, err
	}
	next := &Session{
		Identity:       s.Identity,
		ID:             s.ID,
		Expiry:         s.Expiry,
		AMR:            s.AMR,
		AuthTime:       s.AuthTime,
		Persistent:     s.Persistent,
		Data:           s.Data,
		issuedAt:       s.issuedAt,
		revokedKey:     s.revokedKey,
		userRevokedKey: s.userRevokedKey,
		refreshed:      iat.Unix(),
	}
	m.cache.put(tokenKey(token), next, next.Expiry.Add(Skew), now)
	s.renewal.CompareAndSwap(nil, &Renewal{Token: token, Expiry: s.Expiry, Persistent: s.Persistent})
	return s.renewal.Load(), nil
}

// tokenKey hashes token without copying it to the heap: []byte(token) would
// allocate on every request, while a session token fits the stack buffer.
func tokenKey(token string) [32]byte {
	var buf [2048]byte
	if len(token) > len(buf) {
		return sha256.Sum256([]byte(token))
	}
	n := copy(buf[:], token)
	return sha256.Sum256(buf[:n])
}

func (m *Manager) verify(ctx context.Context, token string) (*Session, error) {
	c, err := m.signer.verifySession(token, m.maxTTL)
	if err != nil {
		return nil, err
	}
	s := &Session{
		Expiry:     time.Unix(c.Expiry, 0).UTC(),
		AMR:        amrSlice(c.AMR),
		AuthTime:   time.Unix(c.authTime(), 0).UTC(),
		Persistent: c.Persistent,
		issuedAt:   c.authTime(),
		refreshed:  c.IssuedAt,
	}
	if s.Identity, err = m.identities.Identity(ctx, c.Subject); err != nil {
		if errors.Is(err, ErrInvalid) {
			return nil, err
		}
		return nil, fmt.Errorf("session: reading the user: %w", err)
	}
	// The id is the tail of its revocation key rather than a string of
	// its own: a cached session then holds one copy of it.
	s.revokedKey = revokedSessionPrefix + c.SessionID
	s.ID = s.revokedKey[len(revokedSessionPrefix):]
	s.userRevokedKey = userRevokedPrefix + s.UserID
	if m.prepare != nil {
		s.Data = m.prepare(s)
	}
	return s, nil
}

// Revoke ends s everywhere its revocation list is shared, until the token
// would have expired anyway.
func (m *Manager) Revoke(ctx context.Context, s *Session) error {
	ttl := s.Expiry.Add(Skew).Sub(m.signer.Now())
	if ttl <= 0 {
		return nil
	}
	return m.revocations.Revoke(ctx, s.revokedKey, ttl)
}

// revokedSessionPrefix starts the key of a logged-out session (Revoke).
const revokedSessionPrefix = "revoked-session:"

// userRevokedPrefix starts the key of a user's cut-off (RevokeUser).
const userRevokedPrefix = "revoked-user:"

// RevokeUser ends, everywhere its revocation list is shared, every session
// of userID issued before before, for logout-all: a login that asks for it
// passes its new session's issue time, or any time read from the manager's
// clock before issuing it (a later one would refuse the new session too).
//
// Session tokens carry their iat in whole seconds, so the cut-off is before
// floored to the second, and a session counts as issued before it only if
// its iat is an earlier second: the new session, whose iat is that second
// or later, stays valid. The price is that a session issued earlier within
// the same second also stays valid; refusing that second instead would
// refuse the new session, which is the one the user just logged in with.
//
// The cut-off is kept until the last session it concerns would be refused
// anyway: a session issued before it lives at most ttl + Skew (the lifetime
// verify accepts) and is accepted up to Skew past its exp; user JWTs
// (UserTokenRevoked) as long as Config.UserTokenTTL says.
func (m *Manager) RevokeUser(ctx context.Context, userID string, before time.Time) error {
	cutoff := before.Truncate(time.Second)
	ttl := cutoff.Add(m.revokeFor + 2*Skew).Sub(m.signer.Now())
	if ttl <= 0 {
		return nil
	}
	return m.revocations.RevokeBefore(ctx, userRevokedPrefix+userID, cutoff, ttl)
}

// UserTokenRevoked reports whether a user JWT of userID issued at iat was
// ended by RevokeUser, by the rule sessions follow. It reads the local
// revocation set, as the guard does; an error means the set may be stale.
func (m *Manager) UserTokenRevoked(userID string, iat time.Time) (bool, error) {
	cutoff, ok, err := m.revocations.RevokedBefore(userRevokedPrefix + userID)
	if err != nil {
		return false, fmt.Errorf("session: reading revocations: %w", err)
	}
	return ok && iat.Unix() < cutoff.Unix(), nil
}

func stringClaim(t jwt.Token, name string) (string, bool) {
	v, ok := t.Get(name)
	if !ok {
		return "", false
	}
	s, ok := v.(string)
	return s, ok
}
