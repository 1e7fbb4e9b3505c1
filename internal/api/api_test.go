package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/crypto/bcrypt"

	"github.com/mailgate/caddy-mailgate/internal/directory"
	"github.com/mailgate/caddy-mailgate/internal/dpop"
	"github.com/mailgate/caddy-mailgate/internal/flow"
	"github.com/mailgate/caddy-mailgate/internal/memstorage"
	"github.com/mailgate/caddy-mailgate/internal/password"
	"github.com/mailgate/caddy-mailgate/internal/session"
	"github.com/mailgate/caddy-mailgate/internal/testdpop"
	"github.com/mailgate/caddy-mailgate/internal/ticket"
)

const (
	base     = "https://app.example.com"
	tokenURL = base + "/.mailgate/oauth/token"
	apiURL   = base + "/.mailgate/api/v1/login-email"
)

type fixture struct {
	now   time.Time
	token *TokenEndpoint
	auth  *Authenticator
	ring  *session.KeyRing
	codes flow.AuthCodes
	users *directory.Directory
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{now: time.Date(2026, 8, 1, 10, 0, 0, 0, time.UTC)}
	now := func() time.Time { return f.now }
	ring, err := session.LoadKeyRing(context.Background(), memstorage.New(), "k", time.Now)
	if err != nil {
		t.Fatal(err)
	}
	store, err := ticket.NewMemory(ticket.MinMemory, now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	bhash, _ := bcrypt.GenerateFromPassword([]byte("bcrypt-secret-0123456789"), bcrypt.MinCost)
	clients, err := NewClients([]ClientConfig{
		{ID: "shop", Secret: "shop-secret-0123456789", RedirectURIs: []string{"https://shop.example.com/callback"},
			Scopes: []string{ScopeLoginEmail, ScopeMagicLink}},
		{ID: "legacy", SecretHash: string(bhash), DPoP: DPoPAllowed, Scopes: []string{ScopeLoginEmail}},
		{ID: "narrow", Secret: "narrow-secret-0123456789", Scopes: []string{ScopeMagicLink}},
		{ID: "crm", Secret: "crm-secret-0123456789", RedirectURIs: []string{"https://crm.example.com/cb"},
			ForceCreate: true, Scopes: []string{ScopeMagicLink}},
		{ID: "admin", Secret: "admin-secret-0123456789", Scopes: []string{ScopeUsersRead, ScopeUsersWrite}},
		{ID: "hr", Name: "The HR Desk", Secret: "hr-secret-0123456789", Scopes: []string{ScopeEmailLink},
			EmailLinkPrefixes: []string{"https://hr.example.com/?invitation="}},
		// A hash of the empty secret, as a careless operator might paste.
		{ID: "blank", SecretHash: password.New("").String(), Scopes: []string{ScopeLoginEmail}},
	})
	if err != nil {
		t.Fatal(err)
	}
	tokens := &session.AppTokens{Signer: session.Signer{Ring: ring, Issuer: base, Audience: base + "/.mailgate/api", Now: now}, TTL: 5 * time.Minute}
	v := &dpop.Verifier{Replay: store, Now: now, Window: time.Minute}
	f.ring = ring
	f.codes = flow.AuthCodes{Store: store}
	f.users = directory.New(memstorage.New(), "mg", now)
	f.token = &TokenEndpoint{Clients: clients, Tokens: tokens, DPoP: v, URL: tokenURL, Codes: f.codes, Users: f.users}
	f.auth = &Authenticator{Clients: clients, Tokens: tokens, DPoP: v}
	return f
}

type tokenCall struct {
	basicID, basicSecret string
	form                 url.Values
	dpop                 []string
}

func (f *fixture) callToken(c tokenCall) (*httptest.ResponseRecorder, map[string]any) {
	r := httptest.NewRequest(http.MethodPost, tokenURL, strings.NewReader(c.form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if c.basicID != "" {
		r.SetBasicAuth(url.QueryEscape(c.basicID), url.QueryEscape(c.basicSecret))
	}
	for _, p := range c.dpop {
		r.Header.Add("DPoP", p)
	}
	w := httptest.NewRecorder()
	f.token.ServeHTTP(w, r)
	var body map[string]any
	_ = json.Unmarshal(w.Body.Bytes(), &body)
	return w, body
}

func TestClientCredentialsWithDPoP(t *testing.T) {
	f := newFixture(t)
	key := testdpop.NewKey(t)
	for name, call := range map[string]tokenCall{
		"client_secret_basic": {basicID: "shop", basicSecret: "shop-secret-0123456789",
			form: url.Values{"grant_type": {"client_credentials"}}},
		"client_secret_post": {form: url.Values{"grant_type": {"client_credentials"},
			"client_id": {"shop"}, "client_secret": {"shop-secret-0123456789"}}},
	} {
		call.dpop = []string{key.Proof(t, "POST", tokenURL, "", f.now)}
		w, body := f.callToken(call)
		if w.Code != http.StatusOK || body["token_type"] != "DPoP" || body["expires_in"] != float64(300) {
			t.Fatalf("%s: %d %v", name, w.Code, body)
		}
		if w.Header().Get("Cache-Control") != "no-store" {
			t.Errorf("%s: token response is cacheable", name)
		}
		at, err := f.token.Tokens.Verify(body["access_token"].(string))
		if err != nil || at.ClientID != "shop" || at.JKT != key.Thumbprint(t) || strings.Join(at.Scopes, " ") != "login_email magic_link" {
			t.Fatalf("%s: token %+v, %v", name, at, err)
		}
	}
}

func TestTokenEndpointErrors(t *testing.T) {
	f := newFixture(t)
	key := testdpop.NewKey(t)
	cc := url.Values{"grant_type": {"client_credentials"}}
	cases := []struct {
		name   string
		call   tokenCall
		status int
		code   string
	}{
		{"wrong secret", tokenCall{basicID: "shop", basicSecret: "nope", form: cc}, 401, "invalid_client"},
		{"unknown client", tokenCall{basicID: "ghost", basicSecret: "shop-secret-0123456789", form: cc}, 401, "invalid_client"},
		{"no credentials", tokenCall{form: cc}, 401, "invalid_client"},
		{"empty secret matching its hash", tokenCall{basicID: "blank", basicSecret: "", form: cc}, 401, "invalid_client"},
		{"client_id other than the Basic one", tokenCall{basicID: "shop", basicSecret: "shop-secret-0123456789",
			form: url.Values{"grant_type": {"client_credentials"}, "client_id": {"crm"}}}, 400, "invalid_request"},
		{"two methods", tokenCall{basicID: "shop", basicSecret: "shop-secret-0123456789",
			form: url.Values{"grant_type": {"client_credentials"}, "client_secret": {"x"}}}, 400, "invalid_request"},
		{"no grant_type", tokenCall{basicID: "shop", basicSecret: "shop-secret-0123456789", form: url.Values{}}, 400, "invalid_request"},
		{"password grant", tokenCall{basicID: "shop", basicSecret: "shop-secret-0123456789",
			form: url.Values{"grant_type": {"password"}}}, 400, "unsupported_grant_type"},
		{"scope not granted", tokenCall{basicID: "narrow", basicSecret: "narrow-secret-0123456789",
			form: url.Values{"grant_type": {"client_credentials"}, "scope": {"login_email"}}, dpop: []string{key.Proof(t, "POST", tokenURL, "", f.now)}}, 400, "invalid_scope"},
		{"dpop required, none sent", tokenCall{basicID: "shop", basicSecret: "shop-secret-0123456789", form: cc}, 400, "invalid_dpop_proof"},
		{"proof for another URL", tokenCall{basicID: "shop", basicSecret: "shop-secret-0123456789", form: cc,
			dpop: []string{key.Proof(t, "POST", apiURL, "", f.now)}}, 400, "invalid_dpop_proof"},
	}
	for _, c := range cases {
		w, body := f.callToken(c.call)
		if w.Code != c.status || body["error"] != c.code {
			t.Errorf("%s: %d %v, want %d %s", c.name, w.Code, body, c.status, c.code)
		}
	}
	// An unknown client and a wrong secret are answered alike.
	_, a := f.callToken(cases[0].call)
	_, b := f.callToken(cases[1].call)
	if a["error_description"] != b["error_description"] {
		t.Errorf("unknown client and wrong secret differ: %v / %v", a, b)
	}
}

func TestBearerOnlyForClientsThatAllowIt(t *testing.T) {
	f := newFixture(t)
	w, body := f.callToken(tokenCall{basicID: "legacy", basicSecret: "bcrypt-secret-0123456789", form: url.Values{"grant_type": {"client_credentials"}}})
	if w.Code != http.StatusOK || body["token_type"] != "Bearer" {
		t.Fatalf("legacy client without proof: %d %v", w.Code, body)
	}
	at, _ := f.token.Tokens.Verify(body["access_token"].(string))
	if at.JKT != "" {
		t.Fatal("a Bearer token carries cnf")
	}
}

// call runs the Authenticator on a request to the login-email API.
func (f *fixture) call(t *testing.T, scheme, token string, proofs ...string) (*Client, *Error) {
	r := httptest.NewRequest(http.MethodPost, apiURL, strings.NewReader("{}"))
	if scheme != "" {
		r.Header.Set("Authorization", scheme+" "+token)
	}
	for _, p := range proofs {
		r.Header.Add("DPoP", p)
	}
	return f.auth.Authenticate(r, apiURL, ScopeLoginEmail)
}

func (f *fixture) dpopToken(t *testing.T, client, secret string, key testdpop.Key) string {
	t.Helper()
	w, body := f.callToken(tokenCall{basicID: client, basicSecret: secret, form: url.Values{"grant_type": {"client_credentials"}},
		dpop: []string{key.Proof(t, "POST", tokenURL, "", f.now)}})
	if w.Code != http.StatusOK {
		t.Fatalf("token: %d %v", w.Code, body)
	}
	return body["access_token"].(string)
}

func TestAPIAuthentication(t *testing.T) {
	f := newFixture(t)
	key, otherKey := testdpop.NewKey(t), testdpop.NewKey(t)
	tok := f.dpopToken(t, "shop", "shop-secret-0123456789", key)

	if c, err := f.call(t, "DPoP", tok, key.Proof(t, "POST", apiURL, tok, f.now)); err != nil || c.ID != "shop" {
		t.Fatalf("valid DPoP call: %v", err)
	}

	w, body := f.callToken(tokenCall{basicID: "legacy", basicSecret: "bcrypt-secret-0123456789", form: url.Values{"grant_type": {"client_credentials"}}})
	if w.Code != http.StatusOK {
		t.Fatal(body)
	}
	bearer := body["access_token"].(string)
	if c, err := f.call(t, "Bearer", bearer); err != nil || c.ID != "legacy" {
		t.Fatalf("Bearer token of an allowed client: %v", err)
	}
	narrow := f.dpopToken(t, "narrow", "narrow-secret-0123456789", key)
	// Tokens issued before the configuration changed: they must follow the
	// clients as configured now.
	issue := func(client string, scopes []string, jkt string) string {
		tok, err := f.token.Tokens.Issue(client, scopes, jkt)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	boundAllowed := f.dpopToken(t, "legacy", "bcrypt-secret-0123456789", key)
	unboundRequired := issue("shop", []string{ScopeLoginEmail}, "")
	ghost := issue("ghost", []string{ScopeLoginEmail}, key.Thumbprint(t))
	scopeWithdrawn := issue("narrow", []string{ScopeLoginEmail}, key.Thumbprint(t))
	fewerScopes := issue("shop", []string{ScopeMagicLink}, key.Thumbprint(t))

	cases := []struct {
		name      string
		scheme    string
		token     string
		proofs    []string
		status    int
		code      string
		challenge string
	}{
		{"no token", "", "", nil, 401, "invalid_token", `DPoP algs="`},
		{"garbage token", "DPoP", "x.y.z", []string{key.Proof(t, "POST", apiURL, "x.y.z", f.now)}, 401, "invalid_token", `error="invalid_token"`},
		{"bound token as Bearer", "Bearer", tok, nil, 401, "invalid_token", `DPoP `},
		{"bound token without proof", "DPoP", tok, nil, 401, "invalid_dpop_proof", `error="invalid_dpop_proof"`},
		{"proof by another key", "DPoP", tok, []string{otherKey.Proof(t, "POST", apiURL, tok, f.now)}, 401, "invalid_dpop_proof", `algs="ES256`},
		{"proof without ath", "DPoP", tok, []string{key.Proof(t, "POST", apiURL, "", f.now)}, 401, "invalid_dpop_proof", ""},
		{"proof for the token endpoint", "DPoP", tok, []string{key.Proof(t, "POST", tokenURL, tok, f.now)}, 401, "invalid_dpop_proof", ""},
		{"Bearer token as DPoP", "DPoP", bearer, []string{key.Proof(t, "POST", apiURL, bearer, f.now)}, 401, "invalid_token", ""},
		{"missing scope", "DPoP", narrow, []string{key.Proof(t, "POST", apiURL, narrow, f.now)}, 403, "insufficient_scope", `scope="login_email"`},
		{"bound token of a dpop-allowed client as Bearer", "Bearer", boundAllowed, nil, 401, "invalid_token", `DPoP `},
		{"Bearer token of a client now dpop required", "Bearer", unboundRequired, nil, 401, "invalid_token", `DPoP `},
		{"unknown scheme", "Token", tok, []string{key.Proof(t, "POST", apiURL, tok, f.now)}, 401, "invalid_token", `DPoP algs="`},
		{"client no longer configured", "DPoP", ghost, []string{key.Proof(t, "POST", apiURL, ghost, f.now)}, 401, "invalid_token", `error="invalid_token"`},
		{"token asked for fewer scopes than the client has", "DPoP", fewerScopes, []string{key.Proof(t, "POST", apiURL, fewerScopes, f.now)}, 403, "insufficient_scope", ""},
		{"scope withdrawn from the client", "DPoP", scopeWithdrawn, []string{key.Proof(t, "POST", apiURL, scopeWithdrawn, f.now)}, 403, "insufficient_scope", ""},
	}
	for _, c := range cases {
		_, err := f.call(t, c.scheme, c.token, c.proofs...)
		if err == nil || err.Status != c.status || err.Code != c.code || !strings.Contains(err.Challenge, c.challenge) {
			t.Errorf("%s: %+v, want %d %s with challenge containing %q", c.name, err, c.status, c.code, c.challenge)
		}
	}
}

func TestClientConfigErrors(t *testing.T) {
	for name, cfg := range map[string]ClientConfig{
		"no secret":       {ID: "a"},
		"both secrets":    {ID: "a", Secret: "0123456789abcdef", SecretHash: "$2b$04$x"},
		"short secret":    {ID: "a", Secret: "short"},
		"bad hash":        {ID: "a", SecretHash: "plaintext"},
		"weak argon2id":   {ID: "a", SecretHash: "$argon2id$v=19$m=16,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"},
		"unknown scope":   {ID: "a", Secret: "0123456789abcdef", Scopes: []string{"admin"}},
		"bad dpop policy": {ID: "a", Secret: "0123456789abcdef", DPoP: "sometimes"},
		"http redirect":   {ID: "a", Secret: "0123456789abcdef", RedirectURIs: []string{"http://shop.example.com/cb"}},
		"fragment":        {ID: "a", Secret: "0123456789abcdef", RedirectURIs: []string{"https://shop.example.com/cb#x"}},
		"id with colon":   {ID: "a:b", Secret: "0123456789abcdef"},
	} {
		if _, err := NewClients([]ClientConfig{cfg}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := NewClients([]ClientConfig{{ID: "a", Secret: "0123456789abcdef"}, {ID: "a", Secret: "0123456789abcdef"}}); err == nil {
		t.Error("duplicate client id accepted")
	}
	// A hash made elsewhere (here with the password package's own format)
	// verifies its secret.
	cs, err := NewClients([]ClientConfig{{ID: "a", SecretHash: password.New("0123456789abcdef").String()}})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := cs.Authenticate("a", "0123456789abcdef"); !ok {
		t.Fatal("argon2id PHC hash does not verify its secret")
	}
}

// issueCode makes an authorization code for alice's login through shop, as
// confirming a mailed link does.
func (f *fixture) issueCode(t *testing.T, login flow.ClientLogin) (string, directory.User) {
	t.Helper()
	ctx := context.Background()
	u, err := f.users.EnsureByEmail(ctx, "alice@example.com")
	if err != nil {
		t.Fatal(err)
	}
	code, err := f.codes.Issue(ctx, login, u.ID, f.now)
	if err != nil {
		t.Fatal(err)
	}
	return code, u
}

// verifiedClaims checks token against the published key set with go-jose,
// as an app would, and returns its typ and claims.
func (f *fixture) verifiedClaims(t *testing.T, token string) (string, map[string]any) {
	t.Helper()
	var jwks jose.JSONWebKeySet
	if err := json.Unmarshal(f.ring.JWKS(), &jwks); err != nil {
		t.Fatal(err)
	}
	sig, err := jose.ParseSigned(token, []jose.SignatureAlgorithm{jose.EdDSA})
	if err != nil {
		t.Fatal(err)
	}
	keys := jwks.Key(sig.Signatures[0].Header.KeyID)
	if len(keys) != 1 {
		t.Fatalf("kid %q not in the JWKS", sig.Signatures[0].Header.KeyID)
	}
	payload, err := sig.Verify(keys[0].Key)
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	_ = json.Unmarshal(payload, &claims)
	// A one-element aud reads as its element.
	if list, ok := claims["aud"].([]any); ok && len(list) == 1 {
		claims["aud"] = list[0]
	}
	typ, _ := sig.Signatures[0].Protected.ExtraHeaders[jose.HeaderType].(string)
	return typ, claims
}

// TestAuthorizationCodeGivesAnAccessTokenAndAnIDToken: the exchange answers
// what RFC 6749 section 5.1 and OpenID Connect Core section 3.1.3.3
// require, which oauth4webapi, openid-client and golang.org/x/oauth2 check:
// an access token and its token_type, beside the ID token.
func TestAuthorizationCodeGivesAnAccessTokenAndAnIDToken(t *testing.T) {
	f := newFixture(t)
	login := flow.ClientLogin{ClientID: "shop", RedirectURI: "https://shop.example.com/callback"}
	code, u := f.issueCode(t, login)
	exchange := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {login.RedirectURI},
		"client_id": {"shop"}, "client_secret": {"shop-secret-0123456789"}}
	w, body := f.callToken(tokenCall{form: exchange})
	if w.Code != http.StatusOK || body["token_type"] != "Bearer" || body["expires_in"] != float64(300) || body["scope"] != "openid" {
		t.Fatalf("exchange: %d %v", w.Code, body)
	}
	at, _ := body["access_token"].(string)
	if at == "" {
		t.Fatalf("no access_token: %v", body)
	}

	typ, claims := f.verifiedClaims(t, body["id_token"].(string))
	for k, want := range map[string]any{"iss": base, "aud": "shop", "sub": u.ID, "email": "alice@example.com", "username": "alice"} {
		if claims[k] != want {
			t.Errorf("ID token claim %s = %v, want %v", k, claims[k], want)
		}
	}
	if typ != "JWT" || claims["exp"] == nil || claims["iat"] == nil {
		t.Errorf("ID token typ %q, claims %v", typ, claims)
	}

	// The access token names the user and the client, for the client's
	// resource: not the client id, which would make it pass for an ID
	// token where typ is not checked.
	typ, claims = f.verifiedClaims(t, at)
	for k, want := range map[string]any{"iss": base, "aud": base + "/clients/shop", "sub": u.ID, "client_id": "shop", "scope": "openid"} {
		if claims[k] != want {
			t.Errorf("access token claim %s = %v, want %v", k, claims[k], want)
		}
	}
	if typ != "at+jwt" || claims["jti"] == nil || claims["exp"].(float64)-claims["iat"].(float64) != 300 || claims["cnf"] != nil {
		t.Errorf("access token typ %q, claims %v", typ, claims)
	}
	// mailgate's API does not take it.
	if _, err := f.call(t, "Bearer", at); err == nil || err.Code != "invalid_token" {
		t.Errorf("the code exchange's access token at the API: %+v", err)
	}

	if w, body := f.callToken(tokenCall{form: exchange}); w.Code != 400 || body["error"] != "invalid_grant" {
		t.Fatalf("second exchange: %d %v", w.Code, body)
	}
	other, _ := f.codes.Issue(context.Background(), login, u.ID, f.now)
	exchange.Set("code", other)
	exchange.Set("redirect_uri", "https://shop.example.com/other")
	if w, body := f.callToken(tokenCall{form: exchange}); w.Code != 400 || body["error"] != "invalid_grant" {
		t.Fatalf("other redirect_uri: %d %v", w.Code, body)
	}
}

// A magic link's scope is the exchange's scope.
func TestAuthorizationCodeKeepsTheLoginsScope(t *testing.T) {
	f := newFixture(t)
	login := flow.ClientLogin{ClientID: "shop", RedirectURI: "https://shop.example.com/callback", Scope: "openid orders"}
	code, _ := f.issueCode(t, login)
	w, body := f.callToken(tokenCall{basicID: "shop", basicSecret: "shop-secret-0123456789",
		form: url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {login.RedirectURI}}})
	if w.Code != http.StatusOK || body["scope"] != "openid orders" {
		t.Fatalf("exchange: %d %v", w.Code, body)
	}
	if _, claims := f.verifiedClaims(t, body["access_token"].(string)); claims["scope"] != "openid orders" {
		t.Fatalf("access token scope %v", claims["scope"])
	}
}

// TestAuthorizationCodeWithDPoP: a client that sends a proof with the
// exchange gets a token bound to its key (RFC 9449 section 5); a bad proof
// is refused before the code is used up, so the login is not lost.
func TestAuthorizationCodeWithDPoP(t *testing.T) {
	f := newFixture(t)
	key := testdpop.NewKey(t)
	login := flow.ClientLogin{ClientID: "shop", RedirectURI: "https://shop.example.com/callback"}
	code, _ := f.issueCode(t, login)
	call := func(proofs ...string) (*httptest.ResponseRecorder, map[string]any) {
		return f.callToken(tokenCall{basicID: "shop", basicSecret: "shop-secret-0123456789", dpop: proofs,
			form: url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {login.RedirectURI}}})
	}
	used := key.Proof(t, "POST", tokenURL, "", f.now)
	if w, _ := f.callToken(tokenCall{basicID: "shop", basicSecret: "shop-secret-0123456789", dpop: []string{used},
		form: url.Values{"grant_type": {"client_credentials"}}}); w.Code != http.StatusOK {
		t.Fatal("client_credentials with the proof failed")
	}
	for name, proof := range map[string]string{
		"a proof for another URL": key.Proof(t, "POST", apiURL, "", f.now),
		"a replayed proof":        used,
	} {
		if w, body := call(proof); w.Code != http.StatusBadRequest || body["error"] != "invalid_dpop_proof" {
			t.Fatalf("%s: %d %v, want 400 invalid_dpop_proof", name, w.Code, body)
		}
	}
	w, body := call(key.Proof(t, "POST", tokenURL, "", f.now))
	if w.Code != http.StatusOK || body["token_type"] != "DPoP" || body["id_token"] == nil {
		t.Fatalf("exchange with a proof after refused proofs: %d %v", w.Code, body)
	}
	_, claims := f.verifiedClaims(t, body["access_token"].(string))
	if cnf, _ := claims["cnf"].(map[string]any); cnf["jkt"] != key.Thumbprint(t) {
		t.Fatalf("access token cnf %v, want jkt %s", claims["cnf"], key.Thumbprint(t))
	}
}
