package caddymodule

import (
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mailgate/caddy-mailgate/internal/redistest"
	"github.com/mailgate/caddy-mailgate/internal/testsmtp"
)

// smtpWith starts a test SMTP server with the credentials the Caddyfile
// template uses, and opts.
func smtpWith(t *testing.T, opts testsmtp.Options) *testsmtp.Server {
	opts.TLS, opts.Username, opts.Password = "none", "mailer", "smtp-secret"
	return testsmtp.Start(t, opts)
}

// TestMailArrivesAfterRetries: a mail server that refuses the first two
// attempts for now (451) gets the mail on the third; the person who asked
// saw "check your inbox" at once, and the link works. Each failure is
// logged with the recipient's domain, not the address.
func TestMailArrivesAfterRetries(t *testing.T) {
	retryBackoff.Store(int64(20 * time.Millisecond))
	t.Cleanup(func() { retryBackoff.Store(0) })
	flaky := smtpWith(t, testsmtp.Options{FailFirst: 2})
	e := startCaddyWith(t, func(e *env) siteConfig {
		return siteConfig{SMTPAddr: flaky.Addr, Global: e.logBlock("caddy.log", "")}
	})
	e.smtp = flaky

	b := e.browser(t)
	if r := b.requestLink("alice@example.com", "/after"); r.StatusCode != http.StatusOK {
		t.Fatalf("link request: %s\n%s", r.Status, r.body)
	}
	if r := b.confirm(e.mailedLink(t, "alice@example.com")); r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/after" {
		t.Fatalf("confirming the retried mail's link: %s to %q", r.Status, r.Header.Get("Location"))
	}
	if n := len(flaky.Messages()); n != 1 {
		t.Fatalf("%d mails arrived, want 1", n)
	}
	retries := e.logEntries(t, "caddy.log", "mail not delivered; trying again")
	if len(retries) != 2 {
		t.Fatalf("%d retries logged, want 2: %q", len(retries), retries)
	}
	for _, line := range retries {
		if !strings.Contains(line, `"domain":"example.com"`) || strings.Contains(line, "alice") {
			t.Errorf("retry logged without the domain, or with the address: %s", line)
		}
	}
	if gaveUp := e.logEntries(t, "caddy.log", "mail given up"); len(gaveUp) != 0 {
		t.Fatalf("a delivered mail was logged as given up: %q", gaveUp)
	}
}

// TestFormDoesNotWaitForTheMailServer: while the mail server hangs in the
// middle of a delivery, the form still answers "check your inbox", for an
// allowed address and any other; the mails go out once the server moves.
func TestFormDoesNotWaitForTheMailServer(t *testing.T) {
	hold := make(chan struct{})
	hung := smtpWith(t, testsmtp.Options{Hold: hold})
	e := startCaddyWith(t, func(*env) siteConfig { return siteConfig{SMTPAddr: hung.Addr} })
	e.smtp = hung
	released := false
	release := func() {
		if !released {
			released = true
			close(hold)
		}
	}
	t.Cleanup(release) // before Caddy stops: its queue need not wait out the drain

	if r := e.browser(t).requestLink("alice@example.com", "/"); r.StatusCode != http.StatusOK {
		t.Fatalf("link request: %s", r.Status)
	}
	select {
	case <-hung.Held():
	case <-time.After(settleTimeout):
		t.Fatal("the mail server never saw the delivery")
	}
	// A delivery is stuck in the mail server now.
	for _, email := range []string{"carol@corp.example", "mallory@example.com"} {
		if r := e.browser(t).requestLink(email, "/"); r.StatusCode != http.StatusOK || !strings.Contains(r.body, "•••") {
			t.Fatalf("%s, while the mail server hangs: %s\n%s", email, r.Status, r.body)
		}
	}
	release()
	for _, email := range []string{"alice@example.com", "carol@corp.example"} {
		if r := e.browser(t).confirm(e.mailedLink(t, email)); r.StatusCode != http.StatusSeeOther {
			t.Fatalf("%s's link, once the server moved: %s", email, r.Status)
		}
	}
	if n := len(hung.Messages()); n != 2 {
		t.Fatalf("%d mails, want 2 (none for the address no rule allows)", n)
	}
}

