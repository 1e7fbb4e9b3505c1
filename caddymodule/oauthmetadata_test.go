package caddymodule

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"
)

// TestOAuthServerMetadataInCaddy: OAuth clients that look for RFC 8414
// metadata rather than OpenID's find the same document. Under the prefix
// it is mailgate's own; at the well-known URI RFC 8414 section 3.1 derives
// from the issuer (/.well-known/oauth-authorization-server/.mailgate,
// outside the prefix) it is served once the operator adds the rewrite
// docs/api.md shows.
func TestOAuthServerMetadataInCaddy(t *testing.T) {
	e := startCaddyWith(t, func(*env) siteConfig {
		return siteConfig{Site: "rewrite /.well-known/oauth-authorization-server/.mailgate /.mailgate/.well-known/oauth-authorization-server"}
	})
	openid := e.browser(t).get("/.mailgate/.well-known/openid-configuration")
	for _, path := range []string{"/.mailgate/.well-known/oauth-authorization-server", "/.well-known/oauth-authorization-server/.mailgate"} {
		r := e.browser(t).get(path, "Accept", "application/json")
		var doc struct {
			Issuer        string   `json:"issuer"`
			TokenEndpoint string   `json:"token_endpoint"`
			JWKSURI       string   `json:"jwks_uri"`
			ResponseTypes []string `json:"response_types_supported"`
			GrantTypes    []string `json:"grant_types_supported"`
		}
		if err := json.Unmarshal([]byte(r.body), &doc); err != nil || r.StatusCode != http.StatusOK || r.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("%s: %s %s %q", path, r.Status, r.Header.Get("Content-Type"), r.body)
		}
		// RFC 8414 section 3.3: the issuer the URI was made from.
		if doc.Issuer != e.base+"/.mailgate" || doc.TokenEndpoint != doc.Issuer+"/oauth/token" || doc.JWKSURI != doc.Issuer+"/jwks.json" ||
			len(doc.ResponseTypes) == 0 || !slices.Contains(doc.GrantTypes, "authorization_code") || !slices.Contains(doc.GrantTypes, "client_credentials") {
			t.Fatalf("%s: %s", path, r.body)
		}
		if r.body != openid.body {
			t.Errorf("%s differs from the OpenID document:\n%s\n%s", path, r.body, openid.body)
		}
	}
}
