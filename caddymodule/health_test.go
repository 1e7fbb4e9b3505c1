package caddymodule

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/mailgate/caddy-mailgate/internal/redistest"
)

// adminHealth reads the admin endpoint's /mailgate/health.
func (e *env) adminHealth(t *testing.T) []healthReport {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://localhost:%d/mailgate/health", e.adminPort))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var reports []healthReport
	if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &reports) != nil || len(reports) != 1 {
		t.Fatalf("admin /mailgate/health: %s %s", resp.Status, b)
	}
	return reports
}

// TestHealthFollowsTheStore: {prefix}/health answers 200 while the keys and
// the Redis store are readable and the revocation feed is fresh, and 503,
// with nothing said, once Redis is down; the admin endpoint tells why
// (store error, feed lag), and both recover when Redis is back.
func TestHealthFollowsTheStore(t *testing.T) {
	srv := redistest.Start(t)
	e := startCaddyWith(t, func(*env) siteConfig {
		return siteConfig{Mailgate: redisStore(srv.Addr(), "key_prefix test:", "timeout 500ms")}
	})
	b := e.browser(t)
	health := func() response {
		t.Helper()
		return b.get("/.mailgate/health")
	}
	if r := health(); r.StatusCode != http.StatusOK || r.body != "ok\n" || r.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("health with everything up: %s %q %v", r.Status, r.body, r.Header)
	}
	rep := e.adminHealth(t)[0]
	if !rep.Healthy || !rep.Store.OK || rep.Store.Backend != "redis" || !rep.Keys.OK || rep.Keys.KeyID == "" ||
		!rep.RevocationFeed.Fresh || rep.MailQueue.Depth != 0 || rep.Realm != "default" || rep.BaseURL != e.base {
		t.Fatalf("admin detail with everything up: %+v", rep)
	}

	srv.Stop()
	// Past the second for which an answer is given again.
	clockOffset.Add(int64(healthReuse))
	if r := health(); r.StatusCode != http.StatusServiceUnavailable || r.body != "unavailable\n" {
		t.Fatalf("health with Redis down: %s %q, want 503 saying nothing more", r.Status, r.body)
	}
	rep = e.adminHealth(t)[0]
	if rep.Healthy || rep.Store.OK || rep.Store.Error == "" || !rep.Keys.OK {
		t.Fatalf("admin detail with Redis down: %+v", rep)
	}
	// Past stale_after (5s) without a read of the feed, the revocations
	// cannot vouch for a session either.
	clockOffset.Add(int64(6 * time.Second))
	if rep = e.adminHealth(t)[0]; rep.RevocationFeed.Fresh || rep.RevocationFeed.LagSeconds < 5 {
		t.Fatalf("admin detail of a feed 6s behind: %+v", rep.RevocationFeed)
	}

	// Redis is back: the store reconnects and the feed catches up by
	// itself, within its blocking read.
	srv.Restart()
	deadline := time.Now().Add(10 * time.Second)
	for health().StatusCode != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatalf("health still 503 10s after Redis came back: %+v", e.adminHealth(t)[0])
		}
		time.Sleep(50 * time.Millisecond)
	}
	if rep = e.adminHealth(t)[0]; !rep.Healthy || !rep.RevocationFeed.Fresh {
		t.Fatalf("admin detail after Redis came back: %+v", rep)
	}
}
