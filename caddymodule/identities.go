package caddymodule

import (
	"context"
	"errors"
	"fmt"

	"github.com/mailgate/caddy-mailgate/internal/directory"
	"github.com/mailgate/caddy-mailgate/internal/session"
)

// identities finds whom a session speaks for in the directory, when the
// guard first sees its token. A user who was deleted or disabled is refused,
// so their sessions end at the next first sight on any instance.
type identities struct{ users *directory.Directory }

func (d identities) Identity(ctx context.Context, userID string) (session.Identity, error) {
	u, err := d.users.ByID(ctx, userID)
	if errors.Is(err, directory.ErrNotFound) {
		return session.Identity{}, fmt.Errorf("%w: no user %s", session.ErrInvalid, userID)
	}
	if err != nil {
		return session.Identity{}, err
	}
	if u.Status == directory.StatusDisabled {
		return session.Identity{}, fmt.Errorf("%w: user %s is disabled", session.ErrInvalid, userID)
	}
	return session.Identity{UserID: u.ID, Email: u.Email, Name: u.Name}, nil
}
