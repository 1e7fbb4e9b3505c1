package session

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jws"
	"github.com/lestrrat-go/jwx/v2/jwt"
)

// TypSession is the JOSE "typ" of a session token. Each kind of token has its
// own typ so that one kind can never be replayed as another.
const TypSession = "mailgate-session+jwt"

// Skew is how far clocks may disagree when checking iat and exp.
const Skew = 30 * time.Second

// ErrInvalid is returned for any token that does not verify. The cause is
// wrapped for logs; callers must not show it to the client.
var ErrInvalid = errors.New("session: invalid token")

// Signer signs and verifies the tokens of one issuer and audience.
type Signer struct {
	Ring     *KeyRing
	Issuer   string
	Audience string
	Now      func() time.Time
}

// Sign signs t as a JWT of the given typ with the ring's signing key, setting
// iss, aud and iat.
func (s Signer) Sign(typ string, t jwt.Token) (string, error) {
	s.stamp(t)
	signing := s.Ring.keys.Load().signing(s.Now())
	hdr := jws.NewHeaders()
	_ = hdr.Set(jws.TypeKey, typ)
	_ = hdr.Set(jws.KeyIDKey, signing.jwk.KeyID())
	b, err := jwt.Sign(t, jwt.WithKey(jwa.EdDSA, signing.raw, jws.WithProtectedHeaders(hdr)))
	if err != nil {
		return "", fmt.Errorf("session: signing: %w", err)
	}
	return string(b), nil
}

// stamp sets the claims every token of this signer carries.
func (s Signer) stamp(t jwt.Token) {
	_ = t.Set(jwt.IssuerKey, s.Issuer)
	_ = t.Set(jwt.AudienceKey, s.Audience)
	_ = t.Set(jwt.IssuedAtKey, s.Now().Truncate(time.Second))
}

// Verify checks token as a JWT of the given typ: one signature, alg EdDSA, a
// kid from the ring, the typ, the claims iss, aud, iat and exp within Skew,
// exp, iat and nbf as JSON numbers, and a lifetime (exp − iat) of at most
// maxTTL plus Skew, the longest this kind of token is ever issued for. Every
// failure wraps ErrInvalid.
func (s Signer) Verify(typ, token string, maxTTL time.Duration) (jwt.Token, error) {
	msg, err := jws.ParseString(token)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	sigs := msg.Signatures()
	if len(sigs) != 1 {
		return nil, fmt.Errorf("%w: %d signatures", ErrInvalid, len(sigs))
	}
	hdr := sigs[0].ProtectedHeaders()
	if hdr.Algorithm() != jwa.EdDSA {
		return nil, fmt.Errorf("%w: alg %q", ErrInvalid, hdr.Algorithm())
	}
	if hdr.Type() != typ {
		return nil, fmt.Errorf("%w: typ %q, want %q", ErrInvalid, hdr.Type(), typ)
	}
	pub, ok := s.Ring.keys.Load().public[hdr.KeyID()]
	if !ok {
		return nil, fmt.Errorf("%w: unknown kid %q", ErrInvalid, hdr.KeyID())
	}
	t, err := jwt.ParseString(token, append(s.claimOptions(), jwt.WithKey(jwa.EdDSA, pub))...)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if err := checkClaims(msg.Payload(), t, maxTTL); err != nil {
		return nil, err
	}
	return t, nil
}

// claimOptions are jwx's checks of the claims: iss, aud, exp and iat
// required and within Skew of the signer's clock.
func (s Signer) claimOptions() []jwt.ParseOption {
	return []jwt.ParseOption{
		jwt.WithValidate(true),
		jwt.WithClock(jwt.ClockFunc(s.Now)),
		jwt.WithAcceptableSkew(Skew),
		jwt.WithIssuer(s.Issuer),
		jwt.WithAudience(s.Audience),
		jwt.WithRequiredClaim(jwt.ExpirationKey),
		jwt.WithRequiredClaim(jwt.IssuedAtKey),
	}
}

// checkClaims adds what jwx does not check: dates that are JSON numbers,
// and a lifetime (exp − iat) that is positive and at most maxTTL plus Skew.
// Positive, because jwx skips its exp check for an exp of 0 and its iat
// check for an iat of 0.
func checkClaims(payload []byte, t jwt.Token, maxTTL time.Duration) error {
	if err := numericDates(payload); err != nil {
		return err
	}
	if life := t.Expiration().Sub(t.IssuedAt()); life <= 0 || life > maxTTL+Skew {
		return fmt.Errorf("%w: lifetime %s outside (0, %s]", ErrInvalid, life, maxTTL+Skew)
	}
	return nil
}

// numericDates refuses exp, iat and nbf that are not JSON numbers (RFC 7519
// section 2, NumericDate). jwx also reads a string such as "1767225600",
// which a token of mailgate's never holds.
func numericDates(payload []byte) error {
	var c struct {
		Exp json.RawMessage `json:"exp"`
		Iat json.RawMessage `json:"iat"`
		Nbf json.RawMessage `json:"nbf"`
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		return fmt.Errorf("%w: claims: %v", ErrInvalid, err)
	}
	for name, v := range map[string]json.RawMessage{"exp": c.Exp, "iat": c.Iat, "nbf": c.Nbf} {
		if v != nil && !isJSONNumber(v) {
			return fmt.Errorf("%w: %s is not a JSON number", ErrInvalid, name)
		}
	}
	return nil
}

// isJSONNumber reports whether v, a valid JSON value, is a number: only
// numbers start with a digit or a minus sign.
func isJSONNumber(v json.RawMessage) bool {
	return len(v) > 0 && (v[0] == '-' || ('0' <= v[0] && v[0] <= '9'))
}
