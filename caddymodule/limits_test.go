package caddymodule

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mailgate/caddy-mailgate/internal/redistest"
	"github.com/mailgate/caddy-mailgate/internal/testdpop"
)

// TestLimitsInCaddy: each limit in a real Caddy, from the Caddyfile: the
// form's per-address limit is silent, its per-IP limit says how long to
// wait, the API answers 429 with Retry-After in each contract's shape, and
// every limit lifts when its window ends.
func TestLimitsInCaddy(t *testing.T) {
	e := startCaddyWith(t, func(*env) siteConfig {
		return siteConfig{Limits: `limits {
			mails_per_address 2 15m
			requests_per_ip 4 10m
			requests_per_client 2 1m
		}`}
	})
	b := e.browser(t)
	b.login("carol@corp.example", "/") // an account for the API to mail; the IP's first request

	// Per address: the third request looks the same and mails nothing.
	for i := range 3 {
		if r := b.requestLink("alice@example.com", "/"); r.StatusCode != http.StatusOK || !strings.Contains(r.body, "Check your inbox") {
			t.Fatalf("request %d: %s\n%s", i+1, r.Status, r.body)
		}
	}
	if n := e.mailsTo("alice@example.com"); n != 2 {
		t.Fatalf("%d mails to alice, want 2", n)
	}
	e.browser(t).confirm(e.mailedLink(t, "alice@example.com")) // alice's account
	// Per IP: the fifth request from this IP is told to wait.
	r := b.requestLink("dave@corp.example", "/")
	if r.StatusCode != http.StatusTooManyRequests || r.Header.Get("Retry-After") != "600" ||
		!strings.Contains(r.body, "Too many attempts") || !strings.Contains(r.body, "try again in 10 minutes") ||
		!strings.Contains(r.body, "A link or code you already received still works.") {
		t.Fatalf("over the IP limit: %s, Retry-After %q\n%s", r.Status, r.Header.Get("Retry-After"), r.body)
	}
	if e.mailsTo("dave@corp.example") != 0 {
		t.Fatal("a request over the IP limit was mailed")
	}

	// The API: per address across the form and the API, then per client.
	key := testdpop.NewKey(t)
	_, tok := e.requestToken(t, shopSecret, key.Proof(t, "POST", e.base+"/.mailgate/oauth/token", "", now()))
	loginEmail := func(email string) (response, map[string]any) {
		return e.callAPI(t, "/.mailgate/api/v1/login-email", tok.AccessToken, key,
			`{"selector":"email","email":"`+email+`","redirect_uri":"https://shop.example.com/callback"}`)
	}
	if r, body := loginEmail("alice@example.com"); r.StatusCode != http.StatusTooManyRequests || body["error"] != "too_many_requests" || r.Header.Get("Retry-After") == "" {
		t.Fatalf("login-email for alice over her limit: %s %v, Retry-After %q", r.Status, body, r.Header.Get("Retry-After"))
	}
	if r, body := loginEmail("carol@corp.example"); r.StatusCode != http.StatusOK {
		t.Fatalf("login-email for carol: %s %v", r.Status, body)
	}
	magic := `{"email":"carol@corp.example","clientId":"shop","redirectUri":"https://shop.example.com/callback","scope":"open_id","responseMode":"query","responseType":"code"}`
	r, body := e.callAPI(t, "/.mailgate/api/v1/magic-link", tok.AccessToken, key, magic)
	if r.StatusCode != http.StatusTooManyRequests || body["status"] != "TOO MANY REQUESTS" || body["subSystem"] != float64(5) ||
		!strings.Contains(body["message"].(string), "requests_per_client") {
		t.Fatalf("magic-link over the client limit: %s %v", r.Status, body)
	}
	if ra, _ := strconv.Atoi(r.Header.Get("Retry-After")); ra < 1 || ra > 60 {
		t.Fatalf("magic-link Retry-After %q, want 1 to 60", r.Header.Get("Retry-After"))
	}

	// Every window ends: the same requests go through again.
	clockOffset.Add(int64(15*time.Minute + time.Second))
	_, tok = e.requestToken(t, shopSecret, key.Proof(t, "POST", e.base+"/.mailgate/oauth/token", "", now()))
	if r := b.requestLink("dave@corp.example", "/"); r.StatusCode != http.StatusOK || e.mailsTo("dave@corp.example") != 1 {
		t.Fatalf("after the IP window: %s, %d mails", r.Status, e.mailsTo("dave@corp.example"))
	}
	if r, body := loginEmail("alice@example.com"); r.StatusCode != http.StatusOK {
		t.Fatalf("after the address window: %s %v", r.Status, body)
	}
}

