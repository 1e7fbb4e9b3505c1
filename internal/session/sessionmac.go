package session

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
	"github.com/lestrrat-go/jwx/v2/jwt"
)

// Session tokens are MACed (HS256), not signed. Only mailgate instances ever
// verify a session, and they share the key ring through storage, so a
// secret key is as safe there as a signature and costs a microsecond where
// an Ed25519 check costs eighty. Every token someone else verifies (ID
// tokens, user JWTs, access tokens) stays Ed25519 and published in the
// JWKS. Each ring key derives its own MAC key, so session MAC keys are
// scheduled, published to other instances and retired with the ring.

// sessionMACPurpose separates the session MAC key from every other key
// derived from the ring (see DeriveKeys).
const sessionMACPurpose = "session mac"

// macKey is one ring key's session MAC key.
type macKey struct {
	kid string
	// header is the base64url protected header of every session token
	// MACed with this key. It is the only header a session may carry: a
	// token with any other (another alg, an extra parameter such as crit
	// or b64, another spelling of the same JSON) is refused before
	// anything else is read.
	header string
	key    []byte
	// ipad and opad are the key padded and masked as HMAC (RFC 2104)
	// starts each of its two hashes.
	ipad, opad [sha256.BlockSize]byte
}

func newMACKey(k jwk.Key) *macKey {
	mk := &macKey{
		kid:    k.KeyID(),
		header: sessionHeader(k.KeyID()),
		key:    deriveKey(k, sessionMACPurpose),
	}
	for i := range mk.ipad {
		var b byte
		if i < len(mk.key) {
			b = mk.key[i]
		}
		mk.ipad[i], mk.opad[i] = b^0x36, b^0x5c
	}
	return mk
}

// sessionHeader is the encoded header jwx writes for a session token with
// kid: the parameters in the order it sorts them. A test checks that every
// issued token carries exactly this.
func sessionHeader(kid string) string {
	return base64.RawURLEncoding.EncodeToString(
		fmt.Appendf(nil, `{"alg":"HS256","kid":%q,"typ":%q}`, kid, TypSession))
}

// maxStackMAC is the longest signing input sum hashes on the stack.
const maxStackMAC = 2048

// sum writes HMAC-SHA-256 of the signing input (header "." payload, as
// they appear in the token) into dst. It is HMAC spelt out over one-shot
// hashes of stack buffers, because crypto/hmac's hash.Hash values move
// their input to the heap: a guess at a session then costs no allocation.
// TestMACIsHMAC holds it to crypto/hmac.
func (mk *macKey) sum(dst *[sha256.Size]byte, signingInput string) {
	if len(signingInput) > maxStackMAC {
		h := hmac.New(sha256.New, mk.key)
		_, _ = io.WriteString(h, signingInput)
		// Through a copy: handing dst to the interface would move it to
		// the heap on every call.
		copy(dst[:], h.Sum(nil))
		return
	}
	var inner [sha256.BlockSize + maxStackMAC]byte
	copy(inner[:], mk.ipad[:])
	n := copy(inner[sha256.BlockSize:], signingInput)
	var outer [sha256.BlockSize + sha256.Size]byte
	copy(outer[:], mk.opad[:])
	innerSum := sha256.Sum256(inner[:sha256.BlockSize+n])
	copy(outer[sha256.BlockSize:], innerSum[:])
	*dst = sha256.Sum256(outer[:])
}

// sessionClaims are what a verified session token says.
type sessionClaims struct {
	Subject   string
	SessionID string
	IssuedAt  int64
	Expiry    int64
	// AMR is how the person signed in (amr.go), in order, "" after the
	// last value: an array keeps the claims comparable.
	AMR [maxAMR]string
	// AuthTime is when the person signed in (auth_time), or 0 when the
	// token does not say, for a token issued before it did: then iat.
	AuthTime int64
	// Persistent: the person asked to keep the session; its cookie
	// outlives the browser.
	Persistent bool
}

// authTime is when the session began: its auth_time, or its iat.
func (c sessionClaims) authTime() int64 {
	if c.AuthTime != 0 {
		return c.AuthTime
	}
	return c.IssuedAt
}

// signSession MACs t as a session token with the MAC key of the ring key
// that signs now, setting iss, aud and iat.
func (s Signer) signSession(t jwt.Token) (string, error) {
	return s.signSessionAt(t, s.Now())
}

// signSessionAt is signSession with iat at rather than now: a refreshed
// session is never issued before its sign-in, whatever the clocks.
func (s Signer) signSessionAt(t jwt.Token, at time.Time) (string, error) {
	s.stamp(t)
	_ = t.Set(jwt.IssuedAtKey, at.Truncate(time.Second))
	ks := s.Ring.keys.Load()
	mk := ks.sessionMACs[sessionHeader(ks.signing(s.Now()).jwk.KeyID())]
	hdr := jws.NewHeaders()
	_ = hdr.Set(jws.TypeKey, TypSession)
	_ = hdr.Set(jws.KeyIDKey, mk.kid)
	b, err := jwt.Sign(t, jwt.WithKey(jwa.HS256, mk.key, jws.WithProtectedHeaders(hdr)))
	if err != nil {
		return "", fmt.Errorf("session: signing: %w", err)
	}
	return string(b), nil
}

