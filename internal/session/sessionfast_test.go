package session

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
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
	// A MAC wrong in one byte anywhere: the whole MAC is compared.
	{
		in := base64.RawURLEncoding.EncodeToString(hdr) + "." + base64.RawURLEncoding.EncodeToString([]byte(good))
		var mac [sha256.Size]byte
		fx.key.sum(&mac, in)
		for _, i := range []int{0, 15, 16, 31} {
			m := mac
			m[i] ^= 0x01
			f.Add(string(hdr), good, base64.RawURLEncoding.EncodeToString(m[:]), int64(0))
		}
	}
	// Bytes after the object, bytes outside printable ASCII, a number
	// past int64, claims past the stack buffer.
	for _, claims := range []string{
		good + "x",
		good + "}",
		strings.Replace(good, `"u-1"`, "\"u-\xff\"", 1),
		strings.Replace(good, `"u-1"`, "\"u-\t1\"", 1),
		strings.Replace(good, fmt.Sprint(base+3600),
			new(big.Int).Add(new(big.Int).Lsh(big.NewInt(1), 64), big.NewInt(base+3600)).String(), 1),
		canonicalClaims("default", base+3600, base, "https://app.example.com", "s-1", strings.Repeat("u", 1100)),
		canonicalClaims("default", base+3600, base, "https://app.example.com", "s-1", strings.Repeat("u", 2000)),
	} {
		f.Add(string(hdr), claims, "", int64(0))
	}
	// A leading zero and a missing number, with clocks at which only the
	// pinned parser's refusal keeps them from being accepted.
	{
		const t0 = 999_990_000 // 2001-09-08, nine digits
		zero := fmt.Sprintf(`{"aud":["default"],"exp":0%d,"iat":%d,"iss":"https://app.example.com","sid":"s","sub":"u"}`, t0+3600, t0)
		f.Add(string(hdr), zero, "", (t0-base)*1000)
		empty := `{"aud":["default"],"exp":3600,"iat":,"iss":"https://app.example.com","sid":"s","sub":"u"}`
		f.Add(string(hdr), empty, "", -base*1000)
	}
	// The optional claims: amr, auth_time and persistent, as issued and
	// around every rule both paths hold them to.
	full := fullClaims(`["otp","link"]`, base-600, "default", base+3600, base, "https://app.example.com", true, "s-1", "u-1")
	for _, claims := range []string{
		full,
		fullClaims(`["pwd","password"]`, base, "default", base+3600, base, "https://app.example.com", false, "s", "u"),
		fullClaims(`["a","b","c","d"]`, base, "default", base+60, base, "https://app.example.com", false, "s", "u"),
		fullClaims(`["a","b","c","d","e"]`, base, "default", base+60, base, "https://app.example.com", false, "s", "u"),
		fullClaims(`[]`, base, "default", base+60, base, "https://app.example.com", false, "s", "u"),
		fullClaims(`[""]`, base, "default", base+60, base, "https://app.example.com", false, "s", "u"),
		fullClaims(`["otp",""]`, base, "default", base+60, base, "https://app.example.com", false, "s", "u"),
		fullClaims(`["otp",1]`, base, "default", base+60, base, "https://app.example.com", false, "s", "u"),
		fullClaims(`["otp","link",]`, base, "default", base+60, base, "https://app.example.com", false, "s", "u"),
		fullClaims(`"otp"`, base, "default", base+60, base, "https://app.example.com", false, "s", "u"),
		fullClaims(`["o\u0074p"]`, base, "default", base+60, base, "https://app.example.com", false, "s", "u"),
		// auth_time: after iat, 0, the absolute lifetime's edge and past it.
		fullClaims("", base+1, "default", base+60, base, "https://app.example.com", false, "s", "u"),
		fullClaims("", 0, "default", base+60, base, "https://app.example.com", false, "s", "u"),
		fullClaims("", base+60-3600-30, "default", base+60, base, "https://app.example.com", false, "s", "u"),
		fullClaims("", base+60-3600-31, "default", base+60, base, "https://app.example.com", false, "s", "u"),
		fullClaims("", 1, "default", base+60, base, "https://app.example.com", false, "s", "u"),
		strings.Replace(full, `"auth_time":`, `"auth_time":-`, 1),
		strings.Replace(full, `,"exp"`, `.5,"exp"`, 1),
		strings.Replace(full, `"persistent":true`, `"persistent":false`, 1),
		strings.Replace(full, `"persistent":true`, `"persistent":1`, 1),
		strings.Replace(full, `"persistent":true`, `"persistent":"true"`, 1),
		strings.Replace(full, `"amr":`, `"amr": `, 1),
	} {
		f.Add(string(hdr), claims, "", int64(0))
	}
	f.Fuzz(func(t *testing.T, header, claims, sig string, offsetMillis int64) {
		fx.agree(t, fx.token(header, claims, sig), time.Unix(base, 0).Add(time.Duration(offsetMillis)*time.Millisecond))
	})
}

