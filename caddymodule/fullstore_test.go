package caddymodule

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailgate/caddy-mailgate/internal/flow"
	"github.com/mailgate/caddy-mailgate/internal/testdpop"
)

// TestFullStoreNeverForgetsLogoutsOrReplays fills the memory store as an
// attacker would, with no credentials through the login form and with one
// API client's token through the API, at the largest sizes mailgate
// accepts. Nothing that keeps someone out may be forgotten: a logged-out
// cookie stays refused and a used DPoP proof stays refused. When the room
// for markers itself is spent, logouts and API calls are refused with 503
// in their own shape and an error is logged, until old markers expire.
func TestFullStoreNeverForgetsLogoutsOrReplays(t *testing.T) {
	e := startCaddyWith(t, func(e *env) siteConfig {
		return siteConfig{
			Global:   e.logBlock("caddy.log", ""),
			Mailgate: "store memory {\n\t\t\tmax_memory 2MiB\n\t\t}",
		}
	})
	tokenURL := e.base + "/.mailgate/oauth/token"
	loginEmailURL := e.base + "/.mailgate/api/v1/login-email"

	// A session that was logged out, and a DPoP proof that was used.
	b := e.browser(t)
	loggedOut := b.login("alice@example.com", "/")
	b.get("/.mailgate/logout")
	if r := b.post("/.mailgate/logout", map[string]string{"form_token": b.cookie("__Host-mailgate-form")}); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: %s", r.Status)
	}
	key := testdpop.NewKey(t)
	used := key.Proof(t, "POST", tokenURL, "", now())
	_, tok := e.requestToken(t, shopSecret, used)
	if tok.AccessToken == "" {
		t.Fatal("no access token")
	}
	stillRefused := func(when string) {
		t.Helper()
		if r := e.browser(t).do(e.withCookie("/", loggedOut)); r.StatusCode != http.StatusUnauthorized {
			t.Fatalf("%s: the logged-out cookie got %s, want 401", when, r.Status)
		}
		if r, body := e.requestToken(t, shopSecret, used); r.StatusCode != http.StatusBadRequest || body.Error != "invalid_dpop_proof" {
			t.Fatalf("%s: the used proof got %s %+v, want 400 invalid_dpop_proof", when, r.Status, body)
		}
	}

	// Flood the pending links: one allowed address, the longest return
	// path, until the store has wrapped several times over.
	carol := e.browser(t)
	carol.requestLink("carol@corp.example", "/")
	carolsLink := e.mailedLink(t, "carol@corp.example")
	longReturn := "/" + strings.Repeat("a", flow.MaxReturn-1)
	flood := e.browser(t)
	flood.get("/.mailgate/login")
	for i := range 1500 {
		r := flood.post("/.mailgate/login/email", map[string]string{
			"email": "alice@example.com", "return": longReturn, "form_token": flood.cookie("__Host-mailgate-form"),
		})
		if r.StatusCode != http.StatusSeeOther {
			t.Fatalf("link request %d: %s", i, r.Status)
		}
	}
	if r := carol.confirm(carolsLink); r.StatusCode != http.StatusGone {
		t.Fatalf("a link from before the flood still works (%s): the flood did not fill the store", r.Status)
	}
	stillRefused("after a flood of links")

	// Flood the markers: each API call's proof leaves one, with the longest
	// jti mailgate accepts, until there is no room for another.
	call := func(proof string) response {
		req, _ := http.NewRequest(http.MethodPost, loginEmailURL, strings.NewReader(`{}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "DPoP "+tok.AccessToken)
		req.Header.Set("DPoP", proof)
		return e.browser(t).do(req)
	}
	// Then top up with short jtis, whose markers are no larger than a
	// logout's, until not even those fit.
	for _, jti := range []string{"%0256d", "%08d"} {
		full := false
		for i := 0; i < 20000 && !full; i++ {
			r := call(key.ProofJTI(t, fmt.Sprintf(jti, i), "POST", loginEmailURL, tok.AccessToken, now()))
			switch {
			case r.StatusCode == http.StatusServiceUnavailable:
				if !strings.Contains(r.body, `"error":"temporarily_unavailable"`) {
					t.Fatalf("the API's 503 is not in its contract's shape: %s", r.body)
				}
				full = true
			case r.StatusCode != http.StatusBadRequest || !strings.Contains(r.body, "selector_invalid"):
				t.Fatalf("API call %d: %s %s", i, r.Status, r.body)
			}
		}
		if !full {
			t.Fatalf("20000 API calls with jtis like %q never filled the markers", jti)
		}
	}
	if r := call(key.ProofJTI(t, strings.Repeat("j", 257), "POST", loginEmailURL, tok.AccessToken, now())); r.StatusCode != http.StatusUnauthorized || !strings.Contains(r.body, "invalid_dpop_proof") {
		t.Fatalf("a jti over 256 bytes: %s %s, want 401 invalid_dpop_proof", r.Status, r.body)
	}
	stillRefused("with the markers full")

	// A logout now has nowhere to record itself: it is refused, not
	// half-done, and the session goes on working.
	dave := e.browser(t)
	dave.login("dave@corp.example", "/")
	dave.get("/.mailgate/logout")
	if r := dave.post("/.mailgate/logout", map[string]string{"form_token": dave.cookie("__Host-mailgate-form")}); r.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("logout with the markers full: %s, want 503", r.Status)
	}
	logged, err := os.ReadFile(filepath.Join(e.dir, "caddy.log"))
	for _, what := range []string{"marker", "revocation"} {
		if err != nil || !strings.Contains(string(logged), "no room for a new "+what) {
			t.Fatalf("no error logged for the refused %s (%v)", what, err)
		}
	}

	// Once the replay markers expire, there is room again.
	clockOffset.Add(int64(2*dpopWindow + time.Second))
	if r := call(key.Proof(t, "POST", loginEmailURL, tok.AccessToken, now())); r.StatusCode != http.StatusBadRequest || !strings.Contains(r.body, "selector_invalid") {
		t.Fatalf("API call after the markers expired: %s %s", r.Status, r.body)
	}
	if r := dave.post("/.mailgate/logout", map[string]string{"form_token": dave.cookie("__Host-mailgate-form")}); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout after the markers expired: %s", r.Status)
	}
	if r := e.browser(t).do(e.withCookie("/", loggedOut)); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("the first logged-out cookie after the clock moved: %s, want 401", r.Status)
	}
}