// errRefused is the fast path's refusal, made once: forgeries are frequent
// and their cause is not for the client.
var errRefused = fmt.Errorf("%w: session token refused", ErrInvalid)

// verifySession checks a session token: the pinned fast path decides what
// it can (every token mailgate issues, and every forgery of one), jwx the
// rest.
func (s Signer) verifySession(token string, maxTTL time.Duration) (sessionClaims, error) {
	c, v := s.verifySessionFast(token, maxTTL)
	switch v {
	case accepted:
		return c, nil
	case rejected:
		return sessionClaims{}, errRefused
	}
	return s.verifySessionJWX(token, maxTTL)
}

// verifySessionJWX is the reference verdict on a session token, through
// jwx: the token shaped as splitSession demands (which pins alg HS256, the
// kid and the typ through the header), one MAC, and the claims as Verify
// checks them, plus a non-empty sub and sid. The fast path must agree with it on every input
// (FuzzSessionVerdicts).
func (s Signer) verifySessionJWX(token string, maxTTL time.Duration) (sessionClaims, error) {
	parts, ok := splitSession(s.Ring.keys.Load(), token)
	if !ok {
		return sessionClaims{}, fmt.Errorf("%w: not shaped like a session of this ring", ErrInvalid)
	}
	msg, err := jws.ParseString(token)
	if err != nil {
		return sessionClaims{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if n := len(msg.Signatures()); n != 1 {
		return sessionClaims{}, fmt.Errorf("%w: %d signatures", ErrInvalid, n)
	}
	t, err := jwt.ParseString(token, append(s.claimOptions(), jwt.WithKey(jwa.HS256, parts.key.key))...)
	if err != nil {
		return sessionClaims{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if err := checkClaims(msg.Payload(), t, maxTTL); err != nil {
		return sessionClaims{}, err
	}
	c := sessionClaims{Subject: t.Subject(), IssuedAt: t.IssuedAt().Unix(), Expiry: t.Expiration().Unix()}
	c.SessionID, _ = stringClaim(t, "sid")
	if c.Subject == "" || c.SessionID == "" {
		return sessionClaims{}, fmt.Errorf("%w: missing sub or sid", ErrInvalid)
	}
	if err := c.readSessionExtras(msg.Payload(), maxTTL); err != nil {
		return sessionClaims{}, err
	}
	return c, nil
}

// readSessionExtras reads and checks the claims a session may carry beyond
// the registered ones, as the fast path does: amr, one to maxAMR non-empty
// strings; auth_time, a whole JSON number after 0, no later than iat, and
// no further from exp than the longest lifetime; persistent, a boolean.
func (c *sessionClaims) readSessionExtras(payload []byte, maxTTL time.Duration) error {
	var x struct {
		AMR        json.RawMessage `json:"amr"`
		AuthTime   json.RawMessage `json:"auth_time"`
		Persistent json.RawMessage `json:"persistent"`
	}
	if err := json.Unmarshal(payload, &x); err != nil {
		return fmt.Errorf("%w: claims: %v", ErrInvalid, err)
	}
	if x.AMR != nil {
		var amr []string
		if err := json.Unmarshal(x.AMR, &amr); err != nil || len(amr) == 0 || len(amr) > maxAMR || slices.Contains(amr, "") {
			return fmt.Errorf("%w: amr is not 1 to %d strings", ErrInvalid, maxAMR)
		}
		copy(c.AMR[:], amr)
	}
	if x.AuthTime != nil {
		at, err := strconv.ParseInt(string(x.AuthTime), 10, 64)
		if err != nil || at <= 0 {
			return fmt.Errorf("%w: auth_time is not a whole NumericDate", ErrInvalid)
		}
		c.AuthTime = at
	}
	if x.Persistent != nil {
		if err := json.Unmarshal(x.Persistent, &c.Persistent); err != nil {
			return fmt.Errorf("%w: persistent is not a boolean", ErrInvalid)
		}
	}
	if !c.authTimeOK(maxTTL) {
		return fmt.Errorf("%w: auth_time %d outside [exp − %s, iat]", ErrInvalid, c.AuthTime, maxTTL+Skew)
	}
	return nil
}

// authTimeOK holds auth_time, when there is one, to iat and exp: a session
// is refreshed after it began, never before, and its absolute lifetime
// counts from when the person signed in.
func (c sessionClaims) authTimeOK(maxTTL time.Duration) bool {
	return c.AuthTime == 0 || c.AuthTime <= c.IssuedAt && time.Unix(c.Expiry, 0).Sub(time.Unix(c.AuthTime, 0)) <= maxTTL+Skew
}
