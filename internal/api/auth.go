package api

import (
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/mailgate/caddy-mailgate/internal/dpop"
	"github.com/mailgate/caddy-mailgate/internal/flow"
	"github.com/mailgate/caddy-mailgate/internal/session"
)

// Authenticator checks the access token, and its DPoP proof, on API calls.
type Authenticator struct {
	Clients *Clients
	Tokens  *session.AppTokens
	DPoP    *dpop.Verifier
}

// Authenticate returns the calling client if the request carries a valid
// token with scope. url is the request's URL under the configured base URL,
// which a proof's htu must name.
func (a *Authenticator) Authenticate(r *http.Request, url, scope string) (*Client, *Error) {
	scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	scheme = strings.ToLower(scheme)
	if token == "" || (scheme != "dpop" && scheme != "bearer") {
		// No credentials: the challenge names no error (RFC 6750 section
		// 3.1), the body still says invalid_token.
		return nil, ErrInvalidToken.WithHint("an access token is required: Authorization: DPoP <token>").
			WithChallenge(challengeHeader("dpop", "", ""))
	}
	at, err := a.Tokens.Verify(token)
	if err != nil {
		return nil, challenge(scheme, ErrInvalidToken.WithHint("the access token is invalid or expired"))
	}
	client, ok := a.Clients.Get(at.ClientID)
	if !ok {
		return nil, challenge(scheme, ErrInvalidToken.WithHint("the token's client is no longer configured"))
	}
	switch scheme {
	case "dpop":
		if at.JKT == "" {
			return nil, challenge(scheme, ErrInvalidToken.WithHint("the token is not bound to a DPoP key"))
		}
		p, err := a.DPoP.Verify(r.Context(), dpop.Request{
			Proofs: r.Header.Values("DPoP"), Method: r.Method, URL: url, AccessToken: token,
		})
		if errors.Is(err, dpop.ErrInvalidProof) {
			return nil, challenge(scheme, ErrInvalidDPoPProofResource.WithHint(err.Error()))
		}
		if err != nil {
			return nil, ErrTemporarilyUnavailable.WithHint("the replay store cannot be read")
		}
		if p.JKT != at.JKT {
			return nil, challenge(scheme, ErrInvalidDPoPProofResource.WithHint("the proof is signed by another key than the token is bound to"))
		}
	case "bearer":
		// A bound token sent as Bearer would let whoever stole it skip the
		// proof (RFC 9449 section 7.2).
		if at.JKT != "" {
			return nil, challenge("dpop", ErrInvalidToken.WithHint("a DPoP-bound token must be sent with the DPoP scheme"))
		}
		if client.DPoP == DPoPRequired {
			return nil, challenge("dpop", ErrInvalidToken.WithHint("this client must use DPoP"))
		}
	}
	if !client.HasScope(scope) || !slices.Contains(at.Scopes, scope) {
		// The challenge's description differs from the body's and names
		// the scope to ask for (RFC 6750 section 3).
		return nil, ErrInsufficientScope.WithHint("the token lacks the scope " + scope).
			WithChallenge(challengeHeader(scheme, ErrInsufficientScope.Code, "scope "+scope+" is required") + `, scope="` + scope + `"`)
	}
	return client, nil
}

// actingFor returns r with the authenticated client named in its
// flow.Actor, beside the IP Caddy put there: the audit trail of what the
// call does then says which app asked for it.
func actingFor(r *http.Request, c *Client) *http.Request {
	a := flow.ActorOf(r.Context())
	a.Client = c.ID
	return r.WithContext(flow.WithActor(r.Context(), a))
}

// challenge returns e with a WWW-Authenticate for scheme that repeats its
// code and description, so that a client reading only the header learns
// what the body says (RFC 6750 section 3).
func challenge(scheme string, e *Error) *Error {
	return e.WithChallenge(challengeHeader(scheme, e.Code, e.Description))
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
