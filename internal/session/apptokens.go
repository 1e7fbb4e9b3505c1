package session

import (
	"fmt"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwt"

	"github.com/mailgate/caddy-mailgate/internal/directory"
	"github.com/mailgate/caddy-mailgate/internal/ticket"
)

// TypAccessToken is the JOSE typ of access tokens (RFC 9068).
const TypAccessToken = "at+jwt"

// AppTokens issues the tokens apps receive: access tokens for mailgate's
// API (and verifies them), access and ID tokens from a code exchange, and
// user tokens for responseType token. Its signer's audience is the API's
// URL, so a session token can never pass as an access token; the other
// tokens are for the app's audiences, so mailgate's API refuses them.
type AppTokens struct {
	Signer Signer
	TTL    time.Duration
}

// AccessToken is a verified access token.
type AccessToken struct {
	ClientID string
	Scopes   []string
	// JKT is the thumbprint of the DPoP key the token is bound to, or empty
	// for a Bearer token.
	JKT string
}

// Issue signs an access token for client with scopes, bound to jkt if set.
func (ts *AppTokens) Issue(client string, scopes []string, jkt string) (string, error) {
	return ts.accessToken(ts.Signer, client, client, strings.Join(scopes, " "), jkt)
}

// CodeAccessToken signs the access token a code exchange answers with
// (RFC 9068): userID as sub, clientID as client_id, bound to jkt if set.
// Its audience is clientResource, not the client id: that is the ID
// token's audience, and a library that checks an ID token without its typ
// (go-oidc does) would take an access token for the client as one
// (RFC 9068 section 5). Nor is it the API's, so the API refuses it.
func (ts *AppTokens) CodeAccessToken(clientID, userID, scope, jkt string) (string, error) {
	s := ts.Signer
	s.Audience = ts.clientResource(clientID)
	return ts.accessToken(s, userID, clientID, scope, jkt)
}

// clientResource is the audience of the access tokens a client gets from a
// code exchange: {issuer}/clients/{id}, an identifier, not a URL to fetch.
func (ts *AppTokens) clientResource(clientID string) string {
	return ts.Signer.Issuer + "/clients/" + clientID
}

// accessToken signs an access token of s's audience for sub, obtained by
// client.
func (ts *AppTokens) accessToken(s Signer, sub, client, scope, jkt string) (string, error) {
	t := jwt.New()
	_ = t.Set(jwt.SubjectKey, sub)
	_ = t.Set("client_id", client)
	_ = t.Set(jwt.JwtIDKey, ticket.NewSecret())
	_ = t.Set(jwt.ExpirationKey, s.Now().Add(ts.TTL).Truncate(time.Second))
	_ = t.Set("scope", scope)
	if jkt != "" {
		_ = t.Set("cnf", map[string]string{"jkt": jkt})
	}
	return s.Sign(TypAccessToken, t)
}

// IDTokenTTL is how long an ID token is valid: long enough for the app to
// check it once, right after the code exchange.
const IDTokenTTL = 5 * time.Minute

// IDToken signs an OpenID Connect style ID token that tells client who
// logged in; apps verify it against {prefix}/jwks.json.
func (ts *AppTokens) IDToken(clientID string, u directory.User, authTime time.Time) (string, error) {
	s := ts.Signer
	s.Audience = clientID
	t := jwt.New()
	_ = t.Set(jwt.SubjectKey, u.ID)
	_ = t.Set(jwt.ExpirationKey, s.Now().Add(IDTokenTTL).Truncate(time.Second))
	_ = t.Set("auth_time", authTime.Unix())
	_ = t.Set("email", u.Email)
	_ = t.Set("username", u.Username)
	if u.Name != "" {
		_ = t.Set("name", u.Name)
	}
	return s.Sign("JWT", t)
}

// UserToken signs an access token that tells the app who logged in, for
// responseType token: audience the app, so it is never accepted by
// mailgate's own API.
func (ts *AppTokens) UserToken(clientID string, u directory.User, scope string) (string, error) {
	s := ts.Signer
	s.Audience = clientID
	t := jwt.New()
	_ = t.Set(jwt.SubjectKey, u.ID)
	_ = t.Set("client_id", clientID)
	_ = t.Set(jwt.JwtIDKey, ticket.NewSecret())
	_ = t.Set(jwt.ExpirationKey, s.Now().Add(ts.TTL).Truncate(time.Second))
	_ = t.Set("scope", scope)
	_ = t.Set("email", u.Email)
	_ = t.Set("username", u.Username)
	return s.Sign(TypAccessToken, t)
}

// TypUserToken is the JOSE typ of the user JWTs projects receive from a
// code login: neither a session nor an access token, so neither check
// accepts one.
const TypUserToken = "mailgate-user+jwt"

// ProjectToken signs the user JWT a project receives when a code login
// completes: audience the project, the user's id and address, a jti, and
// the app's payload when payload is not nil. Apps verify it against
// {prefix}/jwks.json.
func (ts *AppTokens) ProjectToken(project string, u directory.User, payload *string, ttl time.Duration) (string, error) {
	s := ts.Signer
	s.Audience = project
	t := jwt.New()
	_ = t.Set(jwt.SubjectKey, u.ID)
	_ = t.Set(jwt.JwtIDKey, ticket.NewSecret())
	_ = t.Set(jwt.ExpirationKey, s.Now().Add(ttl).Truncate(time.Second))
	_ = t.Set("email", u.Email)
	if payload != nil {
		_ = t.Set("payload", *payload)
	}
	return s.Sign(TypUserToken, t)
}

// UserTokenClaims are what a verified user JWT says.
type UserTokenClaims struct {
	Project  string
	UserID   string
	IssuedAt time.Time
}

// VerifyProjectToken checks token as a user JWT of project, issued for at
// most ttl, as ProjectToken signs them.
func (ts *AppTokens) VerifyProjectToken(token, project string, ttl time.Duration) (UserTokenClaims, error) {
	s := ts.Signer
	s.Audience = project
	t, err := s.Verify(TypUserToken, token, ttl)
	if err != nil {
		return UserTokenClaims{}, err
	}
	if t.Subject() == "" {
		return UserTokenClaims{}, fmt.Errorf("%w: no sub", ErrInvalid)
	}
	return UserTokenClaims{Project: project, UserID: t.Subject(), IssuedAt: t.IssuedAt()}, nil
}

// Verify checks token as an access token of this API.
func (ts *AppTokens) Verify(token string) (AccessToken, error) {
	t, err := ts.Signer.Verify(TypAccessToken, token, ts.TTL)
	if err != nil {
		return AccessToken{}, err
	}
	var at AccessToken
	cid, _ := t.Get("client_id")
	at.ClientID, _ = cid.(string)
	if at.ClientID == "" || at.ClientID != t.Subject() {
		return AccessToken{}, fmt.Errorf("%w: client_id", ErrInvalid)
	}
	if scope, ok := t.Get("scope"); ok {
		s, _ := scope.(string)
		at.Scopes = strings.Fields(s)
	}
	if cnf, ok := t.Get("cnf"); ok {
		m, _ := cnf.(map[string]any)
		at.JKT, _ = m["jkt"].(string)
		if at.JKT == "" {
			return AccessToken{}, fmt.Errorf("%w: cnf without jkt", ErrInvalid)
		}
	}
	return at, nil
}
