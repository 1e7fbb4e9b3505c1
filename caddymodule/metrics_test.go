package caddymodule

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// scrape reads the admin endpoint's /metrics, as Prometheus does.
func (e *env) scrape(t *testing.T) string {
	t.Helper()
	// The mails the forms queued are counted once delivered.
	settleDeliveries()
	resp, err := http.Get(fmt.Sprintf("http://localhost:%d/metrics", e.adminPort))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %s %s", resp.Status, b)
	}
	return string(b)
}

// metricValue is the value of the series name whose labels include every
// one of labels (`key="value"`), 0 when there is none, and whether there is.
func metricValue(body, name string, labels ...string) (float64, bool) {
next:
	for _, line := range strings.Split(body, "\n") {
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		for _, l := range labels {
			if !strings.Contains(line, l) {
				continue next
			}
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		return v, err == nil
	}
	return 0, false
}

// TestMetricsCountAJourneyOnTheAdminEndpoint: after a login by mailed
// link and two requests with its session, a request for an address
// outside the allow rules, a request over
// mails_per_address, a dead link and the guard's four answers, Caddy's
// admin endpoint serves mailgate's counts with Caddy's own metrics,
// labelled by realm and never by address.
func TestMetricsCountAJourneyOnTheAdminEndpoint(t *testing.T) {
	e := startCaddyWith(t, func(*env) siteConfig {
		return siteConfig{Limits: `limits {
			mails_per_address 2 1m
			requests_per_ip 1000000 1m
			requests_per_client 1000000 1m
			failures_per_ip 1000000 1m
		}`}
	})
	// The collectors live as long as the process, across tests: the test
	// counts what its journey adds.
	before := e.scrape(t)

	b := e.browser(t)
	b.login("alice@example.com", "/")
	firstLink := e.mailedLink(t, "alice@example.com")
	// The sign-in verified the new token once, to list the session on the
	// profile (the cache's one miss): both requests find it cached.
	for range 2 {
		if r := b.get("/"); r.StatusCode != http.StatusOK {
			t.Fatalf("the site with a session: %s", r.Status)
		}
	}
	if r := e.browser(t).get("/"); r.StatusCode != http.StatusFound {
		t.Fatalf("a page without a session: %s", r.Status)
	}
	api, _ := http.NewRequest(http.MethodGet, e.base+"/api/items", nil)
	if r := e.browser(t).do(api); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("an API call without a session: %s", r.Status)
	}
	if r := e.browser(t).requestLink("mallory@evil.example", "/"); r.StatusCode != http.StatusOK {
		t.Fatalf("a link for an address outside the rules: %s", r.Status)
	}
	// mails_per_address is 2: the login's mail and this one go out, the
	// third request is answered alike and mails nothing.
	for range 2 {
		if r := e.browser(t).requestLink("alice@example.com", "/"); r.StatusCode != http.StatusOK {
			t.Fatalf("a second link: %s", r.Status)
		}
	}
	if n := e.mailsTo("alice@example.com"); n != 2 {
		t.Fatalf("%d mails to alice, want 2 (the third was over the limit)", n)
	}
	// The first link was used: its page and its button both say so.
	if r := e.browser(t).confirm(firstLink); r.StatusCode != http.StatusGone {
		t.Fatalf("a used link: %s", r.Status)
	}

	after := e.scrape(t)
	realm := `realm="default"`
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"mailgate_logins_started_total", []string{`method="link"`}, 2},
		{"mailgate_logins_completed_total", []string{`method="link"`}, 1},
		{"mailgate_login_refusals_total", []string{`method="link"`}, 1},
		{"mailgate_rate_limit_hits_total", []string{`limit="mails_per_address"`}, 1},
		{"mailgate_login_failures_total", []string{`method="link"`, `reason="link_dead"`}, 2},
		{"mailgate_mails_sent_total", []string{`template="login"`}, 2},
		{"mailgate_mail_delivery_seconds_count", nil, 2},
		{"mailgate_tokens_issued_total", []string{`kind="session"`}, 1},
		{"mailgate_guard_decisions_total", []string{`decision="allowed"`}, 2},
		{"mailgate_session_cache_misses_total", nil, 1},
		{"mailgate_session_cache_hits_total", nil, 2},
		{"mailgate_guard_decisions_total", []string{`decision="redirected"`}, 1},
		{"mailgate_guard_decisions_total", []string{`decision="refused"`}, 1},
		{"mailgate_guard_decisions_total", []string{`decision="unavailable"`}, 0},
	} {
		labels := append([]string{realm}, c.labels...)
		was, _ := metricValue(before, c.name, labels...)
		now, ok := metricValue(after, c.name, labels...)
		if !ok && c.want > 0 {
			t.Errorf("%s%v: not on /metrics", c.name, c.labels)
			continue
		}
		if now-was != c.want {
			t.Errorf("%s%v: went from %v to %v, want +%v", c.name, c.labels, was, now, c.want)
		}
	}
	for _, gauge := range []string{"mailgate_mail_queue_depth", "mailgate_revocation_feed_lag_seconds", "mailgate_signing_key_age_seconds"} {
		if _, ok := metricValue(after, gauge, realm); !ok {
			t.Errorf("%s: not on /metrics", gauge)
		}
	}
	if depth, _ := metricValue(after, "mailgate_mail_queue_depth", realm); depth != 0 {
		t.Errorf("the queue holds %v mails once every one was delivered", depth)
	}
	if n, _ := metricValue(after, "mailgate_store_operation_seconds_count", realm, `backend="memory"`, `op="take"`); n < 1 {
		t.Error("no timed take on the memory store, though a link was redeemed")
	}
	// Caddy's own metrics are served beside mailgate's.
	if _, ok := metricValue(after, "go_goroutines"); !ok {
		t.Error("Caddy's own metrics are missing from /metrics")
	}
	for _, leak := range []string{"alice", "mallory", "evil.example"} {
		if strings.Contains(after, leak) {
			t.Errorf("/metrics names %q", leak)
		}
	}

	// A reload makes a new registry: the same collectors are registered
	// with it, and keep their counts.
	e.reload(t, siteConfig{})
	reloaded := e.scrape(t)
	for _, name := range []string{"mailgate_logins_completed_total", "mailgate_guard_decisions_total"} {
		was, _ := metricValue(after, name, realm)
		if now, ok := metricValue(reloaded, name, realm); !ok || now != was {
			t.Errorf("%s after a reload: %v (served: %v), want %v", name, now, ok, was)
		}
	}
}

