package caddymodule

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/lestrrat-go/jwx/v2/jws"

	"github.com/mailgate/caddy-mailgate/internal/session"
)

// verifiedClaims is what the verifying upstream answers: the assertion's
// claims as an app reads them, and the raw assertion.
type verifiedClaims struct {
	Raw      string   `json:"raw"`
	Typ      string   `json:"typ"`
	Issuer   string   `json:"iss"`
	Subject  string   `json:"sub"`
	Email    string   `json:"email"`
	AMR      []string `json:"amr"`
	SID      string   `json:"sid"`
	AuthTime int64    `json:"auth_time"`
	Expiry   int64    `json:"exp"`
	IssuedAt int64    `json:"iat"`
	Error    string   `json:"error"`
}

// assertionVerifier is an app behind mailgate that trusts no header but
// the assertion: it checks it as an app would, with go-oidc's verifier
// against the JWKS mailgate serves (fetched and cached by go-oidc), the
// audience the site's origin, and the assertion's own typ pinned (go-oidc
// does not look at typ).
func assertionVerifier(t *testing.T, e *env) *httptest.Server {
	ctx := e.libraryContext(t, nil)
	keys := oidc.NewRemoteKeySet(ctx, e.base+"/.mailgate/jwks.json")
	verifier := oidc.NewVerifier(e.base, keys, &oidc.Config{ClientID: e.base, SupportedSigningAlgs: []string{oidc.EdDSA}})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var c verifiedClaims
		answer := func(status int) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			_ = json.NewEncoder(w).Encode(c)
		}
		values := r.Header.Values("Mailgate-Assertion")
		if len(values) != 1 {
			c.Error = fmt.Sprintf("%d assertions", len(values))
			answer(http.StatusUnauthorized)
			return
		}
		c.Raw = values[0]
		msg, err := jws.ParseString(c.Raw)
		if err != nil || len(msg.Signatures()) != 1 {
			c.Error = fmt.Sprintf("not a JWS: %v", err)
			answer(http.StatusUnauthorized)
			return
		}
		if c.Typ = msg.Signatures()[0].ProtectedHeaders().Type(); c.Typ != session.TypAssertion {
			c.Error = "typ " + c.Typ
			answer(http.StatusUnauthorized)
			return
		}
		id, err := verifier.Verify(r.Context(), c.Raw)
		if err != nil {
			c.Error = err.Error()
			answer(http.StatusUnauthorized)
			return
		}
		if err := id.Claims(&c); err != nil {
			c.Error = err.Error()
			answer(http.StatusUnauthorized)
			return
		}
		c.Raw = values[0]
		answer(http.StatusOK)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestAssertionVerifiedByTheUpstream: an app behind mailgate verifies the
// assertion with go-oidc against the served JWKS, and reads who signed in
// and how; a client's own Mailgate-Assertion is never passed on; the
// assertion is signed once per session and replaced shortly before it
// expires; it does not pass for a session; and with `assertion off` none is
// sent, while forged ones are still removed.
func TestAssertionVerifiedByTheUpstream(t *testing.T) {
	var site siteConfig
	e := startCaddyWith(t, func(e *env) siteConfig {
		app := assertionVerifier(t, e)
		site = siteConfig{Site: "handle /verified/* {\n\t\treverse_proxy " + app.Listener.Addr().String() + "\n\t}"}
		return site
	})
	b := e.browser(t)
	b.login("alice@example.com", "/")
	call := func() (response, verifiedClaims) {
		t.Helper()
		r := b.get("/verified/page", "Mailgate-Assertion", "forged", "Mailgate_Assertion", "forged")
		var c verifiedClaims
		if err := json.Unmarshal([]byte(r.body), &c); err != nil {
			t.Fatalf("the app answered %s: %s", r.Status, r.body)
		}
		return r, c
	}
	r, first := call()
	if r.StatusCode != http.StatusOK {
		t.Fatalf("the app refused the assertion: %s", first.Error)
	}
	if first.Issuer != e.base || first.Email != "alice@example.com" || first.Subject == "" || first.SID == "" ||
		!slices.Equal(first.AMR, []string{"otp", "link"}) || first.AuthTime == 0 || first.Expiry-first.IssuedAt != 300 {
		t.Fatalf("the assertion says %+v", first)
	}

	// The next request gets the same assertion: not signed again.
	if _, again := call(); again.Raw != first.Raw {
		t.Fatal("a second request of the session got a new assertion")
	}
	// With a minute left, a request gets a new one, of the same session.
	clockOffset.Add(int64(4*time.Minute + time.Second))
	r, renewed := call()
	if r.StatusCode != http.StatusOK || renewed.Raw == first.Raw || renewed.SID != first.SID || renewed.IssuedAt <= first.IssuedAt {
		t.Fatalf("an assertion a minute before its expiry: %s, renewed %+v", r.Status, renewed)
	}

	// The assertion is no session (sent by another client: the refusal
	// clears the cookie).
	if r := e.browser(t).do(e.withCookie("/verified/page", first.Raw)); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("the assertion as a session cookie: %s", r.Status)
	}

	// assertion off: no assertion, and the client's still removed.
	site.Mailgate = "assertion off"
	e.reload(t, site)
	if r, c := call(); r.StatusCode != http.StatusUnauthorized || c.Error != "0 assertions" {
		t.Fatalf("with assertion off the app got %s: %+v", r.Status, c)
	}
}