// TestRefusedMailIsGivenUp: a mail server that refuses the recipient for
// good (550) is not asked again; the form, which cannot know, has answered
// "check your inbox", and the give-up is logged as an error with the
// domain only.
func TestRefusedMailIsGivenUp(t *testing.T) {
	refusing := smtpWith(t, testsmtp.Options{RejectRcpt: true})
	e := startCaddyWith(t, func(e *env) siteConfig {
		return siteConfig{SMTPAddr: refusing.Addr, Global: e.logBlock("caddy.log", "")}
	})
	e.smtp = refusing
	if r := e.browser(t).requestLink("alice@example.com", "/"); r.StatusCode != http.StatusOK {
		t.Fatalf("link request: %s", r.Status)
	}
	if n := len(refusing.Messages()); n != 0 {
		t.Fatalf("%d mails accepted by a server that refuses them", n)
	}
	gaveUp := e.logEntries(t, "caddy.log", "mail given up")
	if len(gaveUp) != 1 || !strings.Contains(gaveUp[0], `"level":"error"`) || !strings.Contains(gaveUp[0], `"attempts":1`) ||
		!strings.Contains(gaveUp[0], `"domain":"example.com"`) || strings.Contains(gaveUp[0], "alice") {
		t.Fatalf("give-up logged as %q; want one error after one attempt, with the domain and not the address", gaveUp)
	}
}

// TestMeasureFormLatency measures, for docs/performance.md, how long the
// form's POST takes for an address that gets a mail and one that does
// not, with each store, in two ways: "quiet", each request once the mail
// of the one before has been delivered, which times the request path
// alone; and "back to back", which lets the background deliveries run
// into the requests that follow, as they would under load. It asserts
// nothing about time: set MAILGATE_MEASURE=200 (the number of requests
// of each kind) to run it.
func TestMeasureFormLatency(t *testing.T) {
	n := measureCount(t)
	measure := func(t *testing.T, site siteConfig) {
		e := startCaddyWith(t, func(*env) siteConfig { return site })
		b := e.browser(t)
		if r := b.get("/.mailgate/login"); r.StatusCode != http.StatusOK {
			t.Fatalf("login page: %s", r.Status)
		}
		timeAllowedAgainstRefused(t, n, func(email string) time.Duration {
			form := map[string]string{"email": email, "return": "/", "form_token": b.cookie("__Host-mailgate-form")}
			start := time.Now()
			r := b.post("/.mailgate/login/email", form)
			took := time.Since(start)
			if r.StatusCode != http.StatusSeeOther {
				t.Fatalf("%s: %s\n%s", email, r.Status, r.body)
			}
			return took
		})
	}
	t.Run("memory", func(t *testing.T) { measure(t, siteConfig{}) })
	t.Run("redis", func(t *testing.T) {
		srv := redistest.Start(t)
		measure(t, siteConfig{Mailgate: redisStore(srv.Addr())})
	})
}

// measureCount is MAILGATE_MEASURE, the number of requests of each kind a
// measurement makes; without it the measurement is skipped.
func measureCount(t *testing.T) int {
	v := os.Getenv("MAILGATE_MEASURE")
	if v == "" {
		t.Skip("a measurement, not a test: set MAILGATE_MEASURE=200 to run it")
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("MAILGATE_MEASURE=%q: want a number of requests", v)
	}
	return n
}

// timeAllowedAgainstRefused times call, a request that answers before its
// mail is delivered, n times for alice@example.com (allowed: a mail) and n
// times for mallory@example.com (no rule: none), after 20 pairs to warm
// up. Interleaved, alternating which goes first, so that drift falls on
// both alike; "quiet" waits for each mail's delivery before the next
// request, which times the request path alone, "back to back" lets the
// deliveries run into the requests that follow, as under load. It logs a
// table row of medians and 90th percentiles for each.
func timeAllowedAgainstRefused(t *testing.T, n int, call func(email string) time.Duration) {
	quiet := true
	timed := func(email string) time.Duration {
		took := call(email)
		if quiet {
			settleDeliveries()
		}
		return took
	}
	for range 20 {
		timed("alice@example.com")
		timed("mallory@example.com")
	}
	for _, quiet = range []bool{true, false} {
		var allowed, refused []time.Duration
		for i := range n {
			if i%2 == 0 {
				allowed = append(allowed, timed("alice@example.com"))
				refused = append(refused, timed("mallory@example.com"))
			} else {
				refused = append(refused, timed("mallory@example.com"))
				allowed = append(allowed, timed("alice@example.com"))
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

// quantile is the q-quantile of ds (nearest rank), rounded to the
// microsecond.
func quantile(ds []time.Duration, q float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[int(q*float64(len(s)-1)+0.5)].Round(time.Microsecond)
}