// TestDocsNameTheMetricsThereAre: every metric the Grafana dashboard
// queries and every one docs/operations.md lists is one mailgate
// registers, and docs/operations.md lists every one it registers.
func TestDocsNameTheMetricsThereAre(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	if _, err := registerMetrics(reg); err != nil {
		t.Fatal(err)
	}
	c := collectors
	descs := make(chan *prometheus.Desc, 64)
	for _, x := range []prometheus.Collector{
		c.guard, c.loginsStarted, c.loginsDone, c.loginFailures, c.refusals, c.limited,
		c.mailsSent, c.mailsRetried, c.mailsGivenUp, c.mailLatency, c.signOuts,
		c.userChanges, c.keyRotations, c.failures, c.storeSeconds, c.storeErrors, c.tokens,
		c.cacheHits, c.cacheMisses, c.gauges,
	} {
		x.Describe(descs)
	}
	close(descs)
	fqName := regexp.MustCompile(`fqName: "([a-z_]+)"`)
	registered := map[string]bool{}
	for d := range descs {
		registered[fqName.FindStringSubmatch(d.String())[1]] = true
	}
	name := regexp.MustCompile(`mailgate_[a-z_]+`)
	suffix := regexp.MustCompile(`_(bucket|count|sum)$`)
	for _, doc := range []string{"../docs/grafana-mailgate.json", "../docs/operations.md"} {
		b, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		named := map[string]bool{}
		for _, n := range name.FindAllString(string(b), -1) {
			n = suffix.ReplaceAllString(n, "")
			named[n] = true
			if !registered[n] {
				t.Errorf("%s names %s, which mailgate does not register", doc, n)
			}
		}
		if strings.HasSuffix(doc, ".md") {
			for n := range registered {
				if !named[n] {
					t.Errorf("%s does not list %s", doc, n)
				}
			}
		}
	}
}
