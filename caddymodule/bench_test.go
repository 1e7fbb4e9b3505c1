package caddymodule

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/certmagic"
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
	return guardFixtureIdle(b, rev, 0, time.Now)
}

// guardFixtureIdle is guardFixtureWith with session_idle set to idle.
func guardFixtureIdle(b testing.TB, rev session.Revocations, idle time.Duration, now func() time.Time) (*Mailgate, *http.Request) {
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
	// The decision counters as provisioning resolves them, so that the
	// benchmark counts their cost.
	m.decisions = newCollectors().guardFor("default")
	m.sessions = session.NewManager(session.Config{
		Signer:      session.Signer{Ring: ring, Issuer: "https://app.example.com", Audience: "default", Now: now},
		TTL:         time.Hour,
		Idle:        idle,
		Revocations: rev,
		Identities:  newIdentities(users, flow.NewAllowlist([]string{"alice@example.com"}, nil), time.Now),
		Prepare:     m.headers.prepare,
		// The cache's counters as provisioning sets them.
		CacheCounters: m.decisions.cache,
	})
	token, _, err := m.sessions.Issue(alice.ID)
	if err != nil {
		b.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodGet, "https://app.example.com/dashboard?tab=2", nil)
	r.Header.Set("Accept", "text/html,application/xhtml+xml")
	r.Header.Set("User-Agent", "Mozilla/5.0")
	// mailgate's cookies last, as cookies set last come last: the guard
	// strips them without a new string (BenchmarkGuardCookiesAround has
	// them between the others).
	r.Header.Set("Cookie", "_ga=GA1.1.123; theme=dark; __Host-mailgate-form=abc; __Host-mailgate="+token)
	repl := caddy.NewReplacer()
	r = r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, repl))
	return m, r
}

// serveAgain is the guard benchmarks' loop: the same request, put back as
// it was, through the guard b.N times.
func serveAgain(b *testing.B, m *Mailgate, w http.ResponseWriter, r *http.Request, again func()) {
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		again()
		if err := m.ServeHTTP(w, r, nextOK); err != nil {
			b.Fatal(err)
		}
	}
}

var nextOK = caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { return nil })

// BenchmarkGuard is the cost mailgate adds to every proxied request with a
// session it has seen before: find the cookie, look the token up, check it
// is not revoked, strip and set the identity headers, set placeholders.
func BenchmarkGuard(b *testing.B) {
	m, r := guardFixture(b)
	again := resend(r)
	w := httptest.NewRecorder()
	if err := m.ServeHTTP(w, r, nextOK); err != nil || r.Header.Get("Remote-Email") != "alice@example.com" || r.Header.Get("Cookie") != "_ga=GA1.1.123; theme=dark" {
		b.Fatalf("guard did not pass the request: %v", err)
	}
	serveAgain(b, m, w, r, again)
}

// BenchmarkGuardAssertion is BenchmarkGuard with the signed assertion on:
// the session's assertion, signed at its first request, is a load and a
// comparison away, so a request costs what one without it costs.
func BenchmarkGuardAssertion(b *testing.B) {
	m, r := guardFixture(b)
	ring, err := session.LoadKeyRing(context.Background(), memstorage.New(), "k", time.Now)
	if err != nil {
		b.Fatal(err)
	}
	m.origin = "https://app.example.com"
	m.assertions = m.provisionAssertions(ring)
	again := resend(r)
	w := httptest.NewRecorder()
	if err := m.ServeHTTP(w, r, nextOK); err != nil || r.Header.Get("Mailgate-Assertion") == "" {
		b.Fatalf("guard set no assertion: %v", err)
	}
	serveAgain(b, m, w, r, again)
}

// BenchmarkGuardIdle is BenchmarkGuard with session_idle on: a request
// that does not re-issue the cookie (all of them, within the benchmark's
// minute) adds a comparison.
func BenchmarkGuardIdle(b *testing.B) {
	m, r := guardFixtureIdle(b, nil, 30*time.Minute, time.Now)
	again := resend(r)
	w := httptest.NewRecorder()
	serveAgain(b, m, w, r, again)
	if w.Header().Get("Set-Cookie") != "" {
		b.Fatal("the session was re-issued within its first minute")
	}
}

