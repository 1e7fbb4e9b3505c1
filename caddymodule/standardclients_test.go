package caddymodule

// Apps do not hand-craft their token requests: they use a library. These
// tests run the server-to-server journey with the standard Go ones,
// golang.org/x/oauth2 and github.com/coreos/go-oidc/v3, given nothing but
// mailgate's issuer and a client's credentials.

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// libraryContext is what an app hands the libraries: an HTTP client that
// trusts the test's certificate, with transport wrapped if not nil.
func (e *env) libraryContext(t *testing.T, wrap func(http.RoundTripper) http.RoundTripper) context.Context {
	t.Helper()
	client := e.browser(t).client
	if wrap != nil {
		client.Transport = wrap(client.Transport)
	}
	return oidc.ClientContext(context.Background(), client)
}

// provider discovers mailgate from its issuer, as an app configured with
// only the issuer does.
func (e *env) provider(t *testing.T, ctx context.Context) *oidc.Provider {
	t.Helper()
	p, err := oidc.NewProvider(ctx, e.base+"/.mailgate")
	if err != nil {
		t.Fatalf("discovery from the issuer: %v", err)
	}
	return p
}

// codeFromMail confirms the link mailed to alice and returns the code the
// page it answers sends the browser on to callback with.
func (e *env) codeFromMail(t *testing.T, callback string) string {
	t.Helper()
	loc := e.browser(t).confirm(e.mailedLink(t, "alice@example.com")).onward(t)
	if loc.Scheme+"://"+loc.Host+loc.Path != callback || loc.Query().Get("code") == "" {
		t.Fatalf("confirming the link: sent on to %q", loc)
	}
	return loc.Query().Get("code")
}

// claimsOf reads a JWT's payload without checking it: for what the
// libraries do not show.
func claimsOf(t *testing.T, token string) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("%q is not a JWT", token)
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	return claims
}

// TestOIDCClientsJourneyWithBearerTokens: the crm client (dpop allowed)
// gets its API token with clientcredentials, calls magic-link through the
// client that package makes, and exchanges the mailed login's code with
// oauth2.Config.Exchange (client_secret_basic); go-oidc verifies the ID
// token with the keys it found from the issuer.
func TestOIDCClientsJourneyWithBearerTokens(t *testing.T) {
	e := startCaddy(t)
	e.browser(t).login("alice@example.com", "/") // the account exists
	ctx := e.libraryContext(t, nil)
	provider := e.provider(t, ctx)
	endpoint := provider.Endpoint()
	endpoint.AuthStyle = oauth2.AuthStyleInHeader
	const callback = "https://crm.example.com/callback"

	cc := clientcredentials.Config{ClientID: "crm", ClientSecret: crmSecret, TokenURL: endpoint.TokenURL,
		Scopes: []string{"magic_link"}, AuthStyle: oauth2.AuthStyleInHeader}
	body, _ := json.Marshal(map[string]any{
		"email": "alice@example.com", "clientId": "crm", "redirectUri": callback,
		"scope": "openid email", "responseMode": "query", "responseType": "code",
	})
	resp, err := cc.Client(ctx).Post(e.base+"/.mailgate/api/v1/magic-link", "application/json", strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("magic-link with a clientcredentials token: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("magic-link with a clientcredentials token: %s", resp.Status)
	}

	conf := oauth2.Config{ClientID: "crm", ClientSecret: crmSecret, Endpoint: endpoint, RedirectURL: callback, Scopes: []string{oidc.ScopeOpenID}}
	tok, err := conf.Exchange(ctx, e.codeFromMail(t, callback))
	if err != nil {
		t.Fatalf("oauth2 Exchange: %v", err)
	}
	if tok.AccessToken == "" || tok.Type() != "Bearer" || tok.Extra("scope") != "openid email" {
		t.Fatalf("token %+v, scope %v", tok, tok.Extra("scope"))
	}
	if left := time.Until(tok.Expiry); left <= 4*time.Minute || left > 5*time.Minute {
		t.Errorf("the access token expires in %s, want access_token_ttl, 5m", left)
	}

	rawID, _ := tok.Extra("id_token").(string)
	idTokens := provider.Verifier(&oidc.Config{ClientID: "crm"})
	id, err := idTokens.Verify(ctx, rawID)
	if err != nil {
		t.Fatalf("go-oidc refuses the ID token: %v", err)
	}
	var who struct {
		Email, Username string
	}
	if err := id.Claims(&who); err != nil || who.Email != "alice@example.com" || who.Username != "alice" || id.Subject == "" {
		t.Fatalf("ID token for %q: %+v (%v)", id.Subject, who, err)
	}
	if sub := claimsOf(t, tok.AccessToken)["sub"]; sub != id.Subject {
		t.Errorf("the access token is for %v, the ID token for %s", sub, id.Subject)
	}

	// The access token is for the app: it passes for no ID token, no API
	// token and no session.
	if _, err := idTokens.Verify(ctx, tok.AccessToken); err == nil {
		t.Error("go-oidc takes the access token for an ID token")
	}
	req, _ := http.NewRequest(http.MethodPost, e.base+"/.mailgate/api/v1/magic-link", strings.NewReader(string(body)))
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	if r := e.browser(t).do(req); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("the access token at the API: %s", r.Status)
	}
	if r := e.browser(t).do(e.withCookie("/", tok.AccessToken)); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("the access token as a session cookie: %s", r.Status)
	}
}