// TestFailureLimitInCaddy: wrong secrets from one IP, of any kind, use up
// its failures; then even a right secret is refused without being looked
// at, until the window ends.
func TestFailureLimitInCaddy(t *testing.T) {
	e := startCaddyWith(t, func(*env) siteConfig {
		return siteConfig{Limits: `limits {
			failures_per_ip 3 15m
		}`}
	})
	b := e.browser(t)
	b.requestLink("alice@example.com", "/")
	link := e.mailedLink(t, "alice@example.com")
	u := mustURL(link)
	bogus := "/.mailgate/link?t=" + strings.Repeat("x", 43)
	for i := range 2 {
		if r := b.get(bogus); r.StatusCode != http.StatusGone {
			t.Fatalf("bogus link %d: %s", i+1, r.Status)
		}
	}
	if r, _ := e.requestToken(t, "not-the-secret-0123"); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("wrong client secret: %s", r.Status)
	}
	r := b.get(u.RequestURI())
	if r.StatusCode != http.StatusTooManyRequests || !strings.Contains(r.body, "Too many attempts") || strings.Contains(r.body, "Continue signing in") ||
		!strings.Contains(r.body, "did not work, so we check none for 15 minutes") {
		t.Fatalf("the right link after 3 failures: %s, want a page that says nothing is checked for 15 minutes\n%s", r.Status, r.body)
	}
	key := testdpop.NewKey(t)
	tokenURL := e.base + "/.mailgate/oauth/token"
	r, tok := e.requestToken(t, shopSecret, key.Proof(t, "POST", tokenURL, "", now()))
	if r.StatusCode != http.StatusTooManyRequests || !strings.Contains(r.body, `"too_many_requests"`) || r.Header.Get("Retry-After") != "900" || tok.AccessToken != "" {
		t.Fatalf("the right client secret after 3 failures: %s %q, Retry-After %q", r.Status, r.body, r.Header.Get("Retry-After"))
	}

	clockOffset.Add(int64(15*time.Minute + time.Second))
	if r, _ := e.requestToken(t, shopSecret, key.Proof(t, "POST", tokenURL, "", now())); r.StatusCode != http.StatusOK {
		t.Fatalf("after the window: token %s", r.Status)
	}
	// The link itself has expired meanwhile (link_ttl 15m), so ask again.
	b.requestLink("alice@example.com", "/")
	if r := b.get(mustURL(e.mailedLink(t, "alice@example.com")).RequestURI()); r.StatusCode != http.StatusOK || !strings.Contains(r.body, "Continue signing in") {
		t.Fatalf("after the window: link %s", r.Status)
	}
}

// TestLimitsWithRedisStore: with the Redis store a limit is counted in
// Redis, answers the same 429, and lifts when Redis ends its window.
func TestLimitsWithRedisStore(t *testing.T) {
	srv := redistest.Start(t)
	e := startCaddyWith(t, func(*env) siteConfig {
		return siteConfig{
			Mailgate: redisStore(srv.Addr()),
			Limits:   "limits {\n\t\t\trequests_per_ip 2 2s\n\t\t}",
		}
	})
	b := e.browser(t)
	for i := range 2 {
		if r := b.requestLink("alice@example.com", "/"); r.StatusCode != http.StatusOK {
			t.Fatalf("request %d: %s", i+1, r.Status)
		}
	}
	r := b.requestLink("alice@example.com", "/")
	if r.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("over the limit: %s", r.Status)
	}
	if ra, _ := strconv.Atoi(r.Header.Get("Retry-After")); ra < 1 || ra > 2 {
		t.Fatalf("Retry-After %q, want 1 or 2", r.Header.Get("Retry-After"))
	}
	// Redis keeps the window's time: wait for it to end, at most 5s.
	deadline := time.Now().Add(5 * time.Second)
	for b.requestLink("alice@example.com", "/").StatusCode != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatal("the limit did not lift after its 2s window")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestSilentLimitsAreLogged: over mails_per_address the form says nothing
// different, for a code as for a link; the operator's log says why no mail
// went out.
func TestSilentLimitsAreLogged(t *testing.T) {
	e := startCaddyWith(t, func(e *env) siteConfig {
		return siteConfig{Global: e.logBlock("caddy.log", ""), Limits: `limits {
			mails_per_address 1 15m
		}`}
	})
	b := e.browser(t)
	b.requestLink("alice@example.com", "/")
	b.requestLink("alice@example.com", "/")
	b.requestCode("carol@corp.example", "/")
	b.requestCode("carol@corp.example", "/")
	if n := e.mailsTo("carol@corp.example"); n != 1 {
		t.Fatalf("%d code mails to carol, want 1", n)
	}
	lines := e.logEntries(t, "caddy.log", "a login request was over a limit; no mail was sent")
	if len(lines) != 2 || !strings.Contains(lines[1], `"limit":"mails_per_address"`) {
		t.Fatalf("the log says, of the two mails not sent: %q", lines)
	}
}
