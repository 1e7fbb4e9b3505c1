// Package ticket keeps mailgate's short-lived state: every one-time secret it
// hands out (login links, authorization codes; codes and invitations next),
// the markers that go with them (used DPoP proofs), the counters behind rate
// limits and attempt limits, and the revoked sessions the guard checks. Two
// backends implement the same Store: Memory, embedded in one Caddy process,
// and Redis, shared by a cluster.
//
// A Store never sees a secret: Kind hashes it first, so a dump of the store
// (or of Redis) cannot be replayed.
package ticket

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"
)

// ErrNotFound is returned for a key that was never put, has expired, was
// already taken, or was deleted. Callers must not distinguish these cases to
// the user: an expired and a used link look the same.
var ErrNotFound = errors.New("ticket: not found")

// ErrFull is returned by Mark, Revoke and RevokeBefore when the store has no
// room for a new marker or revocation. These are never dropped to make room,
// so the request that needed one must be refused (503) rather than carry on
// without it. Counters never answer it: see Incr.
var ErrFull = errors.New("ticket: store full, no room for a new marker")

// Count is the state of a windowed counter.
type Count struct {
	// N is the number of hits in the current window; 0 when none.
	N int64
	// ResetIn is how long until the window ends and N is back to 0.
	ResetIn time.Duration
}

// Store is the storage behind tickets, markers, counters and revocations.
//
// Tickets (Put, Get, Take, Delete) are pending one-time secrets. A store
// short of memory may drop the oldest of them: a pending login then needs a
// new link, which costs a person a retry and admits nobody.
//
// Markers (Mark, Marked) record that something happened: a session was
// revoked, a DPoP proof was used. Losing one would admit someone, so a store
// never drops a live marker; when it has no room it refuses new ones with
// ErrFull.
//
// Counters (Incr, Count, Reset, Refund) are rate limits' counts per subject.
// A store keeps them in a bounded table that forgets the lowest counts under
// pressure and never refuses a new one, so that one visitor's flood of
// distinct subjects costs at most some forgotten counts, never everyone's
// sign-in. The attempts at one secret are not such a count: they are kept
// with the secret (Attempt).
type Store interface {
	// Put stores value under key until ttl has passed, replacing any value
	// already there.
	Put(ctx context.Context, key string, value []byte, ttl time.Duration) error
	// PutOwned stores value under key and makes it owner's only live
	// ticket, in one atomic step: the ticket owner pointed at before is
	// deleted, so of two concurrent PutOwned for one owner exactly one
	// ticket stays live. The pointer lives as long as the ticket.
	PutOwned(ctx context.Context, owner, key string, value []byte, ttl time.Duration) error
	// PutNew stores value under key until ttl has passed unless a live
	// value is already there, and reports whether it did, in one atomic
	// step: of concurrent PutNews of one key exactly one reports true. It
	// is how "at most one at a time" is kept where a second one must be
	// refused rather than replace the first (one email link per user).
	PutNew(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error)
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
	// Incr adds one to the counter under key and returns its new state, in
	// one atomic step: of n concurrent Incrs, each sees a different N. The
	// first hit opens a fixed window of length window; later hits do not
	// move its end. A store short of room forgets another key's counter,
	// the lowest count it may choose from, rather than refuse.
	Incr(ctx context.Context, key string, window time.Duration) (Count, error)
	// Count returns the counter under key without adding to it: the zero
	// Count when there is none or its window has ended.
	Count(ctx context.Context, key string) (Count, error)
	// Reset ends the counter under key, as a success does for a count of
	// failures; resetting a missing counter is not an error.
	Reset(ctx context.Context, key string) error
	// Refund takes one hit back from the live counter under key, never
	// below zero and without moving its window, for an attempt counted
	// before it was known to be a failure that turned out not to be one.
	// Refunding a missing counter is not an error.
	Refund(ctx context.Context, key string) error
	// Attempt counts one attempt at the live ticket under key and returns
	// the attempt's number, in one atomic step: of concurrent Attempts,
	// each of the first limit gets its own number, 1 to limit, and every
	// later one limit+1, which changes nothing. A caller compares what the
	// ticket guards only for a number within limit, so attempts sent at
	// once get no more compares than attempts sent one by one; the ticket
	// itself stays until it is taken or deleted, so that an attempt over
	// the limit cannot spoil one within it that is still comparing. The
	// count lives and expires with the ticket. ErrNotFound when there is no
	// live ticket. limit is 1 to MaxAttempts.
	Attempt(ctx context.Context, key string, limit int64) (int64, error)
	Revocations
	// Close releases the store's resources.
	Close() error
}

// Revocations is the set of revoked keys that the guard checks on every
// request, of two kinds: a key revoked outright (a logged-out session), and
// a key revoked before a cut-off (everything of a user issued before a
// logout-all). Revoked and RevokedBefore are answered from the memory of
// this process, without a network round trip; a clustered store feeds that
// memory from every instance's Revoke and RevokeBefore within a bounded
// delay. A key is used with one kind only: callers keep the kinds apart by
// their keys' prefixes (revoked-session:, revoked-user:).
type Revocations interface {
	// Revoke adds key to the set until ttl has passed, on every instance
	// that shares the store. It returns once the revocation is stored where
	// all instances will read it.
	Revoke(ctx context.Context, key string, ttl time.Duration) error
	// Revoked reports whether key is revoked. It costs no allocation. An
	// error means this process cannot vouch that its set is current (a
	// clustered store that lost its feed for longer than its bound): the
	// caller must refuse, not admit.
	Revoked(key string) (bool, error)
	// RevokeBefore records that what key stands for is revoked if it was
	// issued before the cut-off before, until ttl has passed, on every
	// instance that shares the store, and returns as Revoke does. A key
	// keeps the latest cut-off and the latest expiry it was given, whatever
	// order the calls (or, in a cluster, their entries) arrive in: a
	// logout-all is never undone by an older one, nor cut short by a
	// shorter ttl. before must lie after the Unix epoch and before 2262
	// (Unix nanoseconds); ttl is at most 31 days.
	RevokeBefore(ctx context.Context, key string, before time.Time, ttl time.Duration) error
	// RevokedBefore returns the cut-off under key, and false when there is
	// none. It costs no allocation; its error means what Revoked's does.
	RevokedBefore(key string) (time.Time, bool, error)
}

// MaxAttempts bounds Attempt's limit: the memory store counts in a byte.
const MaxAttempts = 255

// checkAttemptLimit keeps Attempt's limit where both backends count it.
func checkAttemptLimit(limit int64) error {
	if limit < 1 || limit > MaxAttempts {
		return fmt.Errorf("ticket: attempt limit %d out of range [1, %d]", limit, MaxAttempts)
	}
	return nil
}

// checkRevokeBefore keeps RevokeBefore's arguments where both backends can
// hold them: a cut-off in positive Unix nanoseconds (the Redis store takes 0
// for a Revoke, which has none), and the ttl the stream's trimming covers.
func checkRevokeBefore(before time.Time, ttl time.Duration) error {
	if !before.After(time.Unix(0, 0)) || before.After(time.Unix(0, math.MaxInt64)) {
		return fmt.Errorf("ticket: revocation cut-off %s out of range", before)
	}
	if ttl <= 0 || ttl > maxLifetime {
		return fmt.Errorf("ticket: revocation ttl %s out of range (0, %s]", ttl, maxLifetime)
	}
	return nil
}
