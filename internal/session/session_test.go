package session

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jws"
	"github.com/lestrrat-go/jwx/v2/jwt"

	"github.com/mailgate/caddy-mailgate/internal/memstorage"
	"github.com/mailgate/caddy-mailgate/internal/ticket"
)

type clock struct{ t time.Time }

func (c *clock) Now() time.Time { return c.t }

type fixture struct {
	clock *clock
	ring  *KeyRing
	store *ticket.Memory
	m     *Manager
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{clock: &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}}
	var err error
	f.ring, err = LoadKeyRing(context.Background(), memstorage.New(), "keys", f.clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	f.store, err = ticket.NewMemory(ticket.MinMemory, f.clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.store.Close() })
	f.m = NewManager(Config{
		Signer:      f.signer(),
		TTL:         time.Hour,
		Revocations: f.store,
		Identities:  users,
	})
	return f
}

// userMap is the directory as the session manager sees it: pure lookup.
type userMap map[string]Identity

func (u userMap) Identity(_ context.Context, id string) (Identity, error) {
	if i, ok := u[id]; ok {
		return i, nil
	}
	return Identity{}, fmt.Errorf("%w: no user %s", ErrInvalid, id)
}

var users = userMap{alice.UserID: alice}

func (f *fixture) signer() Signer {
	return Signer{Ring: f.ring, Issuer: "https://app.example.com", Audience: "default", Now: f.clock.Now}
}

var alice = Identity{UserID: "u-1", Email: "alice@example.com", Name: "Alice"}

