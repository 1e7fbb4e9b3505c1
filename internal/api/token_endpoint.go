package api

import (
	"cmp"
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/mailgate/caddy-mailgate/internal/directory"
	"github.com/mailgate/caddy-mailgate/internal/dpop"
	"github.com/mailgate/caddy-mailgate/internal/flow"
	"github.com/mailgate/caddy-mailgate/internal/limit"
	"github.com/mailgate/caddy-mailgate/internal/session"
)

// TokenEndpoint is POST {prefix}/oauth/token (RFC 6749 section 3.2).
type TokenEndpoint struct {
	Clients *Clients
	Tokens  *session.AppTokens
	DPoP    *dpop.Verifier
	Codes   CodeExchanger
	Users   UserByID
	// URL is this endpoint's URL under the configured base URL: what a
	// proof's htu must name.
	URL string
	// Failures limits failed client authentications and authorization
	// codes per client IP; ClientIP is the IP as the server resolved it
	// (nil: the peer's address).
	Failures limit.Failures
	ClientIP func(r *http.Request) string
	// Observer is told of a failure the answer does not show. Nil: nobody
	// is told.
	Observer flow.Observer
}

// CodeExchanger consumes authorization codes.
type CodeExchanger interface {
	Exchange(ctx context.Context, code, clientID, redirectURI, verifier string) (flow.Grant, error)
}

// UserByID finds the user a code was issued for.
type UserByID interface {
	ByID(ctx context.Context, id string) (directory.User, error)
}

