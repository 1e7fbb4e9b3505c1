package caddymodule

import (
	"context"
	"net/http"
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
		return siteConfig{Mailgate: "store redis {\n\t\t\taddress " + srv.Addr() + "\n\t\t\tkey_prefix test:\n\t\t\ttimeout 500ms\n\t\t}"}
	})
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { rdb.Close() })
	ctx := context.Background()

	b := e.browser(t)
	before := redisCalls(t, rdb)
	token := b.login("alice@example.com", "/")
	afterLogin := redisCalls(t, rdb)
	for range 100 {
		if r := b.get("/"); r.StatusCode != http.StatusOK {
			t.Fatalf("signed in: %s", r.Status)
		}
	}
	// The guard reads revocations from memory: proxied requests cost Redis
	// nothing. (Measured, for docs/performance.md: the login's count.)
	if n := redisCalls(t, rdb) - afterLogin; n != 0 {
		t.Errorf("100 proxied requests made %d Redis commands, want 0", n)
	}
	t.Logf("a login through the form (request, link page, confirm) made %d Redis commands", afterLogin-before)
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
