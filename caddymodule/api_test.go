package caddymodule

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/mailgate/caddy-mailgate/internal/testdpop"
)

// tokenResponse is the token endpoint's answer, success or error.
type tokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int    `json:"expires_in"`
	Scope       string `json:"scope"`
	Error       string `json:"error"`
}

// requestToken asks the token endpoint for a client_credentials token as the
// shop client, with the given DPoP proofs.
func (e *env) requestToken(t *testing.T, secret string, proofs ...string) (response, tokenResponse) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.base+"/.mailgate/oauth/token",
		strings.NewReader(url.Values{"grant_type": {"client_credentials"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("shop", secret)
	for _, p := range proofs {
		req.Header.Add("DPoP", p)
	}
	r := e.browser(t).do(req)
	var body tokenResponse
	if err := json.Unmarshal([]byte(r.body), &body); err != nil {
		t.Fatalf("token endpoint answered %s with %q", r.Status, r.body)
	}
	return r, body
}

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
