package flow

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/mailgate/caddy-mailgate/internal/directory"
	"github.com/mailgate/caddy-mailgate/internal/session"
)

// ProjectTokens signs and checks the user JWTs projects receive
// (session.AppTokens).
type ProjectTokens interface {
	ProjectToken(project string, u directory.User, payload *string, ttl time.Duration) (string, error)
	VerifyProjectToken(token, project string, ttl time.Duration) (session.UserTokenClaims, error)
}

// UserRevocations ends, and tells of, every session and user JWT of a user
// issued before a time (session.Manager): with_logout.
type UserRevocations interface {
	RevokeUser(ctx context.Context, userID string, before time.Time) error
	UserTokenRevoked(userID string, iat time.Time) (bool, error)
}

// UsersByID finds an account by its id.
type UsersByID interface {
	ByID(ctx context.Context, id string) (directory.User, error)
}

// Project is what a project's login needs of its configuration.
type Project struct {
	ID string
	// CustomPayload lets the app's payload ride in the user JWT.
	CustomPayload bool
	// TokenTTL is how long its user JWTs live.
	TokenTTL time.Duration
}

// ProjectLogin ends a project's code login in a user JWT, and checks the
// JWTs it signed for as long as they may stand.
type ProjectLogin struct {
	Tokens   ProjectTokens
	Sessions UserRevocations
	Users    UsersByID
	Now      func() time.Time
	// Observer is told of the logins done and of with_logout. Nil: nobody
	// is told.
	Observer Observer
}

// Token signs the user JWT for a completed login. With with_logout, every
// earlier session and user JWT of the user is refused from now on: up to
// this second, so that the token signed next, in the same second, stays
// valid. The app's payload is signed in only where the project takes one.
func (f *ProjectLogin) Token(ctx context.Context, p Project, login CodeLogin) (string, error) {
	if login.WithLogout {
		if err := f.Sessions.RevokeUser(ctx, login.User.ID, f.Now()); err != nil {
			return "", err
		}
		ObservedIn(ctx, f.Observer).SignedOut(login.User.ID, true)
	}
	var payload *string
	if p.CustomPayload && login.Payload != "" {
		payload = &login.Payload
	}
	token, err := f.Tokens.ProjectToken(p.ID, login.User, payload, p.TokenTTL)
	if err != nil {
		return "", err
	}
	o := ObservedIn(ctx, f.Observer)
	o.TokenIssued(TokenUserJWT)
	o.LoginDone(login.User.ID, MethodCode)
	return token, nil
}

// Check returns the user a project's user JWT stands for: its signature and
// claims hold, no with_logout has ended it since, and the user may still
// log in. A token that fails is session.ErrInvalid or session.ErrRevoked.
func (f *ProjectLogin) Check(ctx context.Context, token string, p Project) (directory.User, error) {
	claims, err := f.Tokens.VerifyProjectToken(token, p.ID, p.TokenTTL)
	if err != nil {
		return directory.User{}, err
	}
	revoked, err := f.Sessions.UserTokenRevoked(claims.UserID, claims.IssuedAt)
	if err != nil {
		return directory.User{}, err
	}
	if revoked {
		return directory.User{}, session.ErrRevoked
	}
	u, err := f.Users.ByID(ctx, claims.UserID)
	if errors.Is(err, directory.ErrNotFound) || (err == nil && u.Status == directory.StatusDisabled) {
		return directory.User{}, fmt.Errorf("%w: the user may no longer log in", session.ErrInvalid)
	}
	return u, err
}