// TestStripOnAPublicRoute: a route that mailgate does not guard, with
// `mailgate strip`, passes no forged identity header, assertion or mailgate
// cookie to the app, and leaves the rest; the same request on a route
// without it shows what would reach the app.
func TestStripOnAPublicRoute(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(dir, "config"))
	t.Setenv("XDG_DATA_HOME", filepath.Join(dir, "data"))
	app := &recorder{}
	app.srv = httptest.NewServer(app)
	t.Cleanup(app.srv.Close)
	port := freePorts(t, 1)[0]
	caddyfile := fmt.Sprintf(`{
	admin off
	persist_config off
	storage file_system %[1]s/storage
	servers {
		expected_underscore_headers Remote_Email
	}
}
http://localhost:%[2]d {
	route /public/* {
		mailgate strip
		reverse_proxy %[3]s
	}
	route /renamed/* {
		mailgate strip {
			identity_headers {
				email X-Auth-Email
			}
			assertion_header X-Auth-Assertion
		}
		reverse_proxy %[3]s
	}
	reverse_proxy %[3]s
}`, dir, port, app.srv.Listener.Addr())
	cfg, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(caddyfile), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := caddy.Load(cfg, true); err != nil {
		t.Fatalf("Caddy did not start: %v", err)
	}
	t.Cleanup(func() { _ = caddy.Stop() })

	forged := map[string]string{
		"Remote-User": "u-admin", "Remote-Email": "admin@example.com", "Remote_Email": "admin@example.com",
		"remote-name": "Admin", "Mailgate-Assertion": "eyJforged", "X-Auth-Email": "admin@example.com",
		"X-Auth-Assertion": "eyJforged", "X-Other": "kept",
		"Cookie": "theme=dark; __Host-mailgate=stolen; mailgate=stolen; mailgate-form=x; lang=nl",
	}
	send := func(path string) http.Header {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("http://localhost:%d%s", port, path), nil)
		for k, v := range forged {
			req.Header[k] = []string{v}
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Fatalf("%s: %s", path, res.Status)
		}
		return app.last(t)
	}
	// Without strip, the forgeries reach the app: what the test guards.
	if h := send("/open"); h.Get("Remote-User") != "u-admin" || !strings.Contains(h.Get("Cookie"), "__Host-mailgate=stolen") {
		t.Fatalf("the control route did not pass the forged headers: %v", h)
	}
	for path, gone := range map[string][]string{
		"/public/page":  {"Remote-User", "Remote-Email", "Remote_email", "Remote-Name", "Mailgate-Assertion"},
		"/renamed/page": {"Remote-User", "Remote-Name", "X-Auth-Email", "X-Auth-Assertion"},
	} {
		h := send(path)
		for k := range h {
			for _, g := range gone {
				if sameHeader(k, g) {
					t.Errorf("%s: the app got %s: %q", path, k, h[k])
				}
			}
		}
		if got := h.Get("Cookie"); got != "theme=dark; lang=nl" {
			t.Errorf("%s: the app got Cookie %q, want the site's own cookies only", path, got)
		}
		if h.Get("X-Other") != "kept" {
			t.Errorf("%s: another header was removed", path)
		}
	}
}
