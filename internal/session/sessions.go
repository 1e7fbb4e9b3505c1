package session

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwt"

	"github.com/mailgate/caddy-mailgate/internal/ticket"
)

// ErrRevoked is returned for a well-signed session that was logged out.
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
	// Data is what Manager.Prepare returned for this session. It is computed
	// once per token, so the guard can keep per-request work to lookups.
	Data any

	revokedKey string
}

// Revocations records logged-out session ids until their tokens expire,
// never dropped to make room. Revoked is read on every request from this
// process's memory; an error means the set may be stale and the session is
// refused. The ticket store satisfies it, so a cluster sharing a store
// shares logouts.
type Revocations interface {
	Revoke(ctx context.Context, key string, ttl time.Duration) error
	Revoked(key string) (bool, error)
}

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
	signer      Signer
	ttl         time.Duration
	revocations Revocations
	identities  Identities
	prepare     func(*Session) any
	cache       *verifiedCache
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
}

// NewManager returns a Manager for cfg.
func NewManager(cfg Config) *Manager {
	return &Manager{
		signer:      cfg.Signer,
		ttl:         cfg.TTL,
		revocations: cfg.Revocations,
		identities:  cfg.Identities,
		prepare:     cfg.Prepare,
		cache:       newVerifiedCache(cfg.CacheSize),
	}
}

// Issue creates a session for the user and returns its signed token, which
// names the user and the session by id and nothing else.
func (m *Manager) Issue(userID string) (token string, expiry time.Time, err error) {
	expiry = m.signer.Now().Add(m.ttl).Truncate(time.Second)
	t := jwt.New()
	_ = t.Set(jwt.SubjectKey, userID)
	_ = t.Set(jwt.ExpirationKey, expiry)
	_ = t.Set("sid", ticket.NewSecret())
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
	return s, nil
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
	c, err := m.signer.verifySession(token, m.ttl)
	if err != nil {
		return nil, err
	}
	s := &Session{ID: c.SessionID, Expiry: time.Unix(c.Expiry, 0).UTC()}
	if s.Identity, err = m.identities.Identity(ctx, c.Subject); err != nil {
		if errors.Is(err, ErrInvalid) {
			return nil, err
		}
		return nil, fmt.Errorf("session: reading the user: %w", err)
	}
	s.revokedKey = "revoked-session:" + s.ID
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

func stringClaim(t jwt.Token, name string) (string, bool) {
	v, ok := t.Get(name)
	if !ok {
		return "", false
	}
	s, ok := v.(string)
	return s, ok
}
