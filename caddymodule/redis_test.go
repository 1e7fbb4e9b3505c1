package caddymodule

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mailgate/caddy-mailgate/internal/redistest"
)

// TestRedisStoreInCaddy: with `store redis`, the whole journey keeps its
// state in Redis (under the realm's prefix, no secret in a key); a Redis
// that goes away fails closed, and mailgate recovers by itself when it is
// back.
func TestRedisStoreInCaddy(t *testing.T) {
	srv := redistest.Start(t)
	e := startCaddyWith(t, func(*env) siteConfig {
		return siteConfig{Mailgate: redisStore(srv.Addr(), "key_prefix test:", "timeout 500ms")}
	})
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { rdb.Close() })
	ctx := context.Background()

	// A first login loads the store's scripts into Redis; the second one
	// is what every login costs after that.
	e.browser(t).login("bob@corp.example", "/")
	b := e.browser(t)
	var token string
	trips, inScripts := redisRoundTrips(t, rdb, func() { token = b.login("alice@example.com", "/") })
	afterLogin := redisCalls(t, rdb)
	// docs/performance.md, "Redis commands per login", lists these.
	// The request: two counters, storing the link; the link page and
	// the confirm: the IP's failure count, the link, the refund.
	if want := []string{"evalsha", "evalsha", "evalsha", "evalsha", "get", "evalsha", "evalsha", "getdel", "evalsha"}; !slices.Equal(trips, want) {
		t.Errorf("a login's round trips to Redis: %v, want %v (update docs/performance.md)", trips, want)
	}
	t.Logf("a login's round trips: %v; commands run inside scripts: %d", trips, inScripts)
	for range 100 {
		if r := b.get("/"); r.StatusCode != http.StatusOK {
			t.Fatalf("signed in: %s", r.Status)
		}
	}
	// The guard reads revocations from memory: proxied requests cost Redis
	// nothing.
	if n := redisCalls(t, rdb) - afterLogin; n != 0 {
		t.Errorf("100 proxied requests made %d Redis commands, want 0", n)
	}
	keys, err := rdb.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if !strings.HasPrefix(k, "test:default:") || strings.Contains(k, "alice") || strings.Contains(k, token) {
			t.Errorf("key %q: not under the realm's prefix, or holds a secret or an address", k)
		}
	}
	if !strings.Contains(strings.Join(keys, " "), "test:default:counters:") {
		t.Errorf("no rate-limit counter in Redis: %v", keys)
	}

	// Logout is written to the stream, and the copy of the cookie is
	// refused.
	b.get("/.mailgate/logout")
	if r := b.post("/.mailgate/logout", map[string]string{"form_token": b.cookie("__Host-mailgate-form")}); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: %s", r.Status)
	}
	if n, _ := rdb.XLen(ctx, "test:default:revocations").Result(); n != 1 {
		t.Fatalf("%d entries in the revocation stream, want 1", n)
	}
	if r := e.browser(t).do(e.withCookie("/", token)); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("the logged-out cookie: %s", r.Status)
	}

	// Redis goes away. A login fails with 503, not a false "check your
	// inbox"; once the revocation feed is stale_after behind, a valid
	// session is refused too: nobody is admitted on unchecked state.
	bob := e.browser(t)
	bobToken := bob.login("bob@corp.example", "/")
	srv.Stop()
	// Each says so, to a person and to a program, and when to try again.
	unavailablePage := func(r response) bool {
		return r.StatusCode == http.StatusServiceUnavailable && r.Header.Get("Retry-After") == "60" &&
			strings.Contains(r.body, "Temporarily unavailable") && strings.Contains(r.body, "reload this page in a minute")
	}
	if r := e.browser(t).requestLink("carol@corp.example", "/"); !unavailablePage(r) {
		t.Fatalf("a link request with Redis down: %s, want the unavailable page\n%s", r.Status, r.body)
	}
	clockOffset.Add(int64(6 * time.Second))
	if r := bob.get("/"); !unavailablePage(r) || strings.Contains(r.body, "hello") {
		t.Fatalf("a session with Redis down for longer than stale_after: %s, want the unavailable page\n%s", r.Status, r.body)
	}
	if r := bob.do(e.withCookie("/api/items", bobToken)); r.StatusCode != http.StatusServiceUnavailable || r.Header.Get("Retry-After") == "" ||
		!strings.Contains(r.body, `"error":"temporarily_unavailable"`) {
		t.Fatalf("an API call with Redis down: %s %s", r.Status, r.body)
	}

	// Redis is back (empty, as after a crash without persistence): the
	// feed catches up by itself and logins work again, no restart.
	srv.Restart()
	deadline := time.Now().Add(10 * time.Second)
	for bob.do(e.withCookie("/", bobToken)).StatusCode != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatal("sessions were still refused 10s after Redis came back")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if token := e.browser(t).login("carol@corp.example", "/"); token == "" {
		t.Fatal("no login after Redis came back")
	}
}

// redisCalls is how many commands Redis has run, leaving out the revocation
// feed's blocking reads (one a second whatever happens) and INFO itself.
func redisCalls(t *testing.T, rdb *redis.Client) int {
	t.Helper()
	info, err := rdb.Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, line := range strings.Split(info, "\n") {
		name, rest, ok := strings.Cut(strings.TrimPrefix(line, "cmdstat_"), ":calls=")
		if !ok || name == "xread" || name == "info" {
			continue
		}
		n, _ := strconv.Atoi(strings.SplitN(rest, ",", 2)[0])
		total += n
	}
	return total
}

// redisRoundTrips runs do while Redis's MONITOR watches, and returns the
// commands that came from clients, in order (the revocation feed's
// blocking reads left out), and how many ran inside scripts. MONITOR is
// spoken over a plain connection: its answer is one line per command.
func redisRoundTrips(t *testing.T, rdb *redis.Client, do func()) (trips []string, inScripts int) {
	t.Helper()
	// rdb's own connection is made before watching starts, so that only
	// the end marker of it shows.
	if err := rdb.Ping(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", rdb.Options().Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	lines := bufio.NewReader(conn)
	if _, err := conn.Write([]byte("MONITOR\r\n")); err != nil {
		t.Fatal(err)
	}
	if ok, err := lines.ReadString('\n'); err != nil || ok != "+OK\r\n" {
		t.Fatalf("MONITOR: %q %v", ok, err)
	}
	do()
	const end = "mailgate-test-end-of-round-trips"
	if err := rdb.Echo(context.Background(), end).Err(); err != nil {
		t.Fatal(err)
	}
	for {
		line, err := lines.ReadString('\n')
		if err != nil {
			t.Fatalf("MONITOR: %v; so far %v", err, trips)
		}
		if strings.Contains(line, end) {
			return trips, inScripts
		}
		// +1796514401.569646 [0 127.0.0.1:40318] "evalsha" "…" …
		_, rest, _ := strings.Cut(line, "] \"")
		name, _, _ := strings.Cut(rest, "\"")
		switch {
		case strings.Contains(line, " lua] "):
			inScripts++
		case name != "xread":
			trips = append(trips, strings.ToLower(name))
		}
	}
}
