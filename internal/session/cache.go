package session

import (
	"time"

	"github.com/maypok86/otter/v2"
)

// DefaultCacheSize is the number of verified tokens kept when none is set.
const DefaultCacheSize = 65536

// verifiedCache remembers tokens whose signature and claims were checked,
// keyed by the token's SHA-256, until the token expires. It is otter's
// S3-FIFO cache rather than a map of our own: eviction is O(1) and reads
// take no global lock, so a full cache costs a new session what an empty one
// does (a map evicting by scan made every new session pay for the whole
// cache once it was full). Evicting a live entry only costs that token one
// more signature check.
type verifiedCache struct {
	c *otter.Cache[[32]byte, cached]
}

// cached is one entry's value, kept inline in otter's node: until is Unix
// nanoseconds rather than a time.Time, whose location pointer would cost
// every entry 16 bytes and the garbage collector one more pointer to scan.
type cached struct {
	s     *Session
	until int64
}

func newVerifiedCache(max int) *verifiedCache {
	if max <= 0 {
		max = DefaultCacheSize
	}
	return &verifiedCache{c: otter.Must(&otter.Options[[32]byte, cached]{
		MaximumSize: max,
		// Reclaims the memory of expired tokens; whether one may still be
		// used is decided in get, by the manager's clock.
		ExpiryCalculator: otter.ExpiryCreatingFunc(func(e otter.Entry[[32]byte, cached]) time.Duration {
			return time.Until(time.Unix(0, e.Value.until))
		}),
	})}
}

// get returns the session cached under key while now is before its end.
func (c *verifiedCache) get(key [32]byte, now time.Time) (*Session, bool) {
	e, ok := c.c.GetIfPresent(key)
	if !ok || now.UnixNano() >= e.until {
		return nil, false
	}
	return e.s, true
}

// put caches s under key until until.
func (c *verifiedCache) put(key [32]byte, s *Session, until, now time.Time) {
	if now.Before(until) {
		c.c.Set(key, cached{s: s, until: until.UnixNano()})
	}
}
