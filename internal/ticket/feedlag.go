package ticket

import "time"

// FeedLag is how long ago the revocation feed last completed a read of
// the stream: what an operator graphs and the health check compares with
// StaleAfter. Revoked answers ErrStale once it exceeds StaleAfter.
func (r *Redis) FeedLag() time.Duration {
	return time.Duration(r.now().UnixNano() - r.syncedAt.Load())
}

// FeedLag of a memory store is always zero: it has no feed to fall behind.
func (*Memory) FeedLag() time.Duration { return 0 }