// BenchmarkGuardIdleRenewed is BenchmarkGuardIdle for a client that keeps
// sending a session's token after the guard re-issued it (a fixed cookie,
// or a page's requests already under way): each request gets the one new
// token again, with its Set-Cookie, and nothing is signed again.
func BenchmarkGuardIdleRenewed(b *testing.B) {
	var offset atomic.Int64
	now := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	m, r := guardFixtureIdle(b, nil, 30*time.Minute, now)
	again := resend(r)
	if err := m.ServeHTTP(httptest.NewRecorder(), r, nextOK); err != nil {
		b.Fatal(err)
	}
	offset.Store(int64(session.RefreshEvery + time.Second))
	again()
	first := httptest.NewRecorder()
	if err := m.ServeHTTP(first, r, nextOK); err != nil || first.Header().Get("Set-Cookie") == "" {
		b.Fatalf("no re-issue a minute on: %v", err)
	}
	w := httptest.NewRecorder()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		again()
		delete(w.Header(), "Set-Cookie")
		if err := m.ServeHTTP(w, r, nextOK); err != nil {
			b.Fatal(err)
		}
		if w.Header().Get("Set-Cookie") != first.Header().Get("Set-Cookie") {
			b.Fatal("a request with the old token got another new one")
		}
	}
}

// BenchmarkGuardCookiesAround is BenchmarkGuard with mailgate's cookies
// between the site's others: the Cookie line the upstream gets is a new
// string, one allocation.
func BenchmarkGuardCookiesAround(b *testing.B) {
	m, r := guardFixture(b)
	r.Header.Set("Cookie", "_ga=GA1.1.123; __Host-mailgate="+session.FindCookie(r.Header, "__Host-mailgate")+"; theme=dark")
	again := resend(r)
	w := httptest.NewRecorder()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		again()
		if err := m.ServeHTTP(w, r, nextOK); err != nil || r.Header.Get("Cookie") != "_ga=GA1.1.123; theme=dark" {
			b.Fatalf("guard: %v, Cookie %q", err, r.Header.Get("Cookie"))
		}
	}
}