// fullClaims writes claims as jwx writes a session's with its optional
// claims: amr as raw JSON (omitted when ""), auth_time (omitted when
// negative), persistent when set.
func fullClaims(amr string, authTime int64, aud string, exp, iat int64, iss string, persistent bool, sid, sub string) string {
	var b strings.Builder
	b.WriteString("{")
	if amr != "" {
		fmt.Fprintf(&b, `"amr":%s,`, amr)
	}
	fmt.Fprintf(&b, `"aud":[%q],`, aud)
	if authTime >= 0 {
		fmt.Fprintf(&b, `"auth_time":%d,`, authTime)
	}
	fmt.Fprintf(&b, `"exp":%d,"iat":%d,"iss":%q,`, exp, iat, iss)
	if persistent {
		b.WriteString(`"persistent":true,`)
	}
	fmt.Fprintf(&b, `"sid":%q,"sub":%q}`, sid, sub)
	return b.String()
}

// TestSessionExtrasAreDecidedByTheFastPath: the claims a session carries
// beyond the registered ones, as mailgate writes them, are accepted by the
// fast path with the same reading as jwx's; an auth_time that breaks a rule
// is refused by both.
func TestSessionExtrasAreDecidedByTheFastPath(t *testing.T) {
	fx := newVerdictFixture(t)
	base := fx.clock.t.Unix()
	hdr, _ := base64.RawURLEncoding.DecodeString(fx.key.header)
	for _, c := range []struct {
		claims string
		want   verdict
	}{
		{fullClaims(`["otp","link"]`, base-600, "default", base+3000, base, "https://app.example.com", true, "s-1", "u-1"), accepted},
		// A session issued before sessions carried these claims.
		{canonicalClaims("default", base+3000, base, "https://app.example.com", "s-1", "u-1"), accepted},
		{fullClaims(`["a","b","c","d"]`, -1, "default", base+60, base, "https://app.example.com", false, "s", "u"), accepted},
		{fullClaims("", base+1, "default", base+60, base, "https://app.example.com", false, "s", "u"), rejected},
		{fullClaims("", 0, "default", base+60, base, "https://app.example.com", false, "s", "u"), rejected},
		{fullClaims("", base+60-3600-31, "default", base+60, base, "https://app.example.com", false, "s", "u"), rejected},
	} {
		tok := fx.token(string(hdr), c.claims, "")
		got, v := fx.s.verifySessionFast(tok, fx.ttl)
		if v != c.want {
			t.Fatalf("%s: fast path says %v, want %v", c.claims, v, c.want)
		}
		fx.agree(t, tok, fx.clock.t)
		if v == accepted && got.Subject == "" {
			t.Fatalf("%s: read %+v", c.claims, got)
		}
	}
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

// TestForgeriesStayOnTheFastPath: a token with a wrong MAC, wrong in any
// one byte, is refused by the fast path itself, and verifySession refuses it
// without an allocation: a stranger's guesses never reach jwx.
func TestForgeriesStayOnTheFastPath(t *testing.T) {
	fx := newVerdictFixture(t)
	base := fx.clock.t.Unix()
	hdr, _ := base64.RawURLEncoding.DecodeString(fx.key.header)
	good := fx.token(string(hdr), canonicalClaims("default", base+3600, base, "https://app.example.com", "s-1", "u-1"), "")
	in := good[:strings.LastIndexByte(good, '.')]
	var mac [sha256.Size]byte
	fx.key.sum(&mac, in)
	for _, i := range []int{0, 15, 16, 31} {
		m := mac
		m[i] ^= 0x01
		forged := in + "." + base64.RawURLEncoding.EncodeToString(m[:])
		if _, v := fx.s.verifySessionFast(forged, fx.ttl); v != rejected {
			t.Fatalf("MAC wrong in byte %d: the fast path says %v, want rejected", i, v)
		}
		if _, err := fx.s.verifySession(forged, fx.ttl); !errors.Is(err, ErrInvalid) {
			t.Fatalf("MAC wrong in byte %d: err = %v, want ErrInvalid", i, err)
		}
		if n := testing.AllocsPerRun(50, func() { _, _ = fx.s.verifySession(forged, fx.ttl) }); n != 0 {
			t.Fatalf("refusing a forgery allocated %v times, want 0: did it go to jwx?", n)
		}
	}
}

// macAsWritten MACs a signing input exactly as written, however spelt.
func (f *verdictFixture) macAsWritten(in string) string {
	var mac [sha256.Size]byte
	f.key.sum(&mac, in)
	return in + "." + base64.RawURLEncoding.EncodeToString(mac[:])
}

// TestOnlyOneSpellingOfASessionVerifies: base64url segments whose unused
// low bits are set decode to the same bytes; such a token is refused, MAC
// segment or payload, even when MACed as written.
func TestOnlyOneSpellingOfASessionVerifies(t *testing.T) {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	fx := newVerdictFixture(t)
	base := fx.clock.t.Unix()
	hdr, _ := base64.RawURLEncoding.DecodeString(fx.key.header)
	good := fx.token(string(hdr), canonicalClaims("default", base+3600, base, "https://app.example.com", "s-1", "u-1"), "")
	if _, err := fx.s.verifySession(good, fx.ttl); err != nil {
		t.Fatalf("control token refused: %v", err)
	}
	// stray sets the lowest unused bit of s's last character.
	stray := func(s string) string {
		v := strings.IndexByte(alphabet, s[len(s)-1])
		return s[:len(s)-1] + string(alphabet[v|1])
	}
	h, rest, _ := strings.Cut(good, ".")
	p, sig, _ := strings.Cut(rest, ".")
	if len(p)%4 == 0 {
		t.Fatal("the payload has no unused bits; pick claims of another length")
	}
	for name, tok := range map[string]string{
		"MAC segment with a stray bit":        h + "." + p + "." + stray(sig),
		"payload with a stray bit, MACed so":  fx.macAsWritten(h + "." + stray(p)),
		"payload padded, MACed so":            fx.macAsWritten(h + "." + p + strings.Repeat("=", (4-len(p)%4)%4)),
		"payload with a line break, MACed so": fx.macAsWritten(h + "." + p[:8] + "\n" + p[8:]),
	} {
		if _, err := fx.s.verifySession(tok, fx.ttl); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", name, err)
		}
	}
}

