package session

import (
	"fmt"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwt"
)

// TypAssertion is the JOSE typ of the identity assertion the guard hands
// the upstream: no check of mailgate's accepts it as any other kind of
// token, and an app that pins it accepts no other kind as an assertion.
const TypAssertion = "mailgate-assertion+jwt"

// MaxAssertionTTL is the longest an assertion is valid: it proves one
// request's identity, and an app that logs it should not hold a credential
// for long.
const MaxAssertionTTL = 5 * time.Minute

// Assertions signs the identity assertion, a JWT that tells the upstream
// who the request comes from, signed with the ring's Ed25519 signing key
// and verifiable against the published JWKS, so an app need not trust the
// network between it and Caddy. Its Signer's Issuer is base_url and its
// Audience the one configured (the site's origin by default).
type Assertions struct {
	Signer Signer
	TTL    time.Duration
}

// Sign signs the assertion for the session s: sub, email, name when known,
// amr, auth_time and sid (groups once the directory keeps them), valid for TTL but never past the
// session's own expiry. It returns the token and its exp.
func (a *Assertions) Sign(s *Session) (string, time.Time, error) {
	exp := a.Signer.Now().Add(a.TTL).Truncate(time.Second)
	if s.Expiry.Before(exp) {
		exp = s.Expiry
	}
	t := jwt.New()
	_ = t.Set(jwt.SubjectKey, s.UserID)
	_ = t.Set(jwt.ExpirationKey, exp)
	_ = t.Set("email", s.Email)
	if s.Name != "" {
		_ = t.Set("name", s.Name)
	}
	if len(s.AMR) > 0 {
		_ = t.Set("amr", s.AMR)
	}
	_ = t.Set("auth_time", s.AuthTime.Unix())
	_ = t.Set("sid", s.ID)
	token, err := a.Signer.Sign(TypAssertion, t)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("session: signing the assertion: %w", err)
	}
	return token, exp, nil
}
