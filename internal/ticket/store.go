// Package ticket keeps every one-time secret mailgate hands out (login links
// today; codes, invitations and authorization codes later) and the short-lived
// markers that go with them, such as revoked session ids.
//
// A Store never sees a secret: Tickets hashes it first, so a dump of the store
// (or of Redis, later) cannot be replayed.
package ticket

import (
	"context"
	"errors"
	"time"
)

// ErrNotFound is returned for a key that was never put, has expired, was
// already taken, or was deleted. Callers must not distinguish these cases to
// the user: an expired and a used link look the same.
var ErrNotFound = errors.New("ticket: not found")

// Store is the storage behind tickets. Implementations must make Take atomic:
// of two concurrent Takes of one key, exactly one gets the value.
type Store interface {
	// Put stores value under key until ttl has passed, replacing any value
	// already there.
	Put(ctx context.Context, key string, value []byte, ttl time.Duration) error
	// PutNew stores value under key only if no live value is there, and
	// reports whether it did. Replay checks (a DPoP jti seen twice) rely on
	// it being atomic.
	PutNew(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error)
	// Take returns the value under key and removes it in the same step.
	Take(ctx context.Context, key string) ([]byte, error)
	// Has reports whether an unexpired value is stored under key, without
	// consuming it.
	Has(ctx context.Context, key string) (bool, error)
	// Delete removes key; deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// Close releases the store's resources.
	Close() error
}
