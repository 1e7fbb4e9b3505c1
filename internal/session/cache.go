package session

import (
	"sync"
	"time"
)

// DefaultCacheSize is the number of verified tokens kept when none is set.
const DefaultCacheSize = 65536

// verifiedCache remembers tokens whose signature and claims were checked,
// keyed by the token's SHA-256, until the token expires. It is bounded: when
// full, expired entries go first, then arbitrary ones, which only costs those
// tokens one more signature check.
type verifiedCache struct {
	mu  sync.RWMutex
	m   map[[32]byte]cached
	max int
}

type cached struct {
	s     *Session
	until time.Time
}

func newVerifiedCache(max int) *verifiedCache {
	if max <= 0 {
		max = DefaultCacheSize
	}
	return &verifiedCache{m: make(map[[32]byte]cached), max: max}
}

func (c *verifiedCache) get(key [32]byte, now time.Time) (*Session, bool) {
	c.mu.RLock()
	e, ok := c.m[key]
	c.mu.RUnlock()
	if !ok || !now.Before(e.until) {
		return nil, false
	}
	return e.s, true
}

func (c *verifiedCache) put(key [32]byte, s *Session, until, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		c.evict(now)
	}
	c.m[key] = cached{s: s, until: until}
}

// evict makes room for at least one entry; the caller holds mu.
func (c *verifiedCache) evict(now time.Time) {
	for k, e := range c.m {
		if !now.Before(e.until) {
			delete(c.m, k)
		}
	}
	// Map iteration order is random, so this drops arbitrary live entries.
	for k := range c.m {
		if len(c.m) < c.max {
			return
		}
		delete(c.m, k)
	}
}
