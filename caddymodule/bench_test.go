package caddymodule

import (
	"context"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/mailgate/caddy-mailgate/internal/directory"
	"github.com/mailgate/caddy-mailgate/internal/flow"
	"github.com/mailgate/caddy-mailgate/internal/memstorage"
	"github.com/mailgate/caddy-mailgate/internal/session"
	"github.com/mailgate/caddy-mailgate/internal/ticket"
)

// guardFixture is a Mailgate with only what the guard needs, and a request
// that carries a valid session the way a browser sends it.
func guardFixture(b testing.TB) (*Mailgate, *http.Request) {
	b.Helper()
	return guardFixtureWith(b, nil)
}

// guardFixtureWith uses rev as the revocation list, or a memory store if nil.
func guardFixtureWith(b testing.TB, rev session.Revocations) (*Mailgate, *http.Request) {
	b.Helper()
	ring, err := session.LoadKeyRing(context.Background(), memstorage.New(), "k", time.Now)
	if err != nil {
		b.Fatal(err)
	}
	store, err := ticket.NewMemory(ticket.MinMemory, time.Now)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	if rev == nil {
		rev = store
	}
	users := directory.New(memstorage.New(), "mailgate/default", time.Now)
	alice, err := users.EnsureByEmail(context.Background(), "alice@example.com")
	if err != nil {
		b.Fatal(err)
	}
	m := &Mailgate{Prefix: defaultPrefix, secure: true, logger: zap.NewNop(), headers: newHeaderSet(nil)}
	m.sessions = session.NewManager(session.Config{
		Signer:      session.Signer{Ring: ring, Issuer: "https://app.example.com", Audience: "default", Now: time.Now},
		TTL:         time.Hour,
		Revocations: rev,
		Identities:  newIdentities(users, flow.NewAllowlist([]string{"alice@example.com"}, nil), time.Now),
		Prepare:     m.headers.prepare,
	})
	token, _, err := m.sessions.Issue(alice.ID)
	if err != nil {
		b.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodGet, "https://app.example.com/dashboard?tab=2", nil)
	r.Header.Set("Accept", "text/html,application/xhtml+xml")
	r.Header.Set("User-Agent", "Mozilla/5.0")
	r.Header.Set("Cookie", "_ga=GA1.1.123; __Host-mailgate-form=abc; __Host-mailgate="+token+"; theme=dark")
	repl := caddy.NewReplacer()
	r = r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, repl))
	return m, r
}

var nextOK = caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { return nil })

// BenchmarkGuard is the cost mailgate adds to every proxied request with a
// session it has seen before: find the cookie, look the token up, check it
// is not revoked, strip and set the identity headers, set placeholders.
func BenchmarkGuard(b *testing.B) {
	m, r := guardFixture(b)
	w := httptest.NewRecorder()
	if err := m.ServeHTTP(w, r, nextOK); err != nil || r.Header.Get("Remote-Email") != "alice@example.com" {
		b.Fatalf("guard did not pass the request: %v", err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := m.ServeHTTP(w, r, nextOK); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGuardUnauthenticated is an API call without a session: the 401
// with its challenge, and its JSON body or, on a site with handle_errors,
// the error handed to it. Not the hot path, but every client that lost its
// session crosses it.
func BenchmarkGuardUnauthenticated(b *testing.B) {
	m, r := guardFixture(b)
	m.loginURL = "https://app.example.com/.mailgate/login"
	m.challenge = `Mailgate realm="default", login_url="https://app.example.com/.mailgate/login"`
	r.Header.Del("Cookie")
	r.Header.Set("Accept", "application/json")
	withErrors := &caddyhttp.Server{Errors: &caddyhttp.HTTPErrorConfig{Routes: caddyhttp.RouteList{{}}}}
	for _, c := range []struct {
		name string
		r    *http.Request
	}{
		{"json", r},
		{"handle_errors", r.WithContext(context.WithValue(r.Context(), caddyhttp.ServerCtxKey, withErrors))},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				w := httptest.NewRecorder()
				_ = m.ServeHTTP(w, c.r, nextOK)
			}
		})
	}
}

// BenchmarkGuardParallel is BenchmarkGuard from every core at once: the
// cache and the store must not serialise requests.
func BenchmarkGuardParallel(b *testing.B) {
	m, proto := guardFixture(b)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		// Each request has its own replacer, as in Caddy.
		r := proto.Clone(context.WithValue(proto.Context(), caddy.ReplacerCtxKey, caddy.NewReplacer()))
		w := httptest.NewRecorder()
		for pb.Next() {
			if err := m.ServeHTTP(w, r, nextOK); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkGuardFirstSight is a session the guard has not seen before on
// every request: its MAC and claims, the user's record, the cache insert
// (into a full cache, once b.N passes its size).
func BenchmarkGuardFirstSight(b *testing.B) {
	m, r := guardFixture(b)
	user := firstUserID(b, m, r)
	tokens := make([]string, b.N)
	for i := range tokens {
		tokens[i], _, _ = m.sessions.Issue(user)
	}
	w := httptest.NewRecorder()
	b.ReportAllocs()
	b.ResetTimer()
	for _, tok := range tokens {
		r.Header.Set("Cookie", "__Host-mailgate="+tok)
		if err := m.ServeHTTP(w, r, nextOK); err != nil || r.Header.Get("Remote-Email") == "" {
			b.Fatalf("guard did not pass the request: %v", err)
		}
	}
}

// BenchmarkCachedSessionMemory reports what one verified session costs the
// guard's cache, as the heap grows with 65,536 of them.
func BenchmarkCachedSessionMemory(b *testing.B) {
	for range b.N {
		m, r := guardFixture(b)
		user := firstUserID(b, m, r)
		const n = session.DefaultCacheSize
		tokens := make([]string, n)
		for i := range tokens {
			tokens[i], _, _ = m.sessions.Issue(user)
		}
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for _, tok := range tokens {
			if _, err := m.sessions.Verify(context.Background(), tok); err != nil {
				b.Fatal(err)
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "B/session")
		runtime.KeepAlive(tokens)
	}
}

// firstUserID is the id of the user whose session the fixture's request
// carries.
func firstUserID(b testing.TB, m *Mailgate, r *http.Request) string {
	s, err := m.sessions.Verify(context.Background(), session.FindCookie(r.Header, "__Host-mailgate"))
	if err != nil {
		b.Fatal(err)
	}
	return s.UserID
}