// ed25519Key makes DPoP proofs as oauth4webapi and the npm dpop package do
// for an Ed25519 key: alg Ed25519 (RFC 9864), which go-jose cannot write.
type ed25519Key struct {
	public  ed25519.PublicKey
	private ed25519.PrivateKey
}

func newEd25519Key(t *testing.T) ed25519Key {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return ed25519Key{pub, priv}
}

func (k ed25519Key) proof(t *testing.T, method, htu, accessToken string) string {
	t.Helper()
	jwk, err := jose.JSONWebKey{Key: k.public}.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	header, _ := json.Marshal(map[string]any{"typ": "dpop+jwt", "alg": "Ed25519", "jwk": json.RawMessage(jwk)})
	claims := map[string]any{"jti": rand.Text(), "htm": method, "htu": htu, "iat": now().Unix()}
	if accessToken != "" {
		sum := sha256.Sum256([]byte(accessToken))
		claims["ath"] = base64.RawURLEncoding.EncodeToString(sum[:])
	}
	payload, _ := json.Marshal(claims)
	input := base64.RawURLEncoding.EncodeToString(header) + "." + base64.RawURLEncoding.EncodeToString(payload)
	return input + "." + base64.RawURLEncoding.EncodeToString(ed25519.Sign(k.private, []byte(input)))
}

func (k ed25519Key) thumbprint(t *testing.T) string {
	t.Helper()
	sum, err := (&jose.JSONWebKey{Key: k.public}).Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(sum)
}

// dpopTransport signs a fresh proof for each request: how a DPoP-aware app
// lends golang.org/x/oauth2, which knows no DPoP, its key.
type dpopTransport struct {
	t    *testing.T
	key  ed25519Key
	next http.RoundTripper
}

func (d dpopTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	htu := *r.URL
	htu.RawQuery = ""
	r.Header.Set("DPoP", d.key.proof(d.t, r.Method, htu.String(), ""))
	return d.next.RoundTrip(r)
}

// TestOIDCClientsJourneyWithDPoP is seed 000 with an Ed25519 DPoP key whose
// proofs say alg Ed25519: the shop client (dpop required) gets its API
// token and sends login-email with them, and oauth2.Config.Exchange, lent
// the key, gets a DPoP-bound access token beside the ID token.
func TestOIDCClientsJourneyWithDPoP(t *testing.T) {
	e := startCaddy(t)
	e.browser(t).login("alice@example.com", "/")
	key := newEd25519Key(t)
	ctx := e.libraryContext(t, func(next http.RoundTripper) http.RoundTripper { return dpopTransport{t, key, next} })
	provider := e.provider(t, ctx)
	var metadata struct {
		DPoPAlgs []string `json:"dpop_signing_alg_values_supported"`
	}
	if err := provider.Claims(&metadata); err != nil || !slices.Contains(metadata.DPoPAlgs, "Ed25519") {
		t.Fatalf("dpop_signing_alg_values_supported %v (%v)", metadata.DPoPAlgs, err)
	}
	tokenURL := provider.Endpoint().TokenURL
	const callback = "https://shop.example.com/callback"

	r, api := e.requestToken(t, shopSecret, key.proof(t, http.MethodPost, tokenURL, ""))
	if r.StatusCode != http.StatusOK || api.TokenType != "DPoP" {
		t.Fatalf("client_credentials with an Ed25519 proof: %s %+v", r.Status, api)
	}
	loginEmail := e.base + "/.mailgate/api/v1/login-email"
	req, _ := http.NewRequest(http.MethodPost, loginEmail,
		strings.NewReader(`{"selector":"email","email":"alice@example.com","redirect_uri":"`+callback+`","state":"s-7"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "DPoP "+api.AccessToken)
	req.Header.Set("DPoP", key.proof(t, http.MethodPost, loginEmail, api.AccessToken))
	if r := e.browser(t).do(req); r.StatusCode != http.StatusOK {
		t.Fatalf("login-email with an Ed25519 proof: %s %s", r.Status, r.body)
	}

	endpoint := provider.Endpoint()
	endpoint.AuthStyle = oauth2.AuthStyleInHeader
	conf := oauth2.Config{ClientID: "shop", ClientSecret: shopSecret, Endpoint: endpoint, RedirectURL: callback}
	tok, err := conf.Exchange(ctx, e.codeFromMail(t, callback))
	if err != nil {
		t.Fatalf("oauth2 Exchange: %v", err)
	}
	if tok.AccessToken == "" || tok.Type() != "DPoP" || tok.Extra("scope") != "openid" {
		t.Fatalf("token %+v, scope %v", tok, tok.Extra("scope"))
	}
	if cnf, _ := claimsOf(t, tok.AccessToken)["cnf"].(map[string]any); cnf["jkt"] != key.thumbprint(t) {
		t.Fatalf("the access token is bound to %v, want the proof's key %s", cnf, key.thumbprint(t))
	}
	rawID, _ := tok.Extra("id_token").(string)
	id, err := provider.Verifier(&oidc.Config{ClientID: "shop"}).Verify(ctx, rawID)
	if err != nil {
		t.Fatalf("go-oidc refuses the ID token: %v", err)
	}
	var who struct{ Email string }
	if err := id.Claims(&who); err != nil || who.Email != "alice@example.com" {
		t.Fatalf("ID token: %+v (%v)", who, err)
	}
}
