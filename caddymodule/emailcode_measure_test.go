package caddymodule

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mailgate/caddy-mailgate/internal/redistest"
)

// TestMeasureCodeStartLatency times the code API's start for an allowed
// address (a code mailed) against one outside the allow rules (none), as
// TestMeasureFormLatency does for the form: the answer must not tell them
// apart. A measurement, not a test: MAILGATE_MEASURE=200 runs it.
func TestMeasureCodeStartLatency(t *testing.T) {
	n := measureCount(t)
	measure := func(t *testing.T, site siteConfig) {
		e := startCaddyWith(t, func(*env) siteConfig { return site })
		// One client, so that every call reuses one kept-alive connection.
		b := e.browser(t)
		timeAllowedAgainstRefused(t, n, func(email string) time.Duration {
			req, _ := http.NewRequest(http.MethodPost, e.base+"/.mailgate/login/email/request?projectId="+gameProject, strings.NewReader(`{"email":"`+email+`"}`))
			req.Header.Set("Content-Type", "application/json")
			began := time.Now()
			r := b.do(req)
			took := time.Since(began)
			if r.StatusCode != http.StatusOK {
				t.Fatalf("%s: %s %s", email, r.Status, r.body)
			}
			return took
		})
	}
	t.Run("memory", func(t *testing.T) { measure(t, siteConfig{Mailgate: projectsConfig}) })
	t.Run("redis", func(t *testing.T) {
		srv := redistest.Start(t)
		measure(t, siteConfig{Mailgate: projectsConfig + "\n\t\t" + redisStore(srv.Addr())})
	})
}
