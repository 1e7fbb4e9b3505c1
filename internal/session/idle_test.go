package session

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/mailgate/caddy-mailgate/internal/memstorage"
)

// TestIdleSessionsEnd: with Idle set, a session unused for longer is
// refused; one in use is refreshed at most once a minute and lives on, with
// its sign-in time, amr and absolute expiry, until the absolute lifetime
// ends it; the old token's later requests get the same refresh; a logout-all
// before a refresh still refuses the refreshed token.
func TestIdleSessionsEnd(t *testing.T) {
	f := newFixture(t)
	f.m = NewManager(Config{Signer: f.signer(), TTL: time.Hour, Idle: 10 * time.Minute, Revocations: f.store, Identities: users})
	ctx := context.Background()
	signIn := f.clock.t
	tok, exp, err := f.m.IssueWith(alice.UserID, IssueOptions{Method: "code"})
	if err != nil {
		t.Fatal(err)
	}
	s, err := f.m.Verify(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	if r, err := f.m.Refresh(s); r != nil || err != nil {
		t.Fatalf("a refresh within the first minute: %+v, %v", r, err)
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = f.m.Refresh(s) }); n != 0 {
		t.Fatalf("a refresh not due allocated %v times", n)
	}

	// Unused for the limit: refused.
	f.clock.t = signIn.Add(10 * time.Minute)
	if _, err := f.m.Verify(ctx, tok); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a session unused for 10m: %v, want ErrInvalid", err)
	}

	// Used every 9 minutes: refreshed, and alive past the limit.
	f.clock.t = signIn.Add(9 * time.Minute)
	for i := 0; f.clock.t.Before(signIn.Add(time.Hour)); i++ {
		s, err := f.m.Verify(ctx, tok)
		if err != nil {
			t.Fatalf("in use at %s: %v", f.clock.t.Sub(signIn), err)
		}
		r, err := f.m.Refresh(s)
		if err != nil || r == nil {
			t.Fatalf("refresh at %s: %+v, %v", f.clock.t.Sub(signIn), r, err)
		}
		if again, _ := f.m.Refresh(s); again != r {
			t.Fatal("the old token's next request got another refresh")
		}
		if !r.Expiry.Equal(exp) {
			t.Fatalf("a refresh moved the absolute expiry: %v, want %v", r.Expiry, exp)
		}
		next, err := f.m.Verify(ctx, r.Token)
		if err != nil || next.ID != s.ID || !next.AuthTime.Equal(signIn) || next.Method() != "code" || next.Data != s.Data {
			t.Fatalf("the refreshed session: %+v, %v", next, err)
		}
		// A second instance, without the cache, reads the same.
		other := NewManager(Config{Signer: f.signer(), TTL: time.Hour, Idle: 10 * time.Minute, Revocations: f.store, Identities: users})
		if o, err := other.Verify(ctx, r.Token); err != nil || o.ID != s.ID || !o.AuthTime.Equal(signIn) {
			t.Fatalf("the refreshed token on another instance: %+v, %v", o, err)
		}
		tok = r.Token
		f.clock.t = f.clock.t.Add(9 * time.Minute)
	}
	// The absolute lifetime holds, in use or not.
	if _, err := f.m.Verify(ctx, tok); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a session in use past its absolute lifetime: %v, want ErrInvalid", err)
	}
}

// TestRefreshKeepsAPersistentSession: a session the person asked to keep
// is re-issued as one, for its cookie to outlive the browser still, with
// the expiry of its sign-in.
func TestRefreshKeepsAPersistentSession(t *testing.T) {
	f := newFixture(t)
	f.m = NewManager(Config{Signer: f.signer(), TTL: time.Hour, PersistentTTL: 24 * time.Hour, Idle: 10 * time.Minute, Revocations: f.store, Identities: users})
	ctx := context.Background()
	tok, exp, _ := f.m.IssueWith(alice.UserID, IssueOptions{Method: "password", Persistent: true})
	f.clock.t = f.clock.t.Add(5 * time.Minute)
	s, err := f.m.Verify(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	r, err := f.m.Refresh(s)
	if err != nil || r == nil || !r.Persistent || !r.Expiry.Equal(exp) {
		t.Fatalf("refreshing a persistent session: %+v, %v; want persistent until %v", r, err, exp)
	}
	if next, err := f.m.Verify(ctx, r.Token); err != nil || !next.Persistent || next.Method() != "password" {
		t.Fatalf("the refreshed persistent session: %+v, %v", next, err)
	}
}

// TestLogoutAllRefusesRefreshedSessions: a refresh after a logout-all's
// cut-off does not escape it, because the cut-off is held against when the
// person signed in.
func TestLogoutAllRefusesRefreshedSessions(t *testing.T) {
	f := newFixture(t)
	f.m = NewManager(Config{Signer: f.signer(), TTL: time.Hour, Idle: 10 * time.Minute, Revocations: f.store, Identities: users})
	ctx := context.Background()
	tok, _, _ := f.m.IssueWith(alice.UserID, IssueOptions{Method: "link"})
	f.clock.t = f.clock.t.Add(2 * time.Minute)
	s, err := f.m.Verify(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.m.RevokeUser(ctx, alice.UserID, f.clock.t); err != nil {
		t.Fatal(err)
	}
	f.clock.t = f.clock.t.Add(time.Second)
	r, err := f.m.Refresh(s)
	if err != nil || r == nil {
		t.Fatalf("refresh: %+v, %v", r, err)
	}
	if _, err := f.m.Verify(ctx, r.Token); !errors.Is(err, ErrRevoked) {
		t.Fatalf("a token refreshed after a logout-all: %v, want ErrRevoked", err)
	}
}

// BenchmarkRefresh is what session_idle costs a session in use once a
// minute: a new token MACed through jwx and cached with the session's
// identity.
func BenchmarkRefresh(b *testing.B) {
	c := &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	ring, err := LoadKeyRing(context.Background(), memstorage.New(), "k", c.Now)
	if err != nil {
		b.Fatal(err)
	}
	m := NewManager(Config{Signer: Signer{Ring: ring, Issuer: "https://app.example.com", Audience: "default", Now: c.Now},
		TTL: time.Hour, Idle: 30 * time.Minute, Revocations: nil, Identities: users})
	tok, _, _ := m.IssueWith(alice.UserID, IssueOptions{Method: "link"})
	s, err := m.verify(context.Background(), tok)
	if err != nil {
		b.Fatal(err)
	}
	c.t = c.t.Add(RefreshEvery)
	b.ReportAllocs()
	for b.Loop() {
		s.renewal.Store(nil)
		if r, err := m.Refresh(s); r == nil || err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAssertionSign is the signature the guard makes once per session
// and then about every four minutes while it is in use, never per request.
func BenchmarkAssertionSign(b *testing.B) {
	c := &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	ring, err := LoadKeyRing(context.Background(), memstorage.New(), "k", c.Now)
	if err != nil {
		b.Fatal(err)
	}
	s := &Session{Identity: alice, ID: "s-1", Expiry: c.t.Add(time.Hour), AuthTime: c.t, AMR: AMR("link")}
	a := &Assertions{Signer: Signer{Ring: ring, Issuer: "https://app.example.com", Audience: "https://app.example.com", Now: c.Now}, TTL: MaxAssertionTTL}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := a.Sign(s); err != nil {
			b.Fatal(err)
		}
	}
}
