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

// ErrFull is returned by Mark when the store has no room for a new marker.
// Markers are never dropped to make room, so the request that needed one
// must be refused (503) rather than carry on without it.
var ErrFull = errors.New("ticket: store full, no room for a new marker")

// Store is the storage behind tickets and markers.
//
// Tickets (Put, Get, Take, Delete) are pending one-time secrets. A store
// short of memory may drop the oldest of them: a pending login then needs a
// new link, which costs a person a retry and admits nobody.
//
// Markers (Mark, Marked) record that something happened: a session was
// revoked, a DPoP proof was used. Losing one would admit someone, so a store
// never drops a live marker; when it has no room it refuses new ones with
// ErrFull.
type Store interface {
	// Put stores value under key until ttl has passed, replacing any value
	// already there.
	Put(ctx context.Context, key string, value []byte, ttl time.Duration) error
	// PutOwned stores value under key and makes it owner's only live
	// ticket, in one atomic step: the ticket owner pointed at before is
	// deleted, so of two concurrent PutOwned for one owner exactly one
	// ticket stays live. The pointer lives as long as the ticket.
	PutOwned(ctx context.Context, owner, key string, value []byte, ttl time.Duration) error
	// Get returns the value under key without consuming it, for pages that
	// show what a secret is for before it is used.
	Get(ctx context.Context, key string) ([]byte, error)
	// Take returns the value under key and removes it in the same step: of
	// two concurrent Takes of one key, exactly one gets the value.
	Take(ctx context.Context, key string) ([]byte, error)
	// Delete removes key; deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// Mark records key until ttl has passed, unless a live marker is
	// already there, and reports whether it did, atomically: of two
	// concurrent Marks of one key, exactly one reports true. Replay checks
	// rely on that.
	Mark(ctx context.Context, key string, ttl time.Duration) (bool, error)
	// Marked reports whether a live marker is under key.
	Marked(ctx context.Context, key string) (bool, error)
	// Close releases the store's resources.
	Close() error
}
