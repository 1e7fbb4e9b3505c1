package session

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"time"
)

// The guard sees every new session token on a proxied request, so its first
// sight is pinned to the one shape mailgate issues: the exact header of a
// ring key, a 32-byte MAC, and claims in the order and spelling jwx writes
// them. That costs a hash and a scan where jwx's general parser costs
// twenty-five microseconds and two hundred allocations. Whatever is not in
// that shape is left undecided and goes to jwx (verifySessionJWX), which
// makes the final verdict; FuzzSessionVerdicts holds the two to the same
// verdict on every input.

// verdict is the fast path's answer.
type verdict int

const (
	undecided verdict = iota // not in the pinned shape: ask jwx
	accepted
	rejected
)

// sessionMACLen is the length of an encoded HS256 MAC.
var sessionMACLen = base64.RawURLEncoding.EncodedLen(sha256.Size)

// maxFastPayload bounds the claims the fast path decodes on the stack; a
// session's are about 200 bytes.
const maxFastPayload = 1024

func (s Signer) verifySessionFast(token string, maxTTL time.Duration) (sessionClaims, verdict) {
	// The same first step as verifySessionJWX, so that they refuse the
	// same tokens for their shape.
	parts, ok := splitSession(s.Ring.keys.Load(), token)
	if !ok {
		return sessionClaims{}, rejected
	}
	var want [sha256.Size]byte
	parts.key.sum(&want, token[:len(token)-sessionMACLen-1])
	if !hmac.Equal(parts.mac[:], want[:]) {
		return sessionClaims{}, rejected
	}
	if len(parts.payload) > base64.RawURLEncoding.EncodedLen(maxFastPayload) {
		return sessionClaims{}, undecided
	}

	var raw [maxFastPayload]byte
	n, err := decode(raw[:], parts.payload)
	if err != nil {
		return sessionClaims{}, undecided
	}
	// amr, auth_time and persistent are optional: sessions issued before
	// they existed have none, and only a persistent session says so.
	var c sessionClaims
	p := claimParser{b: raw[:n]}
	p.lit(`{`)
	if p.has(`"amr":[`) {
		for i := 0; ; i++ {
			if i == maxAMR {
				p.bad = true
				break
			}
			if v := p.str(); len(v) > 0 {
				c.AMR[i] = string(v)
			} else {
				// Empty, or not a plain string: jwx decides.
				p.bad = true
			}
			if !p.has(`,`) {
				break
			}
		}
		p.lit(`],`)
	}
	p.lit(`"aud":[`)
	aud := p.str()
	p.lit(`],`)
	authTime := int64(0)
	hasAuthTime := p.has(`"auth_time":`)
	if hasAuthTime {
		authTime = p.num()
		p.lit(`,`)
	}
	p.lit(`"exp":`)
	exp := p.num()
	p.lit(`,"iat":`)
	iat := p.num()
	p.lit(`,"iss":`)
	iss := p.str()
	c.Persistent = p.has(`,"persistent":true`)
	p.lit(`,"sid":`)
	sid := p.str()
	p.lit(`,"sub":`)
	sub := p.str()
	p.lit(`}`)
	if p.bad || len(p.b) != 0 {
		return sessionClaims{}, undecided
	}

	// From here on, the checks of verifySessionJWX in jwx's own terms:
	// times truncated to the second, and an exp or iat of 0 not checked
	// by jwx but refused by the lifetime.
	if string(aud) != s.Audience || string(iss) != s.Issuer {
		return sessionClaims{}, rejected
	}
	now := s.Now().Truncate(time.Second)
	if exp != 0 && !now.Before(time.Unix(exp, 0).Add(Skew)) {
		return sessionClaims{}, rejected
	}
	if iat != 0 && now.Before(time.Unix(iat, 0).Add(-Skew)) {
		return sessionClaims{}, rejected
	}
	if life := time.Unix(exp, 0).Sub(time.Unix(iat, 0)); life <= 0 || life > maxTTL+Skew {
		return sessionClaims{}, rejected
	}
	if len(sub) == 0 || len(sid) == 0 {
		return sessionClaims{}, rejected
	}
	c.IssuedAt, c.Expiry, c.AuthTime = iat, exp, authTime
	if hasAuthTime && (authTime <= 0 || !c.authTimeOK(maxTTL)) {
		return sessionClaims{}, rejected
	}
	c.Subject, c.SessionID = string(sub), string(sid)
	return c, accepted
}

// sessionParts is a session token taken apart.
type sessionParts struct {
	key     *macKey
	payload string
	mac     [sha256.Size]byte
}

// splitSession takes token apart, or refuses it for its shape: it must be
// three base64url segments without padding, line breaks or stray bits, the
// first exactly the header of a key in ks, the last a 32-byte MAC. jwx would
// read other spellings of the same bytes; refusing them keeps every forgery
// on the fast path, and no token mailgate issues is spelt otherwise.
func splitSession(ks *keySet, token string) (sessionParts, bool) {
	var p sessionParts
	header, rest, _ := strings.Cut(token, ".")
	p.key = ks.sessionMACs[header]
	payload, sig, ok := strings.Cut(rest, ".")
	if p.key == nil || !ok || len(sig) != sessionMACLen || !isBase64URL(payload) || !isBase64URL(sig) {
		return p, false
	}
	if n, err := decode(p.mac[:], sig); err != nil || n != len(p.mac) {
		return p, false
	}
	p.payload = payload
	return p, true
}

// isBase64URL reports whether s is all base64url alphabet: the standard
// decoder skips line breaks, which no token of mailgate's holds.
func isBase64URL(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// decode decodes strict unpadded base64url, which splitSession has checked
// for its alphabet, from a string without copying it to the heap.
func decode(dst []byte, src string) (int, error) {
	var buf [2 * maxFastPayload]byte
	n := copy(buf[:], src)
	return base64.RawURLEncoding.Strict().Decode(dst, buf[:n])
}

// claimParser reads the pinned claims; any surprise sets bad.
type claimParser struct {
	b   []byte
	bad bool
}

// has consumes s if the claims go on with it, and reports whether they did.
func (p *claimParser) has(s string) bool {
	if !p.bad && bytes.HasPrefix(p.b, []byte(s)) {
		p.b = p.b[len(s):]
		return true
	}
	return false
}

// lit consumes s.
func (p *claimParser) lit(s string) {
	if !p.bad && bytes.HasPrefix(p.b, []byte(s)) {
		p.b = p.b[len(s):]
		return
	}
	p.bad = true
}

// str consumes a JSON string of printable ASCII without escapes, the only
// strings whose bytes are certainly what jwx decodes them to.
func (p *claimParser) str() []byte {
	p.lit(`"`)
	if p.bad {
		return nil
	}
	for i, c := range p.b {
		switch {
		case c == '"':
			s := p.b[:i]
			p.b = p.b[i+1:]
			return s
		case c < 0x20 || c > 0x7e || c == '\\':
			p.bad = true
			return nil
		}
	}
	p.bad = true
	return nil
}

// num consumes a JSON integer of at most ten digits without a leading
// zero: a NumericDate jwx reads exactly, good until the year 2286.
func (p *claimParser) num() int64 {
	if p.bad {
		return 0
	}
	var v int64
	i := 0
	for ; i < len(p.b) && i <= 10 && '0' <= p.b[i] && p.b[i] <= '9'; i++ {
		v = v*10 + int64(p.b[i]-'0')
	}
	if i == 0 || i > 10 || (i > 1 && p.b[0] == '0') {
		p.bad = true
		return 0
	}
	p.b = p.b[i:]
	return v
}
