package session

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mailgate/caddy-mailgate/internal/memstorage"
)

// TestIssuedSessionsTakeTheFastPath: every session mailgate issues is
// decided by the pinned fast path, not handed to jwx; were jwx to change how
// it writes a token, first sight would fall back to the slow path, and this
// test says so.
func TestIssuedSessionsTakeTheFastPath(t *testing.T) {
	ctx := context.Background()
	c := &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	ring, err := LoadKeyRing(ctx, memstorage.New(), "k", c.Now)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []Signer{
		{Ring: ring, Issuer: "https://app.example.com", Audience: "default", Now: c.Now},
		{Ring: ring, Issuer: "http://127.0.0.1:8443", Audience: "intranet-2", Now: c.Now},
	} {
		m := NewManager(Config{Signer: s, TTL: 30 * 24 * time.Hour, Revocations: nil, Identities: users})
		tok, exp, err := m.Issue(alice.UserID)
		if err != nil {
			t.Fatal(err)
		}
		got, v := s.verifySessionFast(tok, m.ttl)
		if v != accepted {
			t.Fatalf("%s: an issued session was %v by the fast path, want accepted; header %s", s.Issuer, v, tokenHeaderForTest(t, tok))
		}
		if got.Subject != alice.UserID || got.SessionID == "" || got.Expiry != exp.Unix() || got.IssuedAt != c.t.Unix() {
			t.Fatalf("%s: claims %+v", s.Issuer, got)
		}
		ref, err := s.verifySessionJWX(tok, m.ttl)
		if err != nil || ref != got {
			t.Fatalf("%s: jwx says %+v, %v; the fast path %+v", s.Issuer, ref, err, got)
		}
	}
}

// verdictFixture holds what FuzzSessionVerdicts signs and checks with.
type verdictFixture struct {
	clock *clock
	s     Signer
	key   *macKey
	ttl   time.Duration
}

func newVerdictFixture(t testing.TB) *verdictFixture {
	c := &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	ring, err := LoadKeyRing(context.Background(), memstorage.New(), "k", c.Now)
	if err != nil {
		t.Fatal(err)
	}
	return &verdictFixture{
		clock: c,
		s:     Signer{Ring: ring, Issuer: "https://app.example.com", Audience: "default", Now: c.Now},
		key:   ring.keys.Load().sessionMACs[sessionHeader(ring.KeyID())],
		ttl:   time.Hour,
	}
}

// token assembles a session token from a header and claims as written, with
// the ring's MAC, or with the given signature segment when sig is not empty.
func (f *verdictFixture) token(header, claims, sig string) string {
	in := base64.RawURLEncoding.EncodeToString([]byte(header)) + "." + base64.RawURLEncoding.EncodeToString([]byte(claims))
	if sig == "" {
		var mac [sha256.Size]byte
		f.key.sum(&mac, in)
		sig = base64.RawURLEncoding.EncodeToString(mac[:])
	}
	return in + "." + sig
}

// agree fails unless the fast path's verdict on token at the given clock is
// jwx's: an acceptance with the same claims, or a refusal. Undecided tokens
// go to jwx in production, so any answer of jwx's is theirs.
func (f *verdictFixture) agree(t *testing.T, token string, now time.Time) {
	f.clock.t = now
	got, v := f.s.verifySessionFast(token, f.ttl)
	want, err := f.s.verifySessionJWX(token, f.ttl)
	switch {
	case v == accepted && (err != nil || want != got):
		t.Fatalf("fast path accepts %+v, jwx: %+v, %v\ntoken %s at %s", got, want, err, token, now)
	case v == rejected && err == nil:
		t.Fatalf("fast path refuses what jwx accepts (%+v)\ntoken %s at %s", want, token, now)
	}
}

// canonicalClaims writes claims as jwx writes a session's.
func canonicalClaims(aud string, exp, iat int64, iss, sid, sub string) string {
	return fmt.Sprintf(`{"aud":[%q],"exp":%d,"iat":%d,"iss":%q,"sid":%q,"sub":%q}`, aud, exp, iat, iss, sid, sub)
}

