package caddymodule

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mailgate/caddy-mailgate/internal/redistest"
)

// TestRedisSentinelFailoverInCaddy: with `store redis { sentinel ... }`
// and min_replicas_ack 1, the primary is killed mid-journey. Sign-ins are
// refused (503) while no primary can acknowledge them, and work again by
// themselves, no restart, within the failover's time plus 5s; the logout
// and the pending link recorded before the failover are still there after
// it, on the promoted replica.
func TestRedisSentinelFailoverInCaddy(t *testing.T) {
	d := redistest.StartSentinel(t, 1)
	e := startCaddyWith(t, func(e *env) siteConfig {
		return siteConfig{Global: e.logBlock("caddy.log", ""), Mailgate: fmt.Sprintf(`store redis {
			sentinel %s
			master_name %s
			min_replicas_ack 1
			key_prefix test:
			timeout 500ms
			ack_timeout 250ms
		}`, strings.Join(d.Addrs(), " "), redistest.MasterName)}
	})
	ctx := context.Background()

	// Before the failover: alice signs in and out, bob signs in, and dave
	// has asked for a link he has not opened yet.
	alice := e.browser(t)
	aliceToken := alice.login("alice@example.com", "/")
	alice.get("/.mailgate/logout")
	if r := alice.post("/.mailgate/logout", map[string]string{"form_token": alice.cookie("__Host-mailgate-form")}); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: %s", r.Status)
	}
	bob := e.browser(t)
	bobToken := bob.login("bob@corp.example", "/")
	dave := e.browser(t)
	if r := dave.requestLink("dave@corp.example", "/"); r.StatusCode != http.StatusOK {
		t.Fatalf("dave's link request: %s", r.Status)
	}
	daveLink := e.mailedLink(t, "dave@corp.example")

	// Link requests, each for an address of its own, as people keep
	// arriving: 303 once the request is stored and acknowledged.
	visitor := e.browser(t)
	if r := visitor.get("/.mailgate/login"); r.StatusCode != http.StatusOK {
		t.Fatalf("login page: %s", r.Status)
	}
	probes := 0
	linkRequest := func() int {
		probes++
		return visitor.post("/.mailgate/login/email", map[string]string{
			"email": fmt.Sprintf("visitor%d@corp.example", probes), "return": "/",
			"form_token": visitor.cookie("__Host-mailgate-form"),
		}).StatusCode
	}

	d.Master.Stop()
	killed := time.Now()
	if code := linkRequest(); code != http.StatusServiceUnavailable {
		t.Fatalf("a link request with the primary dead: %d, want 503", code)
	}
	d.WaitPromoted(t)
	promoted := time.Since(killed)
	// The promoted replica has no replica to acknowledge writes until a
	// supervisor brings the dead node back as one.
	d.Rejoin(t)
	refused := 1
	for linkRequest() != http.StatusSeeOther {
		refused++
		if time.Since(killed) > promoted+5*time.Second {
			t.Fatalf("link requests still refused %s after the primary died (promoted after %s)", time.Since(killed), promoted)
		}
		time.Sleep(100 * time.Millisecond)
	}
	healed := time.Since(killed)
	t.Logf("failover through Caddy: replica promoted after %s, link requests accepted again after %s (%d refused with 503 in between)", promoted, healed, refused)

	// Nothing recorded before the failover is lost. The promoted replica
	// holds alice's logout, which every instance, even one started now,
	// reads; her old cookie stays refused.
	master, err := d.MasterAddr(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: master})
	t.Cleanup(func() { _ = rdb.Close() })
	if n, err := rdb.XLen(ctx, "test:default:revocations").Result(); err != nil || n != 1 {
		t.Fatalf("the revocation log on the promoted replica holds %d entries (%v), want alice's logout", n, err)
	}
	if r := e.browser(t).do(e.withCookie("/", aliceToken)); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("alice's logged-out cookie after the failover: %s", r.Status)
	}
	// Bob's session carries on, and his logout after the failover holds.
	if r := bob.get("/"); r.StatusCode != http.StatusOK {
		t.Fatalf("bob after the failover: %s", r.Status)
	}
	bob.get("/.mailgate/logout")
	if r := bob.post("/.mailgate/logout", map[string]string{"form_token": bob.cookie("__Host-mailgate-form")}); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("bob's logout after the failover: %s", r.Status)
	}
	if r := e.browser(t).do(e.withCookie("/", bobToken)); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("bob's logged-out cookie: %s", r.Status)
	}
	// The operator sees the failover in Caddy's log, at warn; the
	// client's routine discovery of sentinels stays at info.
	lines, err := os.ReadFile(filepath.Join(e.dir, "caddy.log"))
	if err != nil {
		t.Fatal(err)
	}
	logged := func(level, msg string) bool {
		for _, l := range strings.Split(string(lines), "\n") {
			if strings.Contains(l, `"logger":"http.handlers.mailgate.redis"`) && strings.Contains(l, `"level":"`+level+`"`) && strings.Contains(l, msg) {
				return true
			}
		}
		return false
	}
	if !logged("warn", "sentinel: new master") || !logged("info", "sentinel: selected") || logged("warn", "sentinel: selected") {
		t.Errorf("Caddy's log lacks the failover at warn or the sentinel's selection at info:\n%s", lines)
	}
	// Dave's pending link, asked for before the failover, signs him in.
	if r := dave.confirm(daveLink); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("dave's link after the failover: %s\n%s", r.Status, r.body)
	}
	if r := dave.get("/"); r.StatusCode != http.StatusOK {
		t.Fatalf("dave signed in by his link: %s", r.Status)
	}
}

