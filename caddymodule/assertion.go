package caddymodule

import (
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/mailgate/caddy-mailgate/internal/session"
)

// AssertionConfig sets the signed identity assertion: a short-lived JWT in
// a request header that tells the upstream who the request comes from,
// signed with the realm's Ed25519 keys and verifiable against
// `{prefix}/jwks.json` (docs/assertion.md). Unlike the plain identity
// headers, an app can check it does not come from something else on its
// network.
type AssertionConfig struct {
	// Off sends no assertion. Incoming copies of the header are removed
	// all the same.
	Off bool `json:"off,omitempty"`

	// Header carries the assertion. Default: `Mailgate-Assertion`.
	Header string `json:"header,omitempty"`

	// Audience is the assertion's `aud`: what the app checks it was meant
	// for. Default: base_url's origin.
	Audience string `json:"audience,omitempty"`

	// TTL is how long an assertion is valid, 10s to 5m. The guard signs
	// one per session and hands it to that session's requests until a
	// fifth of its lifetime is left. Default: 5m.
	TTL caddy.Duration `json:"ttl,omitempty"`
}

const (
	defaultAssertionHeader = "Mailgate-Assertion"
	minAssertionTTL        = 10 * time.Second
)

// headerName returns the assertion's header, configured or the default.
func (c *AssertionConfig) headerName() string {
	if c != nil && c.Header != "" {
		return canonical(c.Header)
	}
	return defaultAssertionHeader
}

// check refuses values no config can use; the Caddyfile parser runs it too.
func (c *AssertionConfig) check() error {
	if c == nil {
		return nil
	}
	if c.Header != "" && !validHeaderName(c.Header) {
		return fmt.Errorf("mailgate: assertion header %q: not a header name", c.Header)
	}
	if c.TTL != 0 && (c.TTL < caddy.Duration(minAssertionTTL) || c.TTL > caddy.Duration(session.MaxAssertionTTL)) {
		return fmt.Errorf("mailgate: assertion ttl %s: must be between 10s and 5m", time.Duration(c.TTL))
	}
	return nil
}

// validHeaderName reports whether name is an HTTP token (RFC 9110).
func validHeaderName(name string) bool {
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' ||
			c == '!' || c == '#' || c == '$' || c == '%' || c == '&' || c == '\'' || c == '*' ||
			c == '+' || c == '.' || c == '^' || c == '`' || c == '|' || c == '~') {
			return false
		}
	}
	return name != ""
}

// provisionAssertions builds the guard's assertion signer, or nil when the
// assertion is off.
func (m *Mailgate) provisionAssertions(ring *session.KeyRing) *assertions {
	c := m.Assertion
	if c == nil {
		c = &AssertionConfig{}
	}
	if c.Off {
		return nil
	}
	ttl := session.MaxAssertionTTL
	if c.TTL != 0 {
		ttl = time.Duration(c.TTL)
	}
	audience := m.origin
	if c.Audience != "" {
		audience = c.Audience
	}
	return &assertions{
		signer: &session.Assertions{
			Signer: session.Signer{Ring: ring, Issuer: m.origin, Audience: audience, Now: now},
			TTL:    ttl,
		},
		margin: ttl / 5,
	}
}

// assertions hands each request of a session its assertion: signed once per
// session and kept with the session's identity until a fifth of its
// lifetime is left, so a request costs a load and a comparison, never a
// signature. Its header is the headerSet's (headers.go), which also strips
// incoming copies.
type assertions struct {
	signer *session.Assertions
	// margin is how long before its exp an assertion is replaced: an app
	// always gets one with at least that much left.
	margin time.Duration
}

// signedAssertion is one session's assertion.
type signedAssertion struct {
	token string
	// renew is when, in Unix nanoseconds, a request signs a new one.
	renew int64
}

// value returns s's assertion for a request, signing it first if the one
// kept in id is missing or due. Two requests that find it due at once may
// both sign; either result serves.
func (a *assertions) value(s *session.Session, id *identity) (string, error) {
	sa := id.assertion.Load()
	if sa == nil || now().UnixNano() >= sa.renew {
		token, exp, err := a.signer.Sign(s)
		if err != nil {
			return "", err
		}
		renew := exp.Add(-a.margin)
		if !exp.Before(s.Expiry) {
			// Cut short by the session's end: no later one can help.
			renew = exp
		}
		sa = &signedAssertion{token: token, renew: renew.UnixNano()}
		id.assertion.Store(sa)
	}
	return sa.token, nil
}
