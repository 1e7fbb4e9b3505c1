package api

import (
	"net/http"

	"github.com/mailgate/caddy-mailgate/internal/dpop"
)

// Discovery is GET {prefix}/.well-known/openid-configuration (OpenID
// Connect Discovery 1.0): what an off-the-shelf OIDC library needs to verify
// the ID tokens mailgate issues without hand configuration. Its issuer is
// {base_url}{prefix}, the iss of every token apps receive, so a library that
// is given the issuer finds this document under it. There is no
// authorization endpoint: logins start with a mail, through the API.
//
// The same document is the OAuth 2.0 Authorization Server Metadata of RFC
// 8414, whose members it uses, for OAuth clients that look for
// oauth-authorization-server: served as {prefix}/.well-known/
// oauth-authorization-server. RFC 8414 section 3.1 puts it at
// /.well-known/oauth-authorization-server{prefix}, outside the prefix, which
// only the operator can route here (docs/api.md has the rewrite).
type Discovery struct {
	// Issuer is {base_url}{prefix}; the endpoints are under it.
	Issuer string
}

type discoveryDocument struct {
	Issuer                   string   `json:"issuer"`
	JWKSURI                  string   `json:"jwks_uri"`
	TokenEndpoint            string   `json:"token_endpoint"`
	ResponseTypes            []string `json:"response_types_supported"`
	ResponseModes            []string `json:"response_modes_supported"`
	GrantTypes               []string `json:"grant_types_supported"`
	SubjectTypes             []string `json:"subject_types_supported"`
	IDTokenSigningAlgs       []string `json:"id_token_signing_alg_values_supported"`
	TokenEndpointAuthMethods []string `json:"token_endpoint_auth_methods_supported"`
	CodeChallengeMethods     []string `json:"code_challenge_methods_supported"`
	DPoPSigningAlgs          []string `json:"dpop_signing_alg_values_supported"`
	ClaimsSupported          []string `json:"claims_supported"`
	// The default, true, would promise a parameter mailgate does not read.
	RequestURIParameterSupport bool `json:"request_uri_parameter_supported"`
}

func (d *Discovery) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	WriteJSON(w, http.StatusOK, discoveryDocument{
		Issuer:                   d.Issuer,
		JWKSURI:                  d.Issuer + "/jwks.json",
		TokenEndpoint:            d.Issuer + "/oauth/token",
		ResponseTypes:            responseTypes,
		ResponseModes:            responseModes,
		GrantTypes:               []string{"authorization_code", "client_credentials"},
		SubjectTypes:             []string{"public"},
		IDTokenSigningAlgs:       []string{"EdDSA"},
		TokenEndpointAuthMethods: []string{"client_secret_basic", "client_secret_post"},
		CodeChallengeMethods:     []string{"S256"},
		DPoPSigningAlgs:          dpop.Algorithms,
		ClaimsSupported:          []string{"iss", "sub", "aud", "exp", "iat", "auth_time", "email", "username", "name"},
	})
}
