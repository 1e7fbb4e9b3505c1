package caddymodule

import (
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	jose "github.com/go-jose/go-jose/v4"

	"github.com/mailgate/caddy-mailgate/internal/directory"
	"github.com/mailgate/caddy-mailgate/internal/password"
	"github.com/mailgate/caddy-mailgate/internal/testdpop"
)

func TestTokenEndpointInCaddy(t *testing.T) {
	e := startCaddy(t)
	key := testdpop.NewKey(t)
	tokenURL := e.base + "/.mailgate/oauth/token"

	proof := key.Proof(t, "POST", tokenURL, "", now())
	r, body := e.requestToken(t, shopSecret, proof)
	if r.StatusCode != http.StatusOK || body.TokenType != "DPoP" || body.AccessToken == "" || body.Scope != "login_email magic_link" {
		t.Fatalf("token: %s %+v", r.Status, body)
	}
	if r.Header.Get("Cache-Control") != "no-store" {
		t.Error("the token response may be cached")
	}

	cases := []struct {
		name   string
		secret string
		proofs []string
		status int
		code   string
	}{
		{"the same proof again", shopSecret, []string{proof}, 400, "invalid_dpop_proof"},
		{"no proof for a dpop-required client", shopSecret, nil, 400, "invalid_dpop_proof"},
		{"proof naming the Host header's origin", shopSecret, []string{key.Proof(t, "POST", "https://127.0.0.1/.mailgate/oauth/token", "", now())}, 400, "invalid_dpop_proof"},
		{"wrong secret", "not-the-secret-0123", []string{key.Proof(t, "POST", tokenURL, "", now())}, 401, "invalid_client"},
	}
	for _, c := range cases {
		r, body := e.requestToken(t, c.secret, c.proofs...)
		if r.StatusCode != c.status || body.Error != c.code {
			t.Errorf("%s: %s %+v, want %d %s", c.name, r.Status, body, c.status, c.code)
		}
	}
}