// TestSessionsOfTheOldKeyVerifyAfterRotation: after a rotation, a session
// MACed with the previous key is accepted by both paths, and the new key
// signs new sessions.
func TestSessionsOfTheOldKeyVerifyAfterRotation(t *testing.T) {
	ctx := context.Background()
	c := &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	ring, err := LoadKeyRing(ctx, memstorage.New(), "k", c.Now)
	if err != nil {
		t.Fatal(err)
	}
	s := Signer{Ring: ring, Issuer: "https://app.example.com", Audience: "default", Now: c.Now}
	m := NewManager(Config{Signer: s, TTL: time.Hour, Identities: users})
	oldKid := ring.KeyID()
	old, _, err := m.Issue(alice.UserID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ring.Rotate(ctx, time.Minute, 2*time.Hour); err != nil {
		t.Fatal(err)
	}
	c.t = c.t.Add(2 * time.Minute)
	if ring.KeyID() == oldKid {
		t.Fatal("the new key is not signing after its activation")
	}
	current, _, err := m.Issue(alice.UserID)
	if err != nil {
		t.Fatal(err)
	}
	for name, tok := range map[string]string{"old": old, "new": current} {
		got, v := s.verifySessionFast(tok, time.Hour)
		ref, err := s.verifySessionJWX(tok, time.Hour)
		if v != accepted || err != nil || ref != got {
			t.Fatalf("%s key's session: fast path %v %+v, jwx %+v %v", name, v, got, ref, err)
		}
	}
}