// TestRedisHAConfigErrors: a Sentinel or Cluster store that cannot work is
// refused when the Caddyfile is read, with the line.
func TestRedisHAConfigErrors(t *testing.T) {
	store := func(inner string) string {
		return "base_url https://app.example.com\n" + outbox + "store redis {\n" + inner + "\n}"
	}
	for name, c := range map[string]struct{ body, want string }{
		"sentinel without master_name":  {store("sentinel 127.0.0.1:26379"), "master_name is required"},
		"master_name without sentinel":  {store("address 127.0.0.1:6379\nmaster_name mymaster"), "go with sentinel"},
		"address and cluster":           {store("address 127.0.0.1:6379\ncluster 127.0.0.1:7000"), "not several"},
		"sentinel with no address":      {store("sentinel\nmaster_name mymaster"), "wrong argument count"},
		"cluster address not host:port": {store("cluster 127.0.0.1:7000 redis-b"), `store redis address "redis-b": want host:port`},
		"cluster with a db":             {store("cluster 127.0.0.1:7000\ndb 2"), "db must be 0"},
		"cluster prefix with braces":    {store("cluster 127.0.0.1:7000\nkey_prefix {a}:"), "no braces"},
		"negative min_replicas_ack":     {store("address 127.0.0.1:6379\nmin_replicas_ack -1"), "min_replicas_ack -1"},
		"ack_timeout over timeout":      {store("address 127.0.0.1:6379\ntimeout 1s\nack_timeout 2s"), "shorter than timeout"},
		"sentinel on store memory":      {"base_url https://app.example.com\n" + outbox + "store memory {\nsentinel 127.0.0.1:26379\n}", "are for store redis"},
	} {
		t.Run(name, func(t *testing.T) {
			err := validate(t, c.body)
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "Caddyfile:") {
				t.Fatalf("error %v, want one mentioning %q and the Caddyfile line", err, c.want)
			}
		})
	}
}

// TestTwoInstancesOnRedisClusterBehaveAsOne: the two-instance journey
// (a link asked for on one instance and confirmed on the other, a code
// exchanged once, a used DPoP proof, a logout seen within 5s, 20
// concurrent confirms of one link) on a three-master Redis Cluster.
func TestTwoInstancesOnRedisClusterBehaveAsOne(t *testing.T) {
	c := redistest.StartCluster(t)
	twoInstancesBehaveAsOne(t, siteConfig{Mailgate: "store redis {\n\t\t\tcluster " + strings.Join(c.Addrs(), " ") + "\n\t\t}"})
}
