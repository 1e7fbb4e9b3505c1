package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/maypok86/otter/v2"

	"github.com/mailgate/caddy-mailgate/internal/directory"
	"github.com/mailgate/caddy-mailgate/internal/flow"
	"github.com/mailgate/caddy-mailgate/internal/session"
)

// identityTTL is how long a user read for a session's first sight serves
// the first sights of that user's other sessions. A storage read costs most
// of a first sight (about 12 µs from file_system storage against 2 µs for
// the session's MAC); in exchange, a user deleted or disabled is refused
// from at most this long after.
const identityTTL = 10 * time.Second

// identityCacheSize bounds the users remembered.
const identityCacheSize = 16384

// identities finds whom a session speaks for in the directory, when the
// guard first sees its token. A user who was deleted or disabled is refused,
// so their sessions end at the next first sight on any instance once
// identityTTL has passed. So is a user whose address the config's allow
// rules no longer admit: each config builds its own identities and session
// cache, so after a reload every session is seen afresh and held against
// the new rules. Only users found and allowed are remembered: a refusal is
// read again each time, and only a session with a valid MAC gets this far.
type identities struct {
	users *directory.Directory
	allow flow.Allowlist
	known *otter.Cache[string, knownIdentity]
	now   func() time.Time
}

type knownIdentity struct {
	id    session.Identity
	until time.Time
}

func newIdentities(users *directory.Directory, allow flow.Allowlist, now func() time.Time) identities {
	return identities{
		users: users,
		allow: allow,
		known: otter.Must(&otter.Options[string, knownIdentity]{
			MaximumSize: identityCacheSize,
			// Reclaims memory; whether an entry may serve is decided by
			// now, the module's clock, in Identity.
			ExpiryCalculator: otter.ExpiryWriting[string, knownIdentity](identityTTL),
		}),
		now: now,
	}
}

func (d identities) Identity(ctx context.Context, userID string) (session.Identity, error) {
	now := d.now()
	if k, ok := d.known.GetIfPresent(userID); ok && now.Before(k.until) {
		return k.id, nil
	}
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
	if !d.allow.Allows(u.Email) {
		return session.Identity{}, fmt.Errorf("%w: user %s matches no allow rule", session.ErrInvalid, userID)
	}
	id := session.Identity{UserID: u.ID, Email: u.Email, Name: u.Name}
	d.known.Set(userID, knownIdentity{id: id, until: now.Add(identityTTL)})
	return id, nil
}
