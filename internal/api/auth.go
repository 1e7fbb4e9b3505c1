package api

import (
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/mailgate/caddy-mailgate/internal/dpop"
)

// Authenticator checks the access token, and its DPoP proof, on API calls.
type Authenticator struct {
	Clients *Clients
	Tokens  *Tokens
	DPoP    *dpop.Verifier
}

// Authenticate returns the calling client if the request carries a valid
// token with scope. url is the request's URL under the configured base URL,
// which a proof's htu must name.
func (a *Authenticator) Authenticate(r *http.Request, url, scope string) (*Client, *Error) {
	scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	scheme = strings.ToLower(scheme)
	if token == "" || (scheme != "dpop" && scheme != "bearer") {
		return nil, a.challenge("dpop", "", "an access token is required: Authorization: DPoP <token>")
	}
	at, err := a.Tokens.Verify(token)
	if err != nil {
		return nil, a.challenge(scheme, "invalid_token", "the access token is invalid or expired")
	}
	client, ok := a.Clients.Get(at.ClientID)
	if !ok {
		return nil, a.challenge(scheme, "invalid_token", "the token's client is no longer configured")
	}
	switch scheme {
	case "dpop":
		if at.JKT == "" {
			return nil, a.challenge(scheme, "invalid_token", "the token is not bound to a DPoP key")
		}
		p, err := a.DPoP.Verify(r.Context(), dpop.Request{
			Proofs: r.Header.Values("DPoP"), Method: r.Method, URL: url, AccessToken: token,
		})
		if errors.Is(err, dpop.ErrInvalidProof) {
			return nil, a.challenge(scheme, "invalid_dpop_proof", err.Error())
		}
		if err != nil {
			return nil, &Error{Status: http.StatusServiceUnavailable, Code: "temporarily_unavailable", Description: "the replay store cannot be read"}
		}
		if p.JKT != at.JKT {
			return nil, a.challenge(scheme, "invalid_dpop_proof", "the proof is signed by another key than the token is bound to")
		}
	case "bearer":
		// A bound token sent as Bearer would let whoever stole it skip the
		// proof (RFC 9449 section 7.2).
		if at.JKT != "" {
			return nil, a.challenge("dpop", "invalid_token", "a DPoP-bound token must be sent with the DPoP scheme")
		}
		if client.DPoP == DPoPRequired {
			return nil, a.challenge("dpop", "invalid_token", "this client must use DPoP")
		}
	}
	if !client.HasScope(scope) || !slices.Contains(at.Scopes, scope) {
		return nil, &Error{Status: http.StatusForbidden, Code: "insufficient_scope", Description: "the token lacks the scope " + scope,
			Challenge: challengeHeader(scheme, "insufficient_scope", "scope "+scope+" is required") + `, scope="` + scope + `"`}
	}
	return client, nil
}

// challenge is a 401 with a WWW-Authenticate for scheme. Without a code, the
// request had no credentials and the challenge names none (RFC 6750
// section 3.1).
func (a *Authenticator) challenge(scheme, code, desc string) *Error {
	bodyCode := code
	if bodyCode == "" {
		bodyCode = "invalid_token"
	}
	return &Error{Status: http.StatusUnauthorized, Code: bodyCode, Description: desc, Challenge: challengeHeader(scheme, code, desc)}
}

func challengeHeader(scheme, code, desc string) string {
	var b strings.Builder
	if scheme == "bearer" {
		b.WriteString(`Bearer realm="mailgate"`)
	} else {
		b.WriteString(`DPoP algs="` + dpop.AlgorithmNames() + `"`)
	}
	if code != "" {
		b.WriteString(`, error="` + code + `", error_description="` + quoteSafe(desc) + `"`)
	}
	return b.String()
}

// quoteSafe keeps a description inside its quoted-string.
func quoteSafe(s string) string {
	return strings.NewReplacer(`"`, "'", `\`, "/", "\r", " ", "\n", " ").Replace(s)
}
