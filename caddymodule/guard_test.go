package caddymodule

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// downStore is a revocation list that cannot be read.
type downStore struct{}

func (downStore) Revoke(context.Context, string, time.Duration) error {
	return errors.New("store down")
}
func (downStore) Revoked(string) (bool, error) {
	return false, errors.New("store down")
}
func (downStore) RevokeBefore(context.Context, string, time.Time, time.Duration) error {
	return errors.New("store down")
}
func (downStore) RevokedBefore(string) (time.Time, bool, error) {
	return time.Time{}, false, errors.New("store down")
}

func TestGuardFailsClosedWhenStoreUnreadable(t *testing.T) {
	m, r := guardFixtureWith(t, downStore{})
	reached := false
	next := caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error {
		reached = true
		return nil
	})
	// A program gets the 503 in JSON, with when to try again. (A browser's
	// page is checked in Caddy: TestRedisStoreInCaddy.)
	r.Header.Set("Accept", "application/json")
	w := httptest.NewRecorder()
	if err := m.ServeHTTP(w, r, next); err != nil || w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") != "60" ||
		!strings.Contains(w.Body.String(), `"error":"temporarily_unavailable"`) {
		t.Fatalf("err %v, answer %d %q (Retry-After %q); want a 503 in JSON", err, w.Code, w.Body, w.Header().Get("Retry-After"))
	}
	// A site with handle_errors gets the 503 as an error to shape.
	srv := &caddyhttp.Server{Errors: &caddyhttp.HTTPErrorConfig{Routes: caddyhttp.RouteList{{}}}}
	r = r.WithContext(context.WithValue(r.Context(), caddyhttp.ServerCtxKey, srv))
	err := m.ServeHTTP(httptest.NewRecorder(), r, next)
	var he caddyhttp.HandlerError
	if !errors.As(err, &he) || he.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("with handle_errors: err = %v, want a 503 handler error", err)
	}
	if reached {
		t.Fatal("the upstream was reached although the session could not be checked")
	}
}

func TestSameHeader(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want bool
	}{
		{"Remote-Email", "Remote-Email", true},
		{"remote_email", "Remote-Email", true},
		{"REMOTE-EMAIL", "Remote-Email", true},
		{"Remote-Emails", "Remote-Email", false},
		{"Remote.Email", "Remote-Email", false},
	} {
		if got := sameHeader(c.a, c.b); got != c.want {
			t.Errorf("sameHeader(%q, %q) = %v", c.a, c.b, got)
		}
	}
}

// TestUpstreamGetsNoMailgateCookies: the proxied request carries the
// site's own cookies and none of mailgate's, so the upstream (and its logs)
// never holds a session it could replay.
func TestUpstreamGetsNoMailgateCookies(t *testing.T) {
	e := startCaddy(t)
	b := e.browser(t)
	b.login("alice@example.com", "/")
	if b.cookie("__Host-mailgate") == "" || b.cookie("__Host-mailgate-form") == "" {
		t.Fatal("the browser holds no session or form cookie to send")
	}
	if r := b.get("/whoami", "Cookie", "theme=dark; lang=nl"); r.StatusCode != http.StatusOK {
		t.Fatalf("signed in: %s", r.Status)
	}
	h := e.upstream.last(t)
	if got := h.Values("Cookie"); len(got) != 1 || got[0] != "theme=dark; lang=nl" {
		t.Fatalf("upstream Cookie %q, want the site's cookies only", got)
	}
	if h.Get("Remote-Email") != "alice@example.com" {
		t.Fatalf("upstream Remote-Email %q", h.Get("Remote-Email"))
	}
}

// TestHeadersRewrittenAfterTheGuardStayThisRequests: a handler after the
// guard that rewrites the identity headers in place (Caddy's request_header
// replacements do) changes this request's values only, never the session's
// cached identity or assertion: the next request is rewritten from the
// same values again, not from the last request's result.
func TestHeadersRewrittenAfterTheGuardStayThisRequests(t *testing.T) {
	e := startCaddyWith(t, func(*env) siteConfig {
		return siteConfig{Site: "request_header Remote-Email \"^(.*)$\" \"<$1>\"\n\trequest_header Mailgate-Assertion \"^(.*)$\" \"x$1\""}
	})
	b := e.browser(t)
	b.login("alice@example.com", "/")
	var assertions []string
	for range 3 {
		if r := b.get("/"); r.StatusCode != http.StatusOK {
			t.Fatalf("signed in: %s", r.Status)
		}
		h := e.upstream.last(t)
		if got := h.Get("Remote-Email"); got != "<alice@example.com>" {
			t.Fatalf("upstream Remote-Email %q, want the request's own rewrite <alice@example.com>", got)
		}
		assertions = append(assertions, h.Get("Mailgate-Assertion"))
	}
	if !strings.HasPrefix(assertions[0], "xey") || assertions[1] != assertions[0] || assertions[2] != assertions[0] {
		t.Fatalf("the rewritten assertions: %q", assertions)
	}
}
