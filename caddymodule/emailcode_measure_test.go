package caddymodule

import (
	"net/http"
	"os"
	"strconv"
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
	n, _ := strconv.Atoi(os.Getenv("MAILGATE_MEASURE"))
	if n < 1 {
		t.Skip("a measurement, not a test: set MAILGATE_MEASURE=200 to run it")
	}
	measure := func(t *testing.T, site siteConfig) {
		e := startCaddyWith(t, func(*env) siteConfig { return site })
		// One client, so that every call reuses one kept-alive connection.
		b := e.browser(t)
		quiet := true
		start := func(email string) time.Duration {
			req, _ := http.NewRequest(http.MethodPost, e.base+"/.mailgate/login/email/request?projectId="+gameProject, strings.NewReader(`{"email":"`+email+`"}`))
			req.Header.Set("Content-Type", "application/json")
			began := time.Now()
			r := b.do(req)
			took := time.Since(began)
			if r.StatusCode != http.StatusOK {
				t.Fatalf("%s: %s %s", email, r.Status, r.body)
			}
			if quiet {
				settleDeliveries()
			}
			return took
		}
		for range 20 {
			start("alice@example.com")
			start("mallory@example.com")
		}
		for _, quiet = range []bool{true, false} {
			var allowed, refused []time.Duration
			for i := range n {
				if i%2 == 0 {
					allowed = append(allowed, start("alice@example.com"))
					refused = append(refused, start("mallory@example.com"))
				} else {
					refused = append(refused, start("mallory@example.com"))
					allowed = append(allowed, start("alice@example.com"))
				}
			}
			settleDeliveries()
			mode := "back to back"
			if quiet {
				mode = "quiet"
			}
			t.Logf("| %s | %s | %d | %s | %s | %s | %s |", t.Name(), mode, n,
				quantile(allowed, 0.5), quantile(refused, 0.5), quantile(allowed, 0.9), quantile(refused, 0.9))
		}
	}
	t.Run("memory", func(t *testing.T) { measure(t, siteConfig{Mailgate: projectsConfig}) })
	t.Run("redis", func(t *testing.T) {
		srv := redistest.Start(t)
		measure(t, siteConfig{Mailgate: projectsConfig + "\n\t\tstore redis {\n\t\t\taddress " + srv.Addr() + "\n\t\t}"})
	})
}