// FuzzSessionVerdicts holds the pinned fast path to jwx's verdict. Each
// input is a header and claims as written, MACed with the ring's session key
// (so that the claims checks are reached, not only the MAC) or carrying the
// given signature segment, checked at a clock offset in milliseconds from
// the claims' time. The seeds run in every `go test`; run it longer with
//
//	go test -run x -fuzz FuzzSessionVerdicts ./internal/session
func FuzzSessionVerdicts(f *testing.F) {
	fx := newVerdictFixture(f)
	base := fx.clock.t.Unix()
	hdr, _ := base64.RawURLEncoding.DecodeString(fx.key.header)
	good := canonicalClaims("default", base+3600, base, "https://app.example.com", "s-1", "u-1")
	// Around each boundary: exp + skew, iat − skew, the lifetime cap.
	for _, ms := range []int64{-1, 0, 1, 999, 1000, 1001} {
		f.Add(string(hdr), good, "", int64(3600+30)*1000+ms)
		f.Add(string(hdr), good, "", -30*1000-ms)
		f.Add(string(hdr), canonicalClaims("default", base+3600+30+ms/1000, base, "https://app.example.com", "s", "u"), "", int64(0))
	}
	for _, claims := range []string{
		canonicalClaims("default", 0, base, "https://app.example.com", "s", "u"),
		canonicalClaims("default", 0, 0, "https://app.example.com", "s", "u"),
		canonicalClaims("default", base+60, 0, "https://app.example.com", "s", "u"),
		canonicalClaims("other", base+60, base, "https://app.example.com", "s", "u"),
		canonicalClaims("default", base+60, base, "https://app.example.com/", "s", "u"),
		canonicalClaims("default", base+60, base, "https://app.example.com", "", "u"),
		canonicalClaims("default", base+60, base, "https://app.example.com", "s", ""),
		canonicalClaims("default", base, base+60, "https://app.example.com", "s", "u"),
		canonicalClaims("default", 99999999999, base, "https://app.example.com", "s", "u"),
		strings.Replace(good, `"exp":`, `"exp":0`, 1),
		strings.Replace(good, `"exp":`, `"exp":-`, 1),
		strings.Replace(good, `"iat":`, `"iat": `, 1),
		strings.Replace(good, `,"iat"`, `.5,"iat"`, 1),
		strings.Replace(good, `,"iat"`, `e0,"iat"`, 1),
		strings.Replace(good, `"default"`, `"\u0064efault"`, 1),
		strings.Replace(good, `["default"]`, `"default"`, 1),
		strings.Replace(good, `["default"]`, `["x","default"]`, 1),
		strings.Replace(good, `"sub":"u-1"`, `"sub":"u-1","sub":""`, 1),
		strings.Replace(good, `"sub":"u-1"`, `"sub":"u-1","nbf":`+fmt.Sprint(base+600), 1),
		strings.Replace(good, `"sid":"s-1"`, `"sid":1`, 1),
		strings.Replace(good, `"exp":`+fmt.Sprint(base+3600), `"exp":"`+fmt.Sprint(base+3600)+`"`, 1),
		strings.Replace(good, `"u-1"`, "\"u-\u00e9\"", 1),
		good + " ",
		"{}",
		"",
	} {
		f.Add(string(hdr), claims, "", int64(0))
	}
	for _, h := range []string{
		`{"alg":"HS256","kid":"` + fx.key.kid + `","typ":"JWT"}`,
		`{"kid":"` + fx.key.kid + `","alg":"HS256","typ":"` + TypSession + `"}`,
		`{"alg":"HS256","kid":"` + fx.key.kid + `","typ":"` + TypSession + `","crit":["b64"],"b64":false}`,
		`{"alg":"none","kid":"` + fx.key.kid + `","typ":"` + TypSession + `"}`,
	} {
		f.Add(h, good, "", int64(0))
	}
	for _, sig := range []string{
		"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB", // stray low bits
		"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
		"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"!",
		"a.b",
	} {
		f.Add(string(hdr), good, sig, int64(0))
	}
	f.Fuzz(func(t *testing.T, header, claims, sig string, offsetMillis int64) {
		fx.agree(t, fx.token(header, claims, sig), time.Unix(base, 0).Add(time.Duration(offsetMillis)*time.Millisecond))
	})
}

// FuzzSessionTokenBytes mutates whole tokens, to reach what assembling them
// from parts cannot: stray dots, line breaks and padding in the encoding.
func FuzzSessionTokenBytes(f *testing.F) {
	fx := newVerdictFixture(f)
	base := fx.clock.t.Unix()
	hdr, _ := base64.RawURLEncoding.DecodeString(fx.key.header)
	good := fx.token(string(hdr), canonicalClaims("default", base+3600, base, "https://app.example.com", "s-1", "u-1"), "")
	h, p, _ := strings.Cut(good, ".")
	p, sig, _ := strings.Cut(p, ".")
	for _, tok := range []string{
		good,
		good + ".",
		good + "\n",
		h + ".\n" + p + "." + sig,
		h + "." + p + "=." + sig,
		h + "." + p + "." + sig + "=",
		h + "." + p[:len(p)-1] + "." + sig,
		h + ".." + sig,
		h,
		"",
	} {
		f.Add(tok, int64(0))
	}
	f.Fuzz(func(t *testing.T, token string, offsetMillis int64) {
		fx.agree(t, token, time.Unix(base, 0).Add(time.Duration(offsetMillis)*time.Millisecond))
	})
}

// TestMACIsHMAC holds the spelt-out HMAC to crypto/hmac, on the stack and
// past it.
func TestMACIsHMAC(t *testing.T) {
	fx := newVerdictFixture(t)
	for _, n := range []int{0, 1, 63, 64, 65, 300, maxStackMAC, maxStackMAC + 1, 5000} {
		in := strings.Repeat("x", n)
		var got [sha256.Size]byte
		fx.key.sum(&got, in)
		h := hmac.New(sha256.New, fx.key.key)
		h.Write([]byte(in))
		if !hmac.Equal(got[:], h.Sum(nil)) {
			t.Fatalf("MAC of %d bytes differs from crypto/hmac's", n)
		}
	}
}