// TokenResponse is a successful answer (RFC 6749 section 5.1, and OpenID
// Connect Core section 3.1.3.3 for the code exchange's id_token).
type TokenResponse struct {
	AccessToken string `json:"access_token"`
	IDToken     string `json:"id_token,omitempty"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int    `json:"expires_in"`
	Scope       string `json:"scope,omitempty"`
}

const maxBody = 64 << 10

func (e *TokenEndpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// The attempt is counted before the secret is looked at, so an IP over
	// its failures is refused before its secret is hashed (guessing stays
	// slow and costs no argon2 time), and requests sent at once cannot all
	// be tried before any is counted. An attempt that does not end in a
	// refused secret is given back.
	attempt, err := e.Failures.TryIP(r.Context(), limit.ClientIP(r, e.ClientIP))
	var exceeded *limit.ExceededError
	if errors.As(err, &exceeded) {
		setRetryAfter(w, exceeded.RetryAfter)
		WriteError(w, ErrTooManyRequests.WithHint("too many failed client authentications or codes from this address"))
		return
	} else if err != nil {
		WriteError(w, ErrTemporarilyUnavailable.WithHint("the failure count cannot be read"))
		return
	}
	defer e.settle(r, attempt)
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	if err := r.ParseForm(); err != nil {
		WriteError(w, ErrInvalidRequest.WithHint("the body is not a form"))
		return
	}
	client, aerr := e.authenticate(r)
	if aerr != nil {
		if errors.Is(aerr, ErrInvalidClient) {
			attempt.Failed()
		}
		WriteError(w, aerr)
		return
	}
	var resp TokenResponse
	switch r.PostForm.Get("grant_type") {
	case "client_credentials":
		resp, aerr = e.clientCredentials(r, client)
	case "authorization_code":
		resp, aerr = e.authorizationCode(r, client)
	case "":
		aerr = ErrInvalidRequest.WithHint("grant_type is required")
	default:
		aerr = ErrUnsupportedGrantType.WithHint("supported: client_credentials, authorization_code")
	}
	if aerr != nil {
		if errors.Is(aerr, ErrInvalidGrant) {
			attempt.Failed()
		}
		WriteError(w, aerr)
		return
	}
	WriteJSON(w, http.StatusOK, resp)
}

// settle gives an attempt back unless the client's secret or code was
// refused; one that cannot be given back is logged.
func (e *TokenEndpoint) settle(r *http.Request, a *limit.Attempt) {
	if err := a.Done(context.WithoutCancel(r.Context())); err != nil {
		flow.Observed(e.Observer).Failed("token endpoint", err)
	}
}

// authenticate accepts client_secret_basic or client_secret_post, not both.
func (e *TokenEndpoint) authenticate(r *http.Request) (*Client, *Error) {
	id, secret, basic := r.BasicAuth()
	if basic {
		// RFC 6749 section 2.3.1: both are form-encoded before Basic.
		var err1, err2 error
		id, err1 = url.QueryUnescape(id)
		secret, err2 = url.QueryUnescape(secret)
		if err1 != nil || err2 != nil {
			basic = false
			id, secret = "", ""
		}
	}
	postID, postSecret := r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	if basic && postSecret != "" {
		return nil, ErrInvalidRequest.WithHint("use one client authentication method, not two")
	}
	if !basic {
		id, secret = postID, postSecret
	}
	if basic && postID != "" && postID != id {
		return nil, ErrInvalidRequest.WithHint("client_id differs from the authenticated client")
	}
	c, ok := e.Clients.Authenticate(id, secret)
	if !ok || id == "" || secret == "" {
		ae := ErrInvalidClient.WithHint("client authentication failed")
		if basic {
			// RFC 6749 section 5.2: a client that tried Basic is
			// challenged with the scheme it used.
			ae = ae.WithChallenge(`Basic realm="mailgate"`)
		}
		return nil, ae
	}
	return c, nil
}

func (e *TokenEndpoint) clientCredentials(r *http.Request, c *Client) (TokenResponse, *Error) {
	scopes := c.Scopes
	if s := r.PostForm.Get("scope"); s != "" {
		scopes = strings.Fields(s)
		for _, sc := range scopes {
			if !c.HasScope(sc) {
				return TokenResponse{}, ErrInvalidScope.WithHint("scope " + sc + " is not granted to this client")
			}
		}
	}
	jkt, aerr := e.proof(r, c.DPoP == DPoPRequired)
	if aerr != nil {
		return TokenResponse{}, aerr
	}
	tok, err := e.Tokens.Issue(c.ID, scopes, jkt)
	if err != nil {
		return TokenResponse{}, ErrServerError.WithHint("could not sign the token")
	}
	flow.Observed(e.Observer).TokenIssued(flow.TokenAccess)
	return TokenResponse{AccessToken: tok, TokenType: tokenType(jkt), ExpiresIn: int(e.Tokens.TTL.Seconds()), Scope: strings.Join(scopes, " ")}, nil
}

// authorizationCode exchanges the code a login ended with for an access
// token and an ID token (RFC 6749 section 4.1.3, PKCE per RFC 7636, OpenID
// Connect Core section 3.1.3.3): standard clients refuse an answer without
// an access token. A proof is optional, for every client: the token opens
// nothing at mailgate, and the code is bound to the client and its secret
// already; a client that sends one gets a token bound to its key.
func (e *TokenEndpoint) authorizationCode(r *http.Request, c *Client) (TokenResponse, *Error) {
	code, redirectURI := r.PostForm.Get("code"), r.PostForm.Get("redirect_uri")
	if code == "" || redirectURI == "" {
		return TokenResponse{}, ErrInvalidRequest.WithHint("code and redirect_uri are required")
	}
	// Before the code is used up, so that a bad proof does not cost the
	// client its login.
	jkt, aerr := e.proof(r, false)
	if aerr != nil {
		return TokenResponse{}, aerr
	}
	g, err := e.Codes.Exchange(r.Context(), code, c.ID, redirectURI, r.PostForm.Get("code_verifier"))
	if errors.Is(err, flow.ErrInvalidGrant) {
		return TokenResponse{}, ErrInvalidGrant.WithHint(err.Error())
	}
	if err != nil {
		return TokenResponse{}, ErrTemporarilyUnavailable.WithHint("the code store cannot be read")
	}
	u, err := e.Users.ByID(r.Context(), g.UserID)
	if err != nil || u.Status == directory.StatusDisabled {
		return TokenResponse{}, ErrInvalidGrant.WithHint("the account is not available")
	}
	// The login-email contract has no scope; its exchange is OpenID's.
	scope := cmp.Or(g.Scope, "openid")
	id, err := e.Tokens.IDToken(c.ID, u, g.AuthTime)
	if err != nil {
		return TokenResponse{}, ErrServerError.WithHint("could not sign the token")
	}
	at, err := e.Tokens.CodeAccessToken(c.ID, u.ID, scope, jkt)
	if err != nil {
		return TokenResponse{}, ErrServerError.WithHint("could not sign the token")
	}
	flow.Observed(e.Observer).TokenIssued(flow.TokenID)
	flow.Observed(e.Observer).TokenIssued(flow.TokenAccess)
	return TokenResponse{AccessToken: at, IDToken: id, TokenType: tokenType(jkt), ExpiresIn: int(e.Tokens.TTL.Seconds()), Scope: scope}, nil
}

// tokenType is the token_type of an access token bound to the key jkt, or
// of an unbound one (RFC 9449 section 5).
func tokenType(jkt string) string {
	if jkt == "" {
		return "Bearer"
	}
	return "DPoP"
}

// proof checks the request's DPoP proof, if any, and returns the key
// thumbprint to bind the token to; when required, there must be one.
func (e *TokenEndpoint) proof(r *http.Request, required bool) (string, *Error) {
	proofs := r.Header.Values("DPoP")
	if len(proofs) == 0 {
		if required {
			return "", ErrInvalidDPoPProof.WithHint("this client must send a DPoP proof")
		}
		return "", nil
	}
	p, err := e.DPoP.Verify(r.Context(), dpop.Request{Proofs: proofs, Method: r.Method, URL: e.URL})
	if errors.Is(err, dpop.ErrInvalidProof) {
		return "", ErrInvalidDPoPProof.WithHint(err.Error())
	}
	if err != nil {
		return "", ErrTemporarilyUnavailable.WithHint("the replay store cannot be read")
	}
	return p.JKT, nil
}