// resend returns a function that puts r's Cookie header back as it is now,
// without an allocation: the guard takes mailgate's cookies out of the
// request it passes on, and a benchmark sends the same request again.
func resend(r *http.Request) func() {
	lines := r.Header["Cookie"]
	first := lines[0]
	return func() {
		lines[0] = first
		r.Header["Cookie"] = lines
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
		again := resend(r)
		w := httptest.NewRecorder()
		for pb.Next() {
			again()
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
// guard's cache, as the live heap grows with 65,536 of them, without the
// signed assertion and with it (the guard keeps each session's assertion
// with its identity). The process's resident memory per session, which
// also counts the room the garbage collector lets the heap grow into, is
// measured in Caddy by scripts/bench-wrk.sh: here the minting's garbage has
// already made the heap resident.
func BenchmarkCachedSessionMemory(b *testing.B) {
	for _, asserted := range []bool{false, true} {
		b.Run(map[bool]string{false: "assertion-off", true: "assertion"}[asserted], func(b *testing.B) {
			for range b.N {
				m, r := guardFixture(b)
				if asserted {
					ring, err := session.LoadKeyRing(context.Background(), memstorage.New(), "k", time.Now)
					if err != nil {
						b.Fatal(err)
					}
					m.origin = "https://app.example.com"
					m.assertions = m.provisionAssertions(ring)
				}
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
					s, err := m.sessions.Verify(context.Background(), tok)
					if err != nil {
						b.Fatal(err)
					}
					if asserted {
						if _, err := m.assertions.value(s, s.Data.(*identity)); err != nil {
							b.Fatal(err)
						}
					}
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				b.ReportMetric((float64(after.HeapAlloc)-float64(before.HeapAlloc))/n, "B/session")
				// The cache must outlive the second GC to be counted.
				runtime.KeepAlive(m)
				runtime.KeepAlive(tokens)
			}
		})
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

// BenchmarkCaddy is a request through a whole Caddy in this process, client
// and upstream included, to a plain reverse_proxy site and to a mailgate
// site in front of the same upstream, both with the same session cookie,
// and a mailgate site with `assertion off`.
// The difference between its sub-benchmarks (time, and allocations exactly)
// is what mailgate costs in Caddy, which BenchmarkGuard does not see: the
// handler chain, the replacer, the headers reverse_proxy copies and writes,
// the garbage collector. Compare CPU profiles of two sub-benchmarks
// (-cpuprofile, -cpu 1 as Caddy pinned to one core) to see where.
func BenchmarkCaddy(b *testing.B) {
	dir := b.TempDir()
	b.Setenv("XDG_CONFIG_HOME", filepath.Join(dir, "config"))
	b.Setenv("XDG_DATA_HOME", filepath.Join(dir, "data"))
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "hello from upstream")
	}))
	b.Cleanup(upstream.Close)
	plain, guarded, unasserted := benchPort(b), benchPort(b), benchPort(b)
	caddyfile := fmt.Sprintf(`{
	admin off
	persist_config off
	storage file_system %[1]s/storage
}
http://localhost:%[2]d {
	reverse_proxy %[4]s
}
http://localhost:%[3]d {
	mailgate {
		base_url http://localhost:%[3]d
		allow email bench@example.com
		outbox %[1]s/outbox
	}
	reverse_proxy %[4]s
}
http://localhost:%[5]d {
	mailgate {
		base_url http://localhost:%[5]d
		allow email bench@example.com
		outbox %[1]s/outbox
		assertion off
	}
	reverse_proxy %[4]s
}`, dir, plain, guarded, upstream.Listener.Addr(), unasserted)
	cfg, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(caddyfile), nil)
	if err != nil {
		b.Fatal(err)
	}
	if err := caddy.Load(cfg, true); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = caddy.Stop() })

	// Sessions made as mint-sessions makes them: the realm's stored ring,
	// a user in its directory.
	ctx := context.Background()
	st := &certmagic.FileStorage{Path: filepath.Join(dir, "storage")}
	ring, err := session.LoadKeyRing(ctx, st, "mailgate/default/keys.json", time.Now)
	if err != nil {
		b.Fatal(err)
	}
	u, err := directory.New(st, "mailgate/default", time.Now).EnsureByEmail(ctx, "bench@example.com")
	if err != nil {
		b.Fatal(err)
	}
	issuer := fmt.Sprintf("http://localhost:%d", guarded)
	sessions := session.NewManager(session.Config{
		Signer: session.Signer{Ring: ring, Issuer: issuer, Audience: "default", Now: time.Now},
		TTL:    defaultSessionTTL,
	})
	known, _, err := sessions.Issue(u.ID)
	if err != nil {
		b.Fatal(err)
	}
	// The site without the assertion has its own issuer.
	knownUnasserted, _, err := session.NewManager(session.Config{
		Signer: session.Signer{Ring: ring, Issuer: fmt.Sprintf("http://localhost:%d", unasserted), Audience: "default", Now: time.Now},
		TTL:    defaultSessionTTL,
	}).Issue(u.ID)
	if err != nil {
		b.Fatal(err)
	}

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	get := func(b *testing.B, port int, cookie string) {
		req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("http://localhost:%d/", port), nil)
		if cookie != "" {
			req.Header.Set("Cookie", "mailgate="+cookie)
		}
		res, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			b.Fatalf("status %d", res.StatusCode)
		}
	}
	for _, c := range []struct {
		name  string
		port  int
		fresh bool
		token string
	}{
		{"plain", plain, false, known},
		{"plain-no-cookie", plain, false, ""},
		{"known", guarded, false, known},
		{"known-assertion-off", unasserted, false, knownUnasserted},
		{"plain-fresh", plain, true, ""},
		{"first-sight", guarded, true, ""},
	} {
		b.Run(c.name, func(b *testing.B) {
			// A fresh session per request, and one more to warm up with.
			tokens := []string{c.token}
			if c.fresh {
				tokens = make([]string, b.N+1)
				for i := range tokens {
					tokens[i], _, _ = sessions.Issue(u.ID)
				}
			}
			get(b, c.port, tokens[len(tokens)-1])
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				get(b, c.port, tokens[i%len(tokens)])
			}
		})
	}
}

// benchPort is a free port on loopback.
func benchPort(b *testing.B) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
