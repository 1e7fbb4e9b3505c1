package flow

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/mailgate/caddy-mailgate/internal/directory"
	"github.com/mailgate/caddy-mailgate/internal/ticket"
)

// MaxLinkTTL bounds link_ttl, so that every link and code the flows mail
// has expired this long after it was issued: EndPending's cut-off need not
// outlive it.
const MaxLinkTTL = 24 * time.Hour

// Users finds or creates the account behind an address, and marks an
// invited one active once they prove the address.
type Users interface {
	EnsureByEmail(ctx context.Context, email string) (directory.User, error)
	SignUp(ctx context.Context, id string) (directory.User, error)
}

// EndPending makes every sign-in link and code mailed to email before at
// stop working, on every instance that shares the store. A user is
// disabled or deleted with it: a disabled user's link must not work again
// once they are enabled, and a deleted user's link must not create the
// account again (EnsureByEmail would), while a link mailed after the
// deletion signs the address up as a new user.
//
// The cut-off is a revocation keyed by the address's hash, so that the
// check at redemption reads this process's memory (no round trip) and the
// store holds no address.
func EndPending(ctx context.Context, rev ticket.Revocations, email string, at time.Time) error {
	if err := rev.RevokeBefore(ctx, pendingKey(email), at, MaxLinkTTL+time.Minute); err != nil {
		return fmt.Errorf("flow: ending pending links: %w", err)
	}
	return nil
}

func pendingKey(email string) string {
	sum := sha256.Sum256([]byte(email))
	return "pending-ended:" + hex.EncodeToString(sum[:])
}

// signingIn returns the account a link or code signs in, creating it at an
// address's first sign-in, and marks an invited account active: the secret
// proved the address. A secret issued before the address's pending logins
// were ended (EndPending), or for an account that is disabled, is
// ErrLinkInvalid, so that it reads as no longer working.
func signingIn(ctx context.Context, users Users, rev ticket.Revocations, email string, issued time.Time) (directory.User, error) {
	cutoff, ended, err := rev.RevokedBefore(pendingKey(email))
	if err != nil {
		return directory.User{}, fmt.Errorf("flow: reading ended links: %w", err)
	}
	if ended && issued.Before(cutoff) {
		return directory.User{}, ErrLinkInvalid
	}
	u, err := users.EnsureByEmail(ctx, email)
	if err != nil {
		return directory.User{}, err
	}
	if u.Status == directory.StatusInvited {
		// SignUp reads the record again under its lock: a user disabled
		// or deleted meanwhile is refused below, not signed up.
		u, err = users.SignUp(ctx, u.ID)
		if errors.Is(err, directory.ErrNotFound) {
			return directory.User{}, ErrLinkInvalid
		}
		if err != nil {
			return directory.User{}, err
		}
	}
	if u.Status == directory.StatusDisabled {
		return directory.User{}, ErrLinkInvalid
	}
	return u, nil
}
