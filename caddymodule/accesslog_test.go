package caddymodule

import (
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailgate/caddy-mailgate/internal/testdpop"
)

// TestLogsHoldNoSecrets walks every flow with an ordinary `log` directive
// (JSON, which records the URI, request headers and response headers) and
// Caddy's own log at DEBUG, then searches both for every secret the flows
// handed out: link tickets, form tokens, session cookies, the client
// secret, DPoP proofs, access tokens, authorization codes, the PKCE
// verifier and ID tokens, and the code logins' operation ids, code links,
// code cookies and user JWTs. Whoever reads a log must not be able to sign
// in.
func TestLogsHoldNoSecrets(t *testing.T) {
	e := startCaddyWith(t, func(e *env) siteConfig {
		return siteConfig{
			Global:   e.logBlock("caddy.log", "DEBUG"),
			Site:     e.logBlock("access.log", ""),
			Mailgate: projectsConfig,
		}
	})
	var secrets []string
	keep := func(what string, s string) {
		t.Helper()
		if s == "" {
			t.Fatalf("the flow handed out no %s", what)
		}
		secrets = append(secrets, s)
	}
	ticketOf := func(link string) string { return mustURL(link).Query().Get("t") }

	// A person signs in through the form, visits the site, signs out.
	b := e.browser(t)
	b.requestLink("alice@example.com", "/")
	link := e.mailedLink(t, "alice@example.com")
	keep("link ticket", ticketOf(link))
	if r := b.confirm(link); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("confirm: %s", r.Status)
	}
	keep("session cookie", b.cookie("__Host-mailgate"))
	keep("form token", b.cookie("__Host-mailgate-form"))
	if r := b.get("/"); r.StatusCode != http.StatusOK {
		t.Fatalf("protected page: %s", r.Status)
	}
	b.get("/.mailgate/logout")
	b.post("/.mailgate/logout", map[string]string{"form_token": b.cookie("__Host-mailgate-form")})

	// An app gets a token, has a login link mailed with PKCE, and exchanges
	// the code it gets back.
	key := testdpop.NewKey(t)
	tokenURL := e.base + "/.mailgate/oauth/token"
	proof := key.Proof(t, "POST", tokenURL, "", now())
	_, tok := e.requestToken(t, shopSecret, proof)
	keep("client secret", shopSecret)
	keep("DPoP proof", proof)
	keep("access token", tok.AccessToken)
	api := func(path, body string) response {
		u := e.base + path
		req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "DPoP "+tok.AccessToken)
		p := key.Proof(t, "POST", u, tok.AccessToken, now())
		keep("DPoP proof", p)
		req.Header.Set("DPoP", p)
		r := e.browser(t).do(req)
		if r.StatusCode != http.StatusOK {
			t.Fatalf("%s: %s %s", path, r.Status, r.body)
		}
		return r
	}
	const (
		callback  = "https://shop.example.com/callback"
		verifier  = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
		challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
	)
	api("/.mailgate/api/v1/login-email", `{"selector":"email","email":"alice@example.com","redirect_uri":"`+callback+
		`","state":"s-1","code_challenge":"`+challenge+`","code_challenge_method":"S256"}`)
	link = e.mailedLink(t, "alice@example.com")
	keep("link ticket", ticketOf(link))
	person := e.browser(t)
	loc := person.confirm(link).onward(t)
	keep("authorization code", loc.Query().Get("code"))
	keep("session cookie", person.cookie("__Host-mailgate"))
	exchange := url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")},
		"redirect_uri": {callback}, "code_verifier": {verifier}}
	req, _ := http.NewRequest(http.MethodPost, tokenURL, strings.NewReader(exchange.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("shop", shopSecret)
	var id struct {
		IDToken     string `json:"id_token"`
		AccessToken string `json:"access_token"`
	}
	if r := e.browser(t).do(req); json.Unmarshal([]byte(r.body), &id) != nil || id.AccessToken == "" {
		t.Fatalf("code exchange: %s %s", r.Status, r.body)
	}
	keep("ID token", id.IDToken)
	keep("code exchange's access token", id.AccessToken)
	keep("PKCE verifier", verifier)

	// An app has a magic link mailed that ends with a token in the fragment.
	api("/.mailgate/api/v1/magic-link", `{"email":"alice@example.com","clientId":"shop","redirectUri":"`+callback+
		`","scope":"open_id","responseMode":"fragment","responseType":"token"}`)
	link = e.mailedLink(t, "alice@example.com")
	keep("link ticket", ticketOf(link))
	frag, _ := url.ParseQuery(e.browser(t).confirm(link).onward(t).Fragment)
	keep("user access token", frag.Get("access_token"))

	// A browser app logs in with a mailed code through the link variant,
	// then asks whether its user JWT stands; a person uses the form's
	// code. The six-digit codes themselves are not searched for: six digits
	// turn up in any log's timestamps.
	op := e.startCode(t, "", `{"email":"alice@example.com","send_link":true,"link_url":"`+gameCallback+`"}`)
	keep("operation id", op)
	codeLink := e.mailedCodeLink(t, "alice@example.com")
	keep("code link ticket", ticketOf(codeLink))
	confirmer := e.browser(t)
	confirmer.get(mustURL(codeLink).RequestURI())
	confirmer.post("/.mailgate/login/email/link", map[string]string{"t": ticketOf(codeLink), "p": gameProject, "form_token": confirmer.cookie("__Host-mailgate-form")})
	_, got := e.codeCall(t, http.MethodGet, "/login/email/request/code?projectId="+gameProject+"&login=alice@example.com&operation_id="+url.QueryEscape(op), "")
	code, _ := got["code"].(string)
	r, out := e.confirmCode(t, "alice@example.com", op, code)
	loginURL, _ := out["login_url"].(string)
	if r.StatusCode != http.StatusOK || loginURL == "" {
		t.Fatalf("code login: %s %s", r.Status, r.body)
	}
	userJWT := mustURL(loginURL).Query().Get("token")
	keep("user JWT", userJWT)
	if r, _ := e.codeCall(t, http.MethodGet, "/users/me?projectId="+gameProject, "", "Authorization", "Bearer "+userJWT); r.StatusCode != http.StatusOK {
		t.Fatalf("/users/me: %s %s", r.Status, r.body)
	}
	formCode := e.browser(t)
	formCode.requestCode("alice@example.com", "/")
	keep("code cookie", formCode.cookie("__Host-mailgate-code"))
	if r := formCode.enterCode(e.mailedCode(t, "alice@example.com"), "/"); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("the form's code: %s", r.Status)
	}
	keep("session cookie", formCode.cookie("__Host-mailgate"))

	access, err := os.ReadFile(filepath.Join(e.dir, "access.log"))
	if err != nil {
		t.Fatal(err)
	}
	caddyLog, err := os.ReadFile(filepath.Join(e.dir, "caddy.log"))
	if err != nil {
		t.Fatal(err)
	}
	for name, log := range map[string]string{"access log": string(access), "Caddy's log": string(caddyLog)} {
		for _, s := range secrets {
			if strings.Contains(log, s) {
				t.Errorf("the %s holds a secret (%.12s…)", name, s)
			}
		}
	}
	// The logs were written, so the search above could have found something:
	// the guarded page is in the access log, and mailgate's own lines for its
	// endpoints, without query, are in Caddy's log.
	if !strings.Contains(string(access), `"uri":"/"`) {
		t.Fatalf("the access log has no line for the protected page:\n%s", access)
	}
	if !strings.Contains(string(caddyLog), `"logger":"http.handlers.mailgate.access"`) || !strings.Contains(string(caddyLog), `"path":"/.mailgate/link"`) {
		t.Fatal("Caddy's log has no line of mailgate's own for the link page")
	}
}