func TestIssueVerify(t *testing.T) {
	f := newFixture(t)
	tok, exp, err := f.m.Issue(alice.UserID)
	if err != nil {
		t.Fatal(err)
	}
	if want := f.clock.t.Add(time.Hour); !exp.Equal(want) {
		t.Fatalf("expiry %v, want %v", exp, want)
	}
	s, err := f.m.Verify(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	if s.Identity != alice || s.ID == "" {
		t.Fatalf("session = %+v", s)
	}
}

func TestKeyRingPersists(t *testing.T) {
	st := memstorage.New()
	a, err := LoadKeyRing(context.Background(), st, "k", time.Now)
	if err != nil {
		t.Fatal(err)
	}
	b, err := LoadKeyRing(context.Background(), st, "k", time.Now)
	if err != nil {
		t.Fatal(err)
	}
	if a.KeyID() != b.KeyID() || string(a.JWKS()) != string(b.JWKS()) {
		t.Fatal("second load generated a new key instead of reading the stored one")
	}
	if strings.Contains(string(a.JWKS()), `"d"`) {
		t.Fatal("JWKS publishes the private key")
	}
}

// forge signs claims with the given key and headers, bypassing Signer.
func forge(t *testing.T, claims map[string]any, alg jwa.SignatureAlgorithm, key any, hdr map[string]any) string {
	t.Helper()
	tok := jwt.New()
	for k, v := range claims {
		if err := tok.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	h := jws.NewHeaders()
	for k, v := range hdr {
		_ = h.Set(k, v)
	}
	b, err := jwt.Sign(tok, jwt.WithKey(alg, key, jws.WithProtectedHeaders(h)))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// sessionKey is the MAC key the fixture's sessions are issued with, to forge
// tokens that differ from an issued one in one respect only.
func (f *fixture) sessionKey() []byte {
	return f.ring.keys.Load().sessionMACs[sessionHeader(f.ring.KeyID())].key
}

func TestVerifyRejects(t *testing.T) {
	f := newFixture(t)
	now := f.clock.t
	good := func() map[string]any {
		return map[string]any{
			"iss": "https://app.example.com", "aud": "default", "sub": "u-1", "sid": "s-1",
			"iat": now, "exp": now.Add(time.Hour),
		}
	}
	hdr := map[string]any{"typ": TypSession, "kid": f.ring.KeyID()}
	key := f.sessionKey()
	if tok := forge(t, good(), jwa.HS256, key, hdr); !verifies(f, tok) {
		t.Fatal("control token does not verify; the cases below prove nothing")
	}

	cases := map[string]string{}
	cases["MACed with another key"] = forge(t, good(), jwa.HS256, []byte("secret-secret-secret-secret-32by"), hdr)
	cases["MACed with the ring key's form-token key"] = forge(t, good(), jwa.HS256, f.ring.DeriveKeys("form token")[0], hdr)
	signing := f.ring.keys.Load().signing(f.clock.Now()).jwk
	cases["signed with the ring's Ed25519 key"] = forge(t, good(), jwa.EdDSA, signing, hdr)
	noExp := good()
	delete(noExp, "exp")
	cases["no exp"] = forge(t, noExp, jwa.HS256, key, hdr)
	noIat := good()
	delete(noIat, "iat")
	cases["no iat"] = forge(t, noIat, jwa.HS256, key, hdr)
	wrongAud := good()
	wrongAud["aud"] = "other-realm"
	cases["wrong aud"] = forge(t, wrongAud, jwa.HS256, key, hdr)
	wrongIss := good()
	wrongIss["iss"] = "https://evil.example"
	cases["wrong iss"] = forge(t, wrongIss, jwa.HS256, key, hdr)
	expired := good()
	expired["exp"] = now.Add(-Skew - time.Second)
	cases["expired beyond skew"] = forge(t, expired, jwa.HS256, key, hdr)
	future := good()
	future["iat"] = now.Add(Skew + time.Minute)
	cases["issued in the future"] = forge(t, future, jwa.HS256, key, hdr)
	cases["wrong typ"] = forge(t, good(), jwa.HS256, key, map[string]any{"typ": "JWT", "kid": f.ring.KeyID()})
	cases["unknown kid"] = forge(t, good(), jwa.HS256, key, map[string]any{"typ": TypSession, "kid": "nope"})
	cases["an extra header parameter"] = forge(t, good(), jwa.HS256, key, map[string]any{"typ": TypSession, "kid": f.ring.KeyID(), "cty": "JWT"})
	cases["alg none"] = algNone(t, good(), hdr)
	longLived := good()
	longLived["exp"] = now.Add(time.Hour + Skew + time.Second)
	cases["lifetime beyond the session ttl"] = forge(t, longLived, jwa.HS256, key, hdr)
	zeroExp := good()
	zeroExp["exp"] = time.Unix(0, 0)
	cases["exp of 0, which jwx does not check"] = forge(t, zeroExp, jwa.HS256, key, hdr)
	unknownUser := good()
	unknownUser["sub"] = "u-gone"
	cases["user no longer in the directory"] = forge(t, unknownUser, jwa.HS256, key, hdr)
	noSid := good()
	delete(noSid, "sid")
	cases["no sid"] = forge(t, noSid, jwa.HS256, key, hdr)
	claims := fmt.Sprintf(`"iss":"https://app.example.com","aud":"default","sub":"u-1","sid":"s-1","nbf":%d`, now.Unix())
	iat, exp := now.Unix(), now.Add(time.Hour).Unix()
	cases["exp as a string"] = forgeRaw(t, fmt.Sprintf(`{%s,"iat":%d,"exp":"%d"}`, claims, iat, exp), jwa.HS256, key, hdr)
	cases["iat as a string"] = forgeRaw(t, fmt.Sprintf(`{%s,"iat":"%d","exp":%d}`, claims, iat, exp), jwa.HS256, key, hdr)
	cases["nbf as a string"] = forgeRaw(t, strings.Replace(fmt.Sprintf(`{%s,"iat":%d,"exp":%d}`, claims, iat, exp), fmt.Sprintf(`"nbf":%d`, iat), fmt.Sprintf(`"nbf":"%d"`, iat), 1), jwa.HS256, key, hdr)
	if tok := forgeRaw(t, fmt.Sprintf(`{%s,"iat":%d,"exp":%d}`, claims, iat, exp), jwa.HS256, key, hdr); !verifies(f, tok) {
		t.Fatal("control token with raw numeric claims does not verify; the string cases prove nothing")
	}
	exact := good()
	exact["exp"] = now.Add(time.Hour + Skew)
	if tok := forge(t, exact, jwa.HS256, key, hdr); !verifies(f, tok) {
		t.Fatal("a lifetime of exactly ttl + skew was refused")
	}
	cases["garbage"] = "not.a.token"

	for name, tok := range cases {
		if _, err := f.m.Verify(context.Background(), tok); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", name, err)
		}
	}
}

// forgeRaw signs a JSON payload exactly as written: jwx would turn a string
// exp into a number when setting it on a jwt.Token.
func forgeRaw(t *testing.T, payload string, alg jwa.SignatureAlgorithm, key any, hdr map[string]any) string {
	t.Helper()
	h := jws.NewHeaders()
	for k, v := range hdr {
		_ = h.Set(k, v)
	}
	b, err := jws.Sign([]byte(payload), jws.WithKey(alg, key, jws.WithProtectedHeaders(h)))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestTokenCarriesNoPersonalData decodes a session token's claims: the
// cookie holds ids only, and the address comes from the directory.
func TestTokenCarriesNoPersonalData(t *testing.T) {
	f := newFixture(t)
	tok, _, _ := f.m.Issue(alice.UserID)
	raw, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	if err := json.Unmarshal(raw, &claims); err != nil {
		t.Fatal(err)
	}
	for k, v := range claims {
		switch k {
		case "iss", "aud", "sub", "sid", "iat", "exp", "auth_time":
		default:
			t.Errorf("session token carries %s = %v", k, v)
		}
	}
	if strings.Contains(string(raw), "alice") || strings.Contains(string(raw), "Alice") {
		t.Fatalf("session token payload names the person: %s", raw)
	}
}

type brokenDirectory struct{}

func (brokenDirectory) Identity(context.Context, string) (Identity, error) {
	return Identity{}, errors.New("storage unreachable")
}

func TestVerifyFailsClosedWhenUsersUnreadable(t *testing.T) {
	f := newFixture(t)
	tok, _, _ := f.m.Issue(alice.UserID)
	m := NewManager(Config{Signer: f.signer(), TTL: time.Hour, Revocations: f.store, Identities: brokenDirectory{}})
	_, err := m.Verify(context.Background(), tok)
	if err == nil || errors.Is(err, ErrInvalid) || errors.Is(err, ErrRevoked) {
		t.Fatalf("err = %v, want a directory error distinct from invalid/revoked", err)
	}
}

func verifies(f *fixture, tok string) bool {
	_, err := f.m.Verify(context.Background(), tok)
	return err == nil
}

// algNone builds an unsigned token by hand: jwx refuses to make one.
func algNone(t *testing.T, claims map[string]any, hdr map[string]any) string {
	t.Helper()
	h := jws.NewHeaders()
	for k, v := range hdr {
		_ = h.Set(k, v)
	}
	_ = h.Set("alg", "none")
	hb, _ := h.MarshalJSON()
	tok := jwt.New()
	for k, v := range claims {
		_ = tok.Set(k, v)
	}
	cb, _ := tok.(interface{ MarshalJSON() ([]byte, error) }).MarshalJSON()
	enc := base64.RawURLEncoding.EncodeToString
	return enc(hb) + "." + enc(cb) + "."
}

func TestSkewAndExpiry(t *testing.T) {
	f := newFixture(t)
	tok, _, _ := f.m.Issue(alice.UserID)
	f.clock.t = f.clock.t.Add(time.Hour + Skew - time.Second)
	if !verifies(f, tok) {
		t.Fatal("token refused within the allowed skew after exp")
	}
	f.clock.t = f.clock.t.Add(time.Second)
	if verifies(f, tok) {
		t.Fatal("cached token accepted past exp + skew")
	}
}

func TestRevokeBeatsCache(t *testing.T) {
	f := newFixture(t)
	tok, _, _ := f.m.Issue(alice.UserID)
	s, err := f.m.Verify(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.m.Revoke(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	if _, err := f.m.Verify(context.Background(), tok); !errors.Is(err, ErrRevoked) {
		t.Fatalf("revoked session: err = %v, want ErrRevoked", err)
	}
	other, _, _ := f.m.Issue(alice.UserID)
	if !verifies(f, other) {
		t.Fatal("revoking one session revoked another")
	}
}

type brokenRevocations struct{}

func (brokenRevocations) Revoke(context.Context, string, time.Duration) error {
	return errors.New("down")
}
func (brokenRevocations) Revoked(string) (bool, error) {
	return false, errors.New("down")
}
func (brokenRevocations) RevokeBefore(context.Context, string, time.Time, time.Duration) error {
	return errors.New("down")
}
func (brokenRevocations) RevokedBefore(string) (time.Time, bool, error) {
	return time.Time{}, false, errors.New("down")
}

func TestVerifyFailsClosedWhenRevocationsUnreadable(t *testing.T) {
	f := newFixture(t)
	tok, _, _ := f.m.Issue(alice.UserID)
	m := NewManager(Config{Signer: f.signer(), TTL: time.Hour, Revocations: brokenRevocations{}, Identities: users})
	_, err := m.Verify(context.Background(), tok)
	if err == nil || errors.Is(err, ErrInvalid) || errors.Is(err, ErrRevoked) {
		t.Fatalf("err = %v, want a store error distinct from invalid/revoked", err)
	}
}

func TestPrepareRunsOncePerToken(t *testing.T) {
	f := newFixture(t)
	calls := 0
	m := NewManager(Config{Signer: f.signer(), TTL: time.Hour, Revocations: f.store, Identities: users,
		Prepare: func(s *Session) any { calls++; return s.Email }})
	tok, _, _ := m.Issue(alice.UserID)
	for i := 0; i < 3; i++ {
		s, err := m.Verify(context.Background(), tok)
		if err != nil || s.Data != "alice@example.com" {
			t.Fatalf("verify: %v, data %v", err, s)
		}
	}
	if calls != 1 {
		t.Fatalf("Prepare ran %d times, want 1", calls)
	}
}

// TestCacheIsBoundedAndKeepsWhatIsUsed: the cache never holds more than its
// bound, and a session in use stays cached while a crowd of sessions seen
// once passes through (the morning rush must not evict the regulars).
func TestCacheIsBoundedAndKeepsWhatIsUsed(t *testing.T) {
	c := newVerifiedCache(1024)
	now := time.Now()
	hot := [32]byte{0xff}
	c.put(hot, &Session{}, now.Add(time.Hour), now)
	for i := range 10_000 {
		if _, ok := c.get(hot, now); !ok && i > 0 {
			t.Fatalf("the session in use was evicted after %d sessions seen once", i)
		}
		c.put([32]byte{byte(i), byte(i >> 8), 1}, &Session{}, now.Add(time.Hour), now)
	}
	c.c.CleanUp()
	if n := c.c.EstimatedSize(); n > 1024 {
		t.Fatalf("cache holds %d entries, bound is 1024", n)
	}
	if _, ok := c.get(hot, now.Add(2*time.Hour)); ok {
		t.Fatal("an entry was served past its end")
	}
}

func TestCookie(t *testing.T) {
	c := Cookie("tok", time.Now().Add(time.Hour), true, false)
	if c.Name != "__Host-mailgate" || !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Domain != "" || !c.Expires.IsZero() {
		t.Fatalf("cookie = %+v", c)
	}
	if p := Cookie("tok", time.Now().Add(time.Hour), true, true); p.Expires.IsZero() {
		t.Fatal("persistent cookie has no expiry")
	}
	h := http.Header{"Cookie": {`a=1; __Host-mailgate=xyz; b=2`, "c=3"}}
	if got := FindCookie(h, "__Host-mailgate"); got != "xyz" {
		t.Fatalf("FindCookie = %q", got)
	}
	if got := FindCookie(h, "mailgate"); got != "" {
		t.Fatalf("FindCookie matched a prefix of another name: %q", got)
	}
}

// BenchmarkVerifyFirstSight is a session token's first visit: its MAC and
// claims, through the pinned fast path.
func BenchmarkVerifyFirstSight(b *testing.B) {
	f := newFixture(&testing.T{})
	tok, _, _ := f.m.Issue(alice.UserID)
	s := f.signer()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.verifySession(tok, time.Hour); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyForged is a session token with a forged MAC: what a
// stranger's guesses cost.
func BenchmarkVerifyForged(b *testing.B) {
	f := newFixture(&testing.T{})
	tok, _, _ := f.m.Issue(alice.UserID)
	forged := tok[:len(tok)-4] + "AAAA"
	s := f.signer()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.verifySession(forged, time.Hour); err == nil {
			b.Fatal("a forged MAC verified")
		}
	}
}

// BenchmarkVerifySessionJWX is the same first visit through jwx alone, the
// reference the fast path is held to.
func BenchmarkVerifySessionJWX(b *testing.B) {
	f := newFixture(&testing.T{})
	tok, _, _ := f.m.Issue(alice.UserID)
	s := f.signer()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.verifySessionJWX(tok, time.Hour); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyEd25519 is an Ed25519-signed token's check through jwx, as
// for access tokens: what a session's first sight cost before sessions
// were MACed.
func BenchmarkVerifyEd25519(b *testing.B) {
	f := newFixture(&testing.T{})
	s := f.signer()
	t := jwt.New()
	_ = t.Set(jwt.ExpirationKey, f.clock.Now().Add(time.Hour))
	tok, err := s.Sign(TypAccessToken, t)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Verify(TypAccessToken, tok, time.Hour); err != nil {
			b.Fatal(err)
		}
	}
}

func TestDeriveKeyIsSharedAndSeparated(t *testing.T) {
	st := memstorage.New()
	a, _ := LoadKeyRing(context.Background(), st, "k", time.Now)
	b, _ := LoadKeyRing(context.Background(), st, "k", time.Now)
	other, _ := LoadKeyRing(context.Background(), memstorage.New(), "k", time.Now)
	first := func(r *KeyRing, purpose string) string { return string(r.DeriveKeys(purpose)[0]) }
	if k := a.DeriveKeys("form token")[0]; len(k) != 32 || string(k) != first(b, "form token") {
		t.Fatal("two loads of one ring derive different keys")
	}
	if first(a, "form token") == first(a, "other") {
		t.Fatal("two purposes share a key")
	}
	if first(a, "form token") == first(other, "form token") {
		t.Fatal("two rings derive the same key")
	}
}

// TestRotationLogsNobodyOut walks a rotation as two instances sharing a
// storage see it: the new key is published at once and signs only from its
// activation; tokens of the old key verify until the old key retires, and
// the old key is dropped at the first rotation after that.
func TestRotationLogsNobodyOut(t *testing.T) {
	ctx := context.Background()
	st := memstorage.New()
	c := &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	a, _ := LoadKeyRing(ctx, st, "k", c.Now)
	b, _ := LoadKeyRing(ctx, st, "k", c.Now)
	signer := func(r *KeyRing) Signer { return Signer{Ring: r, Issuer: "i", Audience: "a", Now: c.Now} }
	sign := func(r *KeyRing) string {
		tok := jwt.New()
		_ = tok.Set(jwt.ExpirationKey, c.Now().Add(time.Hour))
		s, err := signer(r).Sign(TypSession, tok)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	oldKid := a.KeyID()
	oldToken := sign(a)

	const activation, retention = 5 * time.Minute, 2 * time.Hour
	if kid, err := b.RotateIfDue(ctx, 30*24*time.Hour, activation, retention); err != nil || kid != "" {
		t.Fatalf("a rotation before it was due: %q, %v", kid, err)
	}
	newKid, err := b.Rotate(ctx, activation, retention)
	if err != nil {
		t.Fatal(err)
	}
	// a reads storage at its next refresh: it publishes the new key before
	// it signs with it.
	c.t = c.t.Add(time.Minute)
	if err := a.Refresh(ctx, time.Minute); err != nil {
		t.Fatal(err)
	}
	for _, r := range []*KeyRing{a, b} {
		if !strings.Contains(string(r.JWKS()), newKid) || r.KeyID() != oldKid {
			t.Fatalf("before activation: JWKS %s, signing %s", r.JWKS(), r.KeyID())
		}
	}
	if strings.Contains(string(a.JWKS()), activatesParam) || strings.Contains(string(a.JWKS()), `"d"`) {
		t.Fatalf("the JWKS shows the schedule or a private key: %s", a.JWKS())
	}
	c.t = c.t.Add(activation)
	newToken := sign(a)
	if !strings.Contains(tokenHeaderForTest(t, newToken), newKid) {
		t.Fatalf("after activation a still signs with the old key")
	}
	for name, tok := range map[string]string{"old": oldToken, "new": newToken} {
		for _, r := range []*KeyRing{a, b} {
			if _, err := signer(r).Verify(TypSession, tok, time.Hour); err != nil {
				t.Fatalf("the %s token after the rotation: %v", name, err)
			}
		}
	}
	// Form keys: the new one mints, the old one still verifies.
	if ks := a.DeriveKeys("form token"); len(ks) != 2 {
		t.Fatalf("%d form keys during the overlap, want 2", len(ks))
	}

	// Past the retention, the next rotation drops the old key.
	c.t = c.t.Add(retention)
	if _, err := b.Rotate(ctx, activation, retention); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b.JWKS()), oldKid) || !strings.Contains(string(b.JWKS()), newKid) {
		t.Fatalf("after retention: %s", b.JWKS())
	}
}

// TestRotateIfDueRotatesOnce: two instances that find the ring due at the
// same time add one key between them.
func TestRotateIfDueRotatesOnce(t *testing.T) {
	ctx := context.Background()
	st := memstorage.New()
	c := &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	a, _ := LoadKeyRing(ctx, st, "k", c.Now)
	b, _ := LoadKeyRing(ctx, st, "k", c.Now)
	c.t = c.t.Add(30 * 24 * time.Hour)
	ka, err1 := a.RotateIfDue(ctx, 30*24*time.Hour, time.Minute, time.Hour)
	kb, err2 := b.RotateIfDue(ctx, 30*24*time.Hour, time.Minute, time.Hour)
	if err1 != nil || err2 != nil || ka == "" || kb != "" {
		t.Fatalf("rotations: %q %v, %q %v; want exactly the first", ka, err1, kb, err2)
	}
	if !strings.Contains(string(b.JWKS()), ka) {
		t.Fatal("the second instance did not take the first one's ring")
	}
}

// tokenHeaderForTest returns a JWT's decoded header.
func tokenHeaderForTest(t *testing.T, token string) string {
	t.Helper()
	h, _, _ := strings.Cut(token, ".")
	raw, err := base64.RawURLEncoding.DecodeString(h)
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

var bob = Identity{UserID: "u-2", Email: "bob@example.com", Name: "Bob"}

// TestRevokeUserRefusesEarlierSessionsOnly is logout-all: every session of
// the user issued before the new one is refused, the new one and later ones
// are not, even in the cut-off's own second, and another user's are not;
// logging out one session still works beside it.
func TestRevokeUserRefusesEarlierSessionsOnly(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	m := NewManager(Config{Signer: f.signer(), TTL: time.Hour, Revocations: f.store, Identities: userMap{alice.UserID: alice, bob.UserID: bob}})
	verify := func(tok string) error { _, err := m.Verify(ctx, tok); return err }
	f.clock.t = f.clock.t.Add(10*time.Second + 500*time.Millisecond)
	bobs, _, _ := m.Issue(bob.UserID)
	old, _, _ := m.Issue(alice.UserID)
	if err := verify(old); err != nil { // now cached
		t.Fatal(err)
	}

	// The new login, half a second into the second after the old one.
	f.clock.t = f.clock.t.Add(time.Second)
	before := f.clock.Now()
	current, _, _ := m.Issue(alice.UserID)
	if err := m.RevokeUser(ctx, alice.UserID, before); err != nil {
		t.Fatal(err)
	}
	if err := verify(old); !errors.Is(err, ErrRevoked) {
		t.Fatalf("a session issued before the cut-off: %v, want ErrRevoked", err)
	}
	if err := verify(current); err != nil {
		t.Fatalf("the session issued in the cut-off's second: %v, want it valid", err)
	}
	if err := verify(bobs); err != nil {
		t.Fatalf("another user's session: %v, want it valid", err)
	}
	f.clock.t = f.clock.t.Add(time.Second)
	later, _, _ := m.Issue(alice.UserID)
	if err := verify(later); err != nil {
		t.Fatalf("a session issued after the cut-off: %v", err)
	}

	s, err := m.Verify(ctx, current)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Revoke(ctx, s); err != nil {
		t.Fatal(err)
	}
	if err := verify(current); !errors.Is(err, ErrRevoked) {
		t.Fatalf("a logged-out session beside a cut-off: %v, want ErrRevoked", err)
	}
	if err := verify(later); err != nil {
		t.Fatalf("logging out one session refused another: %v", err)
	}

	// The old session, issued a second before the cut-off, would be
	// accepted until Skew past its exp: the cut-off must last as long.
	f.clock.t = f.clock.t.Add(-2*time.Second + time.Hour + Skew - time.Second)
	if err := verify(old); !errors.Is(err, ErrRevoked) {
		t.Fatalf("an earlier session at the end of its skew: %v, want ErrRevoked", err)
	}
}

// TestRevokeUserLongPastStoresNothing: a cut-off every session before which
// has expired has nothing left to refuse.
func TestRevokeUserLongPastStoresNothing(t *testing.T) {
	f := newFixture(t)
	if err := f.m.RevokeUser(context.Background(), alice.UserID, f.clock.Now().Add(-time.Hour-2*Skew)); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := f.store.RevokedBefore(userRevokedPrefix + alice.UserID); ok {
		t.Fatal("a cut-off was stored with nothing left to refuse")
	}
}

// staleCutoffs is a revocation list whose cut-offs cannot be vouched for.
type staleCutoffs struct{ *ticket.Memory }

func (staleCutoffs) RevokedBefore(string) (time.Time, bool, error) {
	return time.Time{}, false, ticket.ErrStale
}

func TestVerifyFailsClosedWhenCutOffsUnreadable(t *testing.T) {
	f := newFixture(t)
	m := NewManager(Config{Signer: f.signer(), TTL: time.Hour, Revocations: staleCutoffs{f.store}, Identities: users})
	tok, _, _ := m.Issue(alice.UserID)
	_, err := m.Verify(context.Background(), tok)
	if !errors.Is(err, ticket.ErrStale) || errors.Is(err, ErrInvalid) || errors.Is(err, ErrRevoked) {
		t.Fatalf("err = %v, want the store's error, distinct from invalid/revoked", err)
	}
}

// TestRevokeUserOutlastsUserTokens: a logout-all lasts as long as the
// longest-lived user JWT it must end, not only as long as sessions.
func TestRevokeUserOutlastsUserTokens(t *testing.T) {
	f := newFixture(t)
	m := NewManager(Config{Signer: f.signer(), TTL: time.Hour, Revocations: f.store, Identities: users, UserTokenTTL: 10 * time.Hour})
	issued := f.clock.t
	f.clock.t = f.clock.t.Add(time.Minute)
	if err := m.RevokeUser(context.Background(), alice.UserID, f.clock.t); err != nil {
		t.Fatal(err)
	}
	for _, after := range []time.Duration{0, 5 * time.Hour, 10 * time.Hour} {
		f.clock.t = issued.Add(time.Minute + after)
		if revoked, err := m.UserTokenRevoked(alice.UserID, issued); err != nil || !revoked {
			t.Fatalf("%s after the logout-all, a user JWT from before: revoked %v, %v", after, revoked, err)
		}
	}
	if revoked, err := m.UserTokenRevoked(alice.UserID, issued.Add(time.Minute)); err != nil || revoked {
		t.Fatalf("a user JWT of the logout-all's second: revoked %v, %v", revoked, err)
	}
	if revoked, _ := m.UserTokenRevoked("u-other", issued); revoked {
		t.Fatal("another user's token was revoked")
	}
}

// TestDerivedKeysFollowTheSigningKey: derived keys are kept between calls,
// and the first is the signing key's still after a rotation activates the
// new key without a new reading of the ring, the old one following it.
func TestDerivedKeysFollowTheSigningKey(t *testing.T) {
	ctx := context.Background()
	c := &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	r, _ := LoadKeyRing(ctx, memstorage.New(), "k", c.Now)
	before := r.DeriveKeys("form token")
	if again := r.DeriveKeys("form token"); &again[0][0] != &before[0][0] {
		t.Fatal("the keys were derived again")
	}
	if _, err := r.Rotate(ctx, 5*time.Minute, 2*time.Hour); err != nil {
		t.Fatal(err)
	}
	if got := r.DeriveKeys("form token"); string(got[0]) != string(before[0]) || len(got) != 2 {
		t.Fatalf("before the new key activates: %d keys, first changed %v", len(got), string(got[0]) != string(before[0]))
	}
	c.t = c.t.Add(5 * time.Minute)
	after := r.DeriveKeys("form token")
	if len(after) != 2 || string(after[0]) == string(before[0]) || string(after[1]) != string(before[0]) {
		t.Fatalf("after activation: the new key's should come first, then the old (%d keys)", len(after))
	}
}

// A session the person asked to keep lasts PersistentTTL, and verifies
// past the ordinary TTL; an ordinary one does not, and a token that claims
// more than the longest lifetime is refused.
func TestPersistentSessionsLastLonger(t *testing.T) {
	f := newFixture(t)
	f.m = NewManager(Config{Signer: f.signer(), TTL: time.Hour, PersistentTTL: 30 * 24 * time.Hour, Revocations: f.store, Identities: users})
	kept, exp, err := f.m.IssuePersistent(alice.UserID)
	if err != nil || !exp.Equal(f.clock.t.Add(30*24*time.Hour)) {
		t.Fatalf("persistent: expiry %v, %v", exp, err)
	}
	ordinary, _, _ := f.m.Issue(alice.UserID)
	f.clock.t = f.clock.t.Add(2 * time.Hour)
	if _, err := f.m.Verify(context.Background(), kept); err != nil {
		t.Fatalf("a persistent session after 2h: %v", err)
	}
	if _, err := f.m.Verify(context.Background(), ordinary); !errors.Is(err, ErrInvalid) {
		t.Fatalf("an ordinary session after 2h: %v", err)
	}
	f.clock.t = f.clock.t.Add(30 * 24 * time.Hour)
	if _, err := f.m.Verify(context.Background(), kept); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a persistent session after 30 days: %v", err)
	}
	// Without PersistentTTL, a persistent session is an ordinary one.
	plain := NewManager(Config{Signer: f.signer(), TTL: time.Hour, Revocations: f.store, Identities: users})
	if _, exp, _ := plain.IssuePersistent(alice.UserID); !exp.Equal(f.clock.t.Add(time.Hour)) {
		t.Fatalf("persistent without PersistentTTL: expiry %v", exp)
	}
}

// TestSessionSaysHowThePersonSignedIn: each sign-in method's session carries
// its amr (RFC 8176 values, then the method), when the person signed in and
// whether the session is to be kept, through both verifying paths; a
// session without a method carries no amr.
func TestSessionSaysHowThePersonSignedIn(t *testing.T) {
	f := newFixture(t)
	f.m = NewManager(Config{Signer: f.signer(), TTL: time.Hour, PersistentTTL: 24 * time.Hour, Revocations: f.store, Identities: users})
	for _, c := range []struct {
		method     string
		persistent bool
		amr        []string
	}{
		{"link", false, []string{"otp", "link"}},
		{"code", true, []string{"otp", "code"}},
		{"password", false, []string{"pwd", "password"}},
		{"invitation", false, []string{"otp", "invitation"}},
		{"password_reset", true, []string{"otp", "password_reset"}},
		{"passkey", false, []string{"passkey"}},
		{"", false, nil},
	} {
		tok, exp, err := f.m.IssueWith(alice.UserID, IssueOptions{Method: c.method, Persistent: c.persistent})
		if err != nil {
			t.Fatal(err)
		}
		s, err := f.m.Verify(context.Background(), tok)
		if err != nil {
			t.Fatalf("%s: %v", c.method, err)
		}
		if !slices.Equal(s.AMR, c.amr) || s.Method() != c.method || s.Persistent != c.persistent ||
			!s.AuthTime.Equal(f.clock.t) || !s.Expiry.Equal(exp) {
			t.Fatalf("%s: session %+v", c.method, s)
		}
		if c.persistent != exp.Equal(f.clock.t.Add(24*time.Hour)) {
			t.Fatalf("%s: expiry %v", c.method, exp)
		}
		fast, v := f.signer().verifySessionFast(tok, 24*time.Hour)
		ref, err := f.signer().verifySessionJWX(tok, 24*time.Hour)
		if v != accepted || err != nil || fast != ref {
			t.Fatalf("%s: fast path %v %+v, jwx %+v %v", c.method, v, fast, ref, err)
		}
	}
}
