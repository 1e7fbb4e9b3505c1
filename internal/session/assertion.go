package session

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"
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

// assertionClaims is the assertion's payload. It is encoded from this
// struct rather than through jwx's generic token: the guard signs an
// assertion on the first request of every session it has not seen, and
// jwx's map of claims and its JSON took 140 allocations of each signature
// there (BenchmarkAssertionSign). Verifying stays with jwx (Signer.Verify),
// and the tests verify every assertion with it.
type assertionClaims struct {
	Issuer   string   `json:"iss"`
	Audience string   `json:"aud"`
	IssuedAt int64    `json:"iat"`
	Expiry   int64    `json:"exp"`
	Subject  string   `json:"sub"`
	Email    string   `json:"email"`
	Name     string   `json:"name,omitempty"`
	AMR      []string `json:"amr,omitempty"`
	AuthTime int64    `json:"auth_time"`
	SID      string   `json:"sid"`
}

// assertionHeader is the assertion's JOSE header.
type assertionHeader struct {
	Alg string `json:"alg"`
	Kid string `json:"kid"`
	Typ string `json:"typ"`
}

// Sign signs the assertion for the session s: sub, email, name when known,
// amr, auth_time and sid (groups once the directory keeps them), with the
// Signer's iss, aud and iat, valid for TTL but never past the session's own
// expiry. It returns the token and its exp.
func (a *Assertions) Sign(s *Session) (string, time.Time, error) {
	now := a.Signer.Now()
	exp := now.Add(a.TTL).Truncate(time.Second)
	if s.Expiry.Before(exp) {
		exp = s.Expiry
	}
	signing := a.Signer.Ring.keys.Load().signing(now)
	token, err := signCompact(signing.raw, assertionHeader{Alg: "EdDSA", Kid: signing.jwk.KeyID(), Typ: TypAssertion}, assertionClaims{
		Issuer:   a.Signer.Issuer,
		Audience: a.Signer.Audience,
		IssuedAt: now.Unix(),
		Expiry:   exp.Unix(),
		Subject:  s.UserID,
		Email:    s.Email,
		Name:     s.Name,
		AMR:      s.AMR,
		AuthTime: s.AuthTime.Unix(),
		SID:      s.ID,
	})
	if err != nil {
		return "", time.Time{}, fmt.Errorf("session: signing the assertion: %w", err)
	}
	return token, exp, nil
}

// signCompact signs header and claims as a JWS in compact serialization
// (RFC 7515 section 7.1) with an Ed25519 key: base64url(header) "."
// base64url(claims) "." base64url(signature over the two).
func signCompact(key ed25519.PrivateKey, header, claims any) (string, error) {
	h, err := json.Marshal(header)
	if err != nil {
		return "", err
	}
	c, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	enc := base64.RawURLEncoding
	b := make([]byte, 0, enc.EncodedLen(len(h))+enc.EncodedLen(len(c))+enc.EncodedLen(ed25519.SignatureSize)+2)
	b = enc.AppendEncode(b, h)
	b = append(b, '.')
	b = enc.AppendEncode(b, c)
	sig := ed25519.Sign(key, b)
	b = append(b, '.')
	b = enc.AppendEncode(b, sig)
	return string(b), nil
}