// TestLoginEmailJourney is seed 000 as an app lives it: token, login-email,
// the mail at a real SMTP server, the person confirming, the redirect with
// code and state, the code exchange, and the ID token checked against the
// JWKS with go-jose rather than mailgate's jwx.
func TestLoginEmailJourney(t *testing.T) {
	e := startCaddy(t)
	e.browser(t).login("alice@example.com", "/") // the account exists
	key := testdpop.NewKey(t)
	_, tok := e.requestToken(t, shopSecret, key.Proof(t, "POST", e.base+"/.mailgate/oauth/token", "", now()))

	const callback = "https://shop.example.com/callback"
	state := "order 7 & more=yes"
	r, body := e.callAPI(t, "/.mailgate/api/v1/login-email", tok.AccessToken, key,
		`{"selector":"email","email":"alice@example.com","redirect_uri":"`+callback+`","state":"`+state+`","locale":"en-GB"}`,
		"X-Request-ID", "rq-1", "X-Correlation-ID", "co-1")
	if r.StatusCode != http.StatusOK || r.Header.Get("X-Request-ID") != "rq-1" || r.Header.Get("X-Correlation-ID") != "co-1" {
		t.Fatalf("login-email: %s %v %v", r.Status, body, r.Header)
	}

	person := e.browser(t)
	done := person.confirm(e.mailedLink(t, "alice@example.com"))
	loc := done.onward(t)
	if loc.Scheme+"://"+loc.Host+loc.Path != callback {
		t.Fatalf("sent on to %q", loc)
	}
	if loc.Query().Get("state") != state || loc.Query().Get("code") == "" {
		t.Fatalf("redirect query %q: state must come back exactly", loc.RawQuery)
	}
	if person.cookie("__Host-mailgate") == "" {
		t.Error("the person got no session cookie")
	}
	// The answer carries a code and sets the session: nothing may keep it.
	if done.Header.Get("Cache-Control") != "no-store" || done.Header.Get("Referrer-Policy") != "no-referrer" {
		t.Errorf("the answer with the code has Cache-Control %q, Referrer-Policy %q",
			done.Header.Get("Cache-Control"), done.Header.Get("Referrer-Policy"))
	}

	exchange := url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")}, "redirect_uri": {callback}}
	req, _ := http.NewRequest(http.MethodPost, e.base+"/.mailgate/oauth/token", strings.NewReader(exchange.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("shop", shopSecret)
	tr := e.browser(t).do(req)
	var idResp struct {
		IDToken string `json:"id_token"`
	}
	if err := json.Unmarshal([]byte(tr.body), &idResp); err != nil || tr.StatusCode != http.StatusOK || idResp.IDToken == "" {
		t.Fatalf("code exchange: %s %s", tr.Status, tr.body)
	}

	// An OIDC library finds everything from the issuer: the discovery
	// document under it names it, the JWKS and the token endpoint.
	disc := e.browser(t).get("/.mailgate/.well-known/openid-configuration", "Accept", "application/json")
	var doc struct {
		Issuer        string   `json:"issuer"`
		JWKSURI       string   `json:"jwks_uri"`
		TokenEndpoint string   `json:"token_endpoint"`
		Algs          []string `json:"id_token_signing_alg_values_supported"`
	}
	if err := json.Unmarshal([]byte(disc.body), &doc); err != nil || disc.StatusCode != http.StatusOK {
		t.Fatalf("discovery: %s %s", disc.Status, disc.body)
	}
	if doc.Issuer != e.base+"/.mailgate" || doc.JWKSURI != doc.Issuer+"/jwks.json" || doc.TokenEndpoint != doc.Issuer+"/oauth/token" || len(doc.Algs) != 1 || doc.Algs[0] != "EdDSA" {
		t.Fatalf("discovery document %s", disc.body)
	}

	jwksResp := e.browser(t).get("/.mailgate/jwks.json")
	var jwks jose.JSONWebKeySet
	if err := json.Unmarshal([]byte(jwksResp.body), &jwks); err != nil {
		t.Fatal(err)
	}
	sig, err := jose.ParseSigned(idResp.IDToken, []jose.SignatureAlgorithm{jose.EdDSA})
	if err != nil {
		t.Fatal(err)
	}
	keys := jwks.Key(sig.Signatures[0].Header.KeyID)
	if len(keys) != 1 {
		t.Fatalf("the ID token's kid is not in the JWKS")
	}
	payload, err := sig.Verify(keys[0].Key)
	if err != nil {
		t.Fatalf("ID token does not verify against the JWKS: %v", err)
	}
	var claims struct {
		Iss, Sub, Email, Username string
		Aud                       any
		Exp, Iat                  int64
	}
	_ = json.Unmarshal(payload, &claims)
	if claims.Iss != doc.Issuer || claims.Email != "alice@example.com" || claims.Username != "alice" || claims.Sub == "" || claims.Exp <= claims.Iat {
		t.Fatalf("ID token claims %s", payload)
	}
	if aud, _ := claims.Aud.([]any); claims.Aud != "shop" && (len(aud) != 1 || aud[0] != "shop") {
		t.Fatalf("ID token aud %v, want shop", claims.Aud)
	}
}

func TestLoginEmailInBelgianDutch(t *testing.T) {
	e := startCaddy(t)
	e.browser(t).login("alice@example.com", "/")
	key := testdpop.NewKey(t)
	_, tok := e.requestToken(t, shopSecret, key.Proof(t, "POST", e.base+"/.mailgate/oauth/token", "", now()))
	r, body := e.callAPI(t, "/.mailgate/api/v1/login-email", tok.AccessToken, key,
		`{"selector":"username","username":"alice","redirect_uri":"https://shop.example.com/callback","locale":"nl-BE"}`)
	if r.StatusCode != http.StatusOK {
		t.Fatalf("login-email: %s %v", r.Status, body)
	}
	msgs := e.smtp.Messages()
	if raw := string(msgs[len(msgs)-1].Data); !strings.Contains(raw, "aanmeldlink") {
		t.Fatalf("the mail is not in Belgian Dutch:\n%s", raw)
	}
	link := e.mailedLink(t, "alice@example.com")
	if !strings.Contains(link, "l=nl-BE") {
		t.Fatalf("link %q does not carry the locale", link)
	}
	page := e.browser(t).get(mustURL(link).RequestURI())
	if !strings.Contains(page.body, `<html lang="nl-BE">`) || !strings.Contains(page.body, "Verder met aanmelden") {
		t.Fatalf("the confirmation page is not in Belgian Dutch:\n%s", page.body)
	}
}

// TestLoginEmailContractInCaddy asks for every status and error code seed 000
// documents, and checks that each answer echoes the caller's request ids.
func TestLoginEmailContractInCaddy(t *testing.T) {
	e := startCaddy(t)
	e.browser(t).login("alice@example.com", "/")
	key := testdpop.NewKey(t)
	tokenURL := e.base + "/.mailgate/oauth/token"
	_, tok := e.requestToken(t, shopSecret, key.Proof(t, "POST", tokenURL, "", now()))
	_, narrow := e.clientCredentials(t, "shop", shopSecret, "magic_link", key.Proof(t, "POST", tokenURL, "", now()))
	if tok.AccessToken == "" || narrow.AccessToken == "" {
		t.Fatal("no access tokens")
	}
	const cb = `"redirect_uri":"https://shop.example.com/callback"`
	cases := []struct {
		name, token, body string
		status            int
		code              string
	}{
		{"by email", tok.AccessToken, `{"selector":"email","email":"Alice@Example.com",` + cb + `,"state":"s1"}`, 200, ""},
		{"by username", tok.AccessToken, `{"selector":"username","username":"alice",` + cb + `,"locale":"nl-NL"}`, 200, ""},
		{"no token", "", `{}`, 401, "invalid_token"},
		{"token without the login_email scope", narrow.AccessToken, `{"selector":"email","email":"alice@example.com",` + cb + `}`, 403, "insufficient_scope"},
		{"unknown email", tok.AccessToken, `{"selector":"email","email":"nobody@example.com",` + cb + `}`, 404, "account_not_found"},
		{"unknown username", tok.AccessToken, `{"selector":"username","username":"nobody",` + cb + `}`, 404, "account_not_found"},
		{"selector missing", tok.AccessToken, `{"email":"alice@example.com",` + cb + `}`, 400, "selector_invalid"},
		{"selector unknown", tok.AccessToken, `{"selector":"phone","email":"alice@example.com",` + cb + `}`, 400, "selector_invalid"},
		{"both email and username", tok.AccessToken, `{"selector":"email","email":"alice@example.com","username":"alice",` + cb + `}`, 400, "both_email_and_username_are_provided"},
		{"no redirect_uri", tok.AccessToken, `{"selector":"email","email":"alice@example.com"}`, 400, "no_redirect_uri_provided"},
		{"redirect_uri mismatch", tok.AccessToken, `{"selector":"email","email":"alice@example.com","redirect_uri":"https://shop.example.com/callback/"}`, 400, "redirect_uri_mismatch"},
		{"email of the wrong type", tok.AccessToken, `{"selector":"email","email":42,` + cb + `}`, 400, "invalid_input"},
		{"not JSON", tok.AccessToken, `selector=email`, 400, "invalid_input"},
		{"locale not supported", tok.AccessToken, `{"selector":"email","email":"alice@example.com",` + cb + `,"locale":"de-DE"}`, 400, "locale_not_supported"},
		{"locale malformed", tok.AccessToken, `{"selector":"email","email":"alice@example.com",` + cb + `,"locale":"dutch"}`, 400, "locale_invalid"},
		// Stored with the pending link: refused over its bound, not cut.
		{"state over 1 KiB", tok.AccessToken, `{"selector":"email","email":"alice@example.com",` + cb + `,"state":"` + strings.Repeat("s", 1025) + `"}`, 400, "invalid_input"},
	}
	for _, c := range cases {
		r, body := e.callAPI(t, "/.mailgate/api/v1/login-email", c.token, key, c.body, "X-Request-ID", c.name, "X-Correlation-ID", "co-"+c.name)
		if r.StatusCode != c.status || r.Header.Get("X-Request-ID") != c.name || r.Header.Get("X-Correlation-ID") != "co-"+c.name {
			t.Errorf("%s: %s %v, request ids %q %q", c.name, r.Status, body, r.Header.Get("X-Request-ID"), r.Header.Get("X-Correlation-ID"))
			continue
		}
		if c.status == 200 {
			if len(body) != 0 {
				t.Errorf("%s: body %v, want {}", c.name, body)
			}
			continue
		}
		if body["error"] != c.code || body["error_description"] == "" {
			t.Errorf("%s: body %v, want error %s with a description", c.name, body, c.code)
		}
		if (c.status == 401 || c.status == 403) && !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "DPoP ") {
			t.Errorf("%s: WWW-Authenticate %q", c.name, r.Header.Get("WWW-Authenticate"))
		}
	}
	// A body of another media type, or with data after the object, is
	// refused in the contract's shape, and mails nothing.
	valid := `{"selector":"email","email":"alice@example.com",` + cb + `}`
	for _, c := range []struct{ name, contentType, body string }{
		{"text/plain", "text/plain", valid},
		{"data after the object", "application/json", valid + "]"},
	} {
		r, body := e.callAPI(t, "/.mailgate/api/v1/login-email", tok.AccessToken, key, c.body, "Content-Type", c.contentType)
		if r.StatusCode != http.StatusBadRequest || body["error"] != "invalid_input" {
			t.Errorf("%s: %s %v, want 400 invalid_input", c.name, r.Status, body)
		}
	}
	if n := len(e.smtp.Messages()); n != 3 { // the browser login above, and the two 200s
		t.Errorf("%d mails sent, want 3", n)
	}
}

// TestMagicLinkContractInCaddy asks for every status seed 002 documents, in
// its {message, status, subSystem} shape, with a DPoP client and a Bearer
// one.
func TestMagicLinkContractInCaddy(t *testing.T) {
	e := startCaddy(t)
	e.browser(t).login("alice@example.com", "/")
	key := testdpop.NewKey(t)
	tokenURL := e.base + "/.mailgate/oauth/token"
	_, shop := e.requestToken(t, shopSecret, key.Proof(t, "POST", tokenURL, "", now()))
	_, narrow := e.clientCredentials(t, "shop", shopSecret, "login_email", key.Proof(t, "POST", tokenURL, "", now()))
	// crm may use Bearer tokens and create users.
	_, crm := e.clientCredentials(t, "crm", crmSecret, "")
	if shop.AccessToken == "" || narrow.AccessToken == "" || crm.TokenType != "Bearer" {
		t.Fatalf("tokens: shop %+v, narrow %+v, crm %+v", shop, narrow, crm)
	}
	body := func(email, client, mode, typ string, force bool) string {
		b, _ := json.Marshal(map[string]any{
			"email": email, "clientId": client, "redirectUri": "https://" + client + ".example.com/callback",
			"scope": "open_id", "responseMode": mode, "responseType": typ, "forceCreate": force, "resetPassword": false,
		})
		return string(b)
	}
	const (
		sent    = "Mail was sent successfully to provided email id with magic link"
		badMode = "Invalid response type or response mode"
		noUser  = "User is not present, Please enable user"
	)
	var bearer testdpop.Key
	cases := []struct {
		name, token string
		key         testdpop.Key
		body        string
		status      int
		state, msg  string
	}{
		{"existing user", shop.AccessToken, key, body("alice@example.com", "shop", "query", "code", false), 200, "Ok", sent},
		{"unknown user", shop.AccessToken, key, body("new@example.com", "shop", "query", "code", false), 404, "Not Found", noUser},
		{"forceCreate by a client that may not create", shop.AccessToken, key, body("new@example.com", "shop", "query", "code", true), 404, "Not Found", noUser},
		{"forceCreate by a client that may", crm.AccessToken, bearer, body("new@example.com", "crm", "fragment", "token", true), 200, "Ok", sent},
		{"unknown response type", shop.AccessToken, key, body("alice@example.com", "shop", "query", "id_token", false), 400, "BAD REQUEST", badMode},
		{"unknown response mode", shop.AccessToken, key, body("alice@example.com", "shop", "web_message", "code", false), 400, "BAD REQUEST", badMode},
		{"a token in the query", shop.AccessToken, key, body("alice@example.com", "shop", "query", "code token", false), 400, "BAD REQUEST", badMode},
		{"no token", "", bearer, body("alice@example.com", "shop", "query", "code", false), 401, "UNAUTHORIZED", ""},
		{"token without the magic_link scope", narrow.AccessToken, key, body("alice@example.com", "shop", "query", "code", false), 403, "FORBIDDEN", ""},
		{"scope over 1 KiB", shop.AccessToken, key, strings.Replace(body("alice@example.com", "shop", "query", "code", false), `"open_id"`, `"`+strings.Repeat("s", 1025)+`"`, 1), 400, "BAD REQUEST", "Invalid request: scope is longer than 1024 bytes"},
	}
	for _, c := range cases {
		r, resp := e.callAPI(t, "/.mailgate/api/v1/magic-link", c.token, c.key, c.body, "X-Request-ID", c.name)
		if r.StatusCode != c.status || resp["status"] != c.state || resp["subSystem"] != float64(5) || r.Header.Get("X-Request-ID") != c.name {
			t.Errorf("%s: %s %v", c.name, r.Status, resp)
		}
		if c.msg != "" && resp["message"] != c.msg {
			t.Errorf("%s: message %q, want %q", c.name, resp["message"], c.msg)
		}
	}
	// A body of another media type, or with data after the object, is
	// the seed's 400 BAD REQUEST, and mails nothing.
	mails := len(e.smtp.Messages())
	valid := body("alice@example.com", "shop", "query", "code", false)
	for _, c := range []struct{ name, contentType, body string }{
		{"text/plain", "text/plain", valid},
		{"data after the object", "application/json", valid + "]"},
	} {
		r, resp := e.callAPI(t, "/.mailgate/api/v1/magic-link", shop.AccessToken, key, c.body, "Content-Type", c.contentType)
		if r.StatusCode != http.StatusBadRequest || resp["status"] != "BAD REQUEST" || resp["subSystem"] != float64(5) {
			t.Errorf("%s: %s %v, want 400 BAD REQUEST", c.name, r.Status, resp)
		}
	}
	if n := len(e.smtp.Messages()) - mails; n != 0 {
		t.Errorf("%d mails sent for refused bodies", n)
	}
	// The created user got the mail, and its link ends at crm's callback.
	r := e.browser(t).confirm(e.mailedLink(t, "new@example.com"))
	if loc := r.onward(t).String(); !strings.HasPrefix(loc, "https://crm.example.com/callback#") || !strings.Contains(loc, "access_token=") {
		t.Fatalf("the created user's link led to %q", loc)
	}
}

// magicLink asks for a magic link for alice as the shop client.
func (e *env) magicLink(t *testing.T, key testdpop.Key, mode, typ, redirect string) {
	t.Helper()
	_, tok := e.requestToken(t, shopSecret, key.Proof(t, "POST", e.base+"/.mailgate/oauth/token", "", now()))
	body, _ := json.Marshal(map[string]any{
		"email": "alice@example.com", "clientId": "shop", "redirectUri": redirect,
		"scope": "open_id", "responseMode": mode, "responseType": typ,
	})
	r, resp := e.callAPI(t, "/.mailgate/api/v1/magic-link", tok.AccessToken, key, string(body))
	if r.StatusCode != http.StatusOK || resp["status"] != "Ok" || resp["subSystem"] != float64(5) {
		t.Fatalf("magic-link %s/%s: %s %v", mode, typ, r.Status, resp)
	}
}

func TestMagicLinkResponseModesInCaddy(t *testing.T) {
	e := startCaddy(t)
	e.browser(t).login("alice@example.com", "/")
	key := testdpop.NewKey(t)
	const callback = "https://shop.example.com/callback"

	t.Run("query code", func(t *testing.T) {
		e.magicLink(t, key, "query", "code", callback)
		loc := e.browser(t).confirm(e.mailedLink(t, "alice@example.com")).onward(t)
		if loc.Host != "shop.example.com" || loc.Query().Get("code") == "" || loc.Query().Get("access_token") != "" {
			t.Fatalf("sent on to %q", loc)
		}
	})

	t.Run("fragment code token", func(t *testing.T) {
		e.magicLink(t, key, "fragment", "code token", callback)
		loc := e.browser(t).confirm(e.mailedLink(t, "alice@example.com")).onward(t)
		frag, _ := url.ParseQuery(loc.Fragment)
		if loc.RawQuery != "" || frag.Get("code") == "" || frag.Get("token_type") != "Bearer" {
			t.Fatalf("sent on to %q", loc)
		}
		// The token says who logged in, for the app, signed by the JWKS keys.
		var jwks jose.JSONWebKeySet
		_ = json.Unmarshal([]byte(e.browser(t).get("/.mailgate/jwks.json").body), &jwks)
		sig, err := jose.ParseSigned(frag.Get("access_token"), []jose.SignatureAlgorithm{jose.EdDSA})
		if err != nil {
			t.Fatal(err)
		}
		payload, err := sig.Verify(jwks.Key(sig.Signatures[0].Header.KeyID)[0].Key)
		if err != nil {
			t.Fatal(err)
		}
		var claims struct {
			Aud   any
			Email string
			Scope string
		}
		_ = json.Unmarshal(payload, &claims)
		if claims.Email != "alice@example.com" || claims.Scope != "open_id" || !strings.Contains(string(payload), `"shop"`) {
			t.Fatalf("token claims %s", payload)
		}
		// It is not an access token for mailgate's own API.
		apiReq, _ := http.NewRequest(http.MethodPost, e.base+"/.mailgate/api/v1/login-email", strings.NewReader(`{}`))
		apiReq.Header.Set("Authorization", "Bearer "+frag.Get("access_token"))
		if ar := e.browser(t).do(apiReq); ar.StatusCode != http.StatusUnauthorized {
			t.Fatalf("the app's token was accepted by the API: %s", ar.Status)
		}
	})

	t.Run("form_post", func(t *testing.T) {
		e.magicLink(t, key, "form_post", "code token", callback)
		r := e.browser(t).confirm(e.mailedLink(t, "alice@example.com"))
		csp := r.Header.Get("Content-Security-Policy")
		if r.StatusCode != http.StatusOK || !strings.Contains(csp, "form-action https://shop.example.com;") || !strings.Contains(csp, "script-src 'nonce-") {
			t.Fatalf("%s, CSP %q", r.Status, csp)
		}
		nonce := csp[strings.Index(csp, "'nonce-")+7:]
		nonce = nonce[:strings.Index(nonce, "'")]
		for _, want := range []string{`action="` + callback + `"`, `name="code"`, `name="access_token"`, `<script nonce="` + nonce + `">`} {
			if !strings.Contains(r.body, want) {
				t.Errorf("form_post page lacks %s:\n%s", want, r.body)
			}
		}
	})
}

func TestMagicLinkResetPassword(t *testing.T) {
	e := startCaddy(t)
	e.browser(t).login("alice@example.com", "/")
	key := testdpop.NewKey(t)
	_, tok := e.requestToken(t, shopSecret, key.Proof(t, "POST", e.base+"/.mailgate/oauth/token", "", now()))
	body, _ := json.Marshal(map[string]any{
		"email": "alice@example.com", "clientId": "shop", "redirectUri": "https://shop.example.com/callback",
		"scope": "open_id", "responseMode": "query", "responseType": "code", "resetPassword": true,
	})
	if r, resp := e.callAPI(t, "/.mailgate/api/v1/magic-link", tok.AccessToken, key, string(body)); r.StatusCode != http.StatusOK {
		t.Fatalf("magic-link: %s %v", r.Status, resp)
	}

	b := e.browser(t)
	page := b.confirm(e.mailedLink(t, "alice@example.com"))
	if page.StatusCode != http.StatusOK || !strings.Contains(page.body, `action="/.mailgate/password"`) {
		t.Fatalf("confirm did not lead to the set-password page: %s\n%s", page.Status, page.body)
	}
	if b.cookie("__Host-mailgate") != "" {
		t.Fatal("a session was started before the password was set")
	}
	pending := regexp.MustCompile(`name="p" value="([^"]+)"`).FindStringSubmatch(page.body)[1]
	form := func(pw, confirm string) response {
		return b.post("/.mailgate/password", map[string]string{
			"p": pending, "password": pw, "confirm": confirm, "form_token": b.cookie("__Host-mailgate-form"),
		})
	}
	if r := form("short", "short"); r.StatusCode != http.StatusBadRequest || !strings.Contains(r.body, "at least 15") {
		t.Fatalf("short password: %s", r.Status)
	}
	if r := form("a long enough password", "a long enough passw0rd"); r.StatusCode != http.StatusBadRequest || !strings.Contains(r.body, "not the same") {
		t.Fatalf("mismatch: %s", r.Status)
	}
	loc := form("a long enough password", "a long enough password").onward(t)
	if loc.Host != "shop.example.com" || loc.Query().Get("code") == "" {
		t.Fatalf("after setting the password, sent on to %q", loc)
	}
	if b.cookie("__Host-mailgate") == "" {
		t.Error("no session after the password was set")
	}
	if again := form("a long enough password", "a long enough password"); again.StatusCode != http.StatusGone {
		t.Fatalf("the set-password form worked twice: %s", again.Status)
	}

	// The stored hash is argon2id and checks the chosen password.
	ctx := caddy.ActiveContext()
	u, err := directory.New(ctx.Storage(), "mailgate/default", now).ByEmail(ctx, "alice@example.com")
	if err != nil {
		t.Fatal(err)
	}
	h, err := password.Parse(u.PasswordHash)
	if err != nil || !strings.HasPrefix(u.PasswordHash, "$argon2id$") || !h.Matches("a long enough password") {
		t.Fatalf("stored hash %q (%v)", u.PasswordHash, err)
	}
}
