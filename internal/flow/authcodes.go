package flow

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/mailgate/caddy-mailgate/internal/ticket"
)

// ErrInvalidGrant covers an authorization code that is unknown, used,
// expired, or presented by another client, with another redirect URI or
// without the PKCE verifier it was issued for.
var ErrInvalidGrant = errors.New("invalid authorization code")

// CodeTTL is how long an authorization code lives.
const CodeTTL = 60 * time.Second

// AuthCodes issues and exchanges OAuth authorization codes (not the codes
// people type): single use, short-lived, bound to the client and redirect
// URI the login was asked for.
type AuthCodes struct {
	// Store keeps the pending codes.
	Store ticket.Store
}

type codePayload struct {
	ClientLogin
	UserID   string `json:"user_id"`
	AuthTime int64  `json:"auth_time"`
}

func (cs AuthCodes) codes() ticket.Kind[codePayload] {
	return ticket.Kind[codePayload]{Store: cs.Store, Name: "code"}
}

// Issue makes a code for userID's login through c.
func (cs AuthCodes) Issue(ctx context.Context, c ClientLogin, userID string, authTime time.Time) (string, error) {
	return cs.codes().Issue(ctx, "", codePayload{ClientLogin: c, UserID: userID, AuthTime: authTime.Unix()}, CodeTTL)
}

// Grant is an exchanged code.
type Grant struct {
	UserID   string
	AuthTime time.Time
	// Scope is what the login was asked for with (magic-link's scope), or
	// empty.
	Scope string
}

// Exchange consumes code and returns whose login it was. A code presented
// by another client is refused without being used up, so a client cannot
// burn codes it was never given; once the right client presents it, the
// code is used up even when the other checks fail, so a stolen code cannot
// be tried twice.
func (cs AuthCodes) Exchange(ctx context.Context, code, clientID, redirectURI, verifier string) (Grant, error) {
	p, err := cs.read(ctx, code, cs.codes().Peek)
	if err != nil {
		return Grant{}, err
	}
	if p.ClientID != clientID {
		return Grant{}, fmt.Errorf("%w: issued to another client", ErrInvalidGrant)
	}
	if p, err = cs.read(ctx, code, cs.codes().Redeem); err != nil {
		return Grant{}, err
	}
	if p.RedirectURI != redirectURI {
		return Grant{}, fmt.Errorf("%w: redirect_uri differs from the login's", ErrInvalidGrant)
	}
	switch {
	case p.CodeChallenge != "":
		sum := sha256.Sum256([]byte(verifier))
		got := base64.RawURLEncoding.EncodeToString(sum[:])
		if verifier == "" || subtle.ConstantTimeCompare([]byte(got), []byte(p.CodeChallenge)) != 1 {
			return Grant{}, fmt.Errorf("%w: code_verifier does not match the code_challenge", ErrInvalidGrant)
		}
	case verifier != "":
		return Grant{}, fmt.Errorf("%w: code_verifier sent for a login without code_challenge", ErrInvalidGrant)
	}
	return Grant{UserID: p.UserID, AuthTime: time.Unix(p.AuthTime, 0), Scope: p.Scope}, nil
}

// read fetches the code's payload with get (a peek or a redeem).
func (cs AuthCodes) read(ctx context.Context, code string, get func(context.Context, string) (codePayload, error)) (codePayload, error) {
	p, err := get(ctx, code)
	if errors.Is(err, ticket.ErrNotFound) {
		return p, fmt.Errorf("%w: unknown, used or expired", ErrInvalidGrant)
	}
	return p, err
}
