package flow

import (
	"context"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/mailgate/caddy-mailgate/internal/directory"
)

// ClientLogin is a login an app asked for through the API: the code goes to
// the app's redirect URI instead of the person landing on this site.
type ClientLogin struct {
	ClientID string `json:"client_id"`
	// AppName is what the mail calls the app.
	AppName     string `json:"app_name,omitempty"`
	RedirectURI string `json:"redirect_uri"`
	State       string `json:"state,omitempty"`
	// CodeChallenge is a PKCE S256 challenge the code exchange must meet.
	CodeChallenge string `json:"code_challenge,omitempty"`
	// ResponseType is what the redirect carries: "code" (the default),
	// "token", or "code token".
	ResponseType string `json:"response_type,omitempty"`
	// ResponseMode is how: "query" (the default), "fragment" or
	// "form_post".
	ResponseMode string `json:"response_mode,omitempty"`
	// Scope is recorded in tokens the login yields.
	Scope string `json:"scope,omitempty"`
	// ResetPassword makes the person choose a password before the login
	// continues to the app.
	ResetPassword bool `json:"reset_password,omitempty"`
	// AccountCreated says the app's request created the user just now, so
	// the mail can say so.
	AccountCreated bool `json:"account_created,omitempty"`
}

// UserTokens signs the access token an app asked for with responseType
// token: who logged in, for that app's audience.
type UserTokens interface {
	UserToken(clientID string, u directory.User, scope string) (string, error)
}

// ClientFinish makes what an app's login ends with at its redirect URI.
type ClientFinish struct {
	Codes  AuthCodes
	Tokens UserTokens
	// TokenTTL is the lifetime of the tokens Tokens signs, for expires_in.
	TokenTTL time.Duration
	Now      func() time.Time
	// Observer is told of the user JWTs signed for an app that asked for a
	// token. Nil: nobody.
	Observer Observer
}

// Params returns what the app asked for, a code, a token or both, and its
// state exactly as sent. How they travel (query, fragment, form_post) is
// the response writer's business.
func (f *ClientFinish) Params(ctx context.Context, login Login) (url.Values, error) {
	c := login.Client
	params := url.Values{}
	typ := c.ResponseType
	if typ == "" {
		typ = "code"
	}
	if strings.Contains(typ, "code") {
		code, err := f.Codes.Issue(ctx, *c, login.User.ID, f.Now())
		if err != nil {
			return nil, err
		}
		params.Set("code", code)
	}
	if strings.Contains(typ, "token") {
		tok, err := f.Tokens.UserToken(c.ClientID, login.User, c.Scope)
		if err != nil {
			return nil, err
		}
		ObservedIn(ctx, f.Observer).TokenIssued(TokenUserJWT)
		params.Set("access_token", tok)
		params.Set("token_type", "Bearer")
		params.Set("expires_in", strconv.Itoa(int(f.TokenTTL.Seconds())))
	}
	if c.State != "" {
		params.Set("state", c.State)
	}
	return params, nil
}
