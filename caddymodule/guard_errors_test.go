package caddymodule

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// TestHandleErrorsReshapesThe401: a site's handle_errors answers the
// guard's 401, as it answers its 503, and the challenge header stays; a
// site without handle_errors still gets the JSON body and its headers.
func TestHandleErrorsReshapesThe401(t *testing.T) {
	call := func(e *env) response {
		req, _ := http.NewRequest(http.MethodGet, e.base+"/api/items", nil)
		req.Header.Set("Accept", "application/json")
		return e.browser(t).do(req)
	}
	challenge := func(r response) bool { return strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Mailgate realm=") }

	e := startCaddyWith(t, func(*env) siteConfig {
		return siteConfig{Site: "handle_errors 401 {\n\t\trespond \"custom\" 401\n\t}"}
	})
	r := call(e)
	if r.StatusCode != http.StatusUnauthorized || r.body != "custom" {
		t.Fatalf("with handle_errors 401: %s %q, want 401 \"custom\"", r.Status, r.body)
	}
	if !challenge(r) || r.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("with handle_errors 401: WWW-Authenticate %q, Cache-Control %q", r.Header.Get("WWW-Authenticate"), r.Header.Get("Cache-Control"))
	}

	e.reload(t, siteConfig{})
	r = call(e)
	var body struct {
		Error    string `json:"error"`
		LoginURL string `json:"login_url"`
	}
	if err := json.Unmarshal([]byte(r.body), &body); err != nil || r.StatusCode != http.StatusUnauthorized ||
		body.Error != "unauthenticated" || body.LoginURL != e.base+"/.mailgate/login" {
		t.Fatalf("without handle_errors: %s %q (%v), want 401 with the JSON body", r.Status, r.body, err)
	}
	if !challenge(r) || r.Header.Get("Content-Type") != "application/json" || r.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("without handle_errors: headers %v", r.Header)
	}
	if n := e.upstream.count(); n != 0 {
		t.Fatalf("the upstream was reached %d times without a session", n)
	}
}
