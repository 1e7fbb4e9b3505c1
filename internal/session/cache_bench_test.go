package session

import (
	"encoding/binary"
	"testing"
	"time"
)

// BenchmarkCacheFull is a session seen for the first time when the cache is
// already full, the morning-rush case: it must cost what it costs in a cache
// with room, not a scan of the whole cache.
func BenchmarkCacheFull(b *testing.B) {
	now := time.Now()
	c := newVerifiedCache(DefaultCacheSize)
	var key [32]byte
	for i := range DefaultCacheSize {
		binary.BigEndian.PutUint64(key[:], uint64(i))
		c.put(key, &Session{}, now.Add(time.Hour), now)
	}
	s := &Session{}
	b.ResetTimer()
	for i := range b.N {
		binary.BigEndian.PutUint64(key[:], uint64(DefaultCacheSize+i))
		c.put(key, s, now.Add(time.Hour), now)
	}
}

// BenchmarkCacheHit is a known session: a lookup in the cache.
func BenchmarkCacheHit(b *testing.B) {
	now := time.Now()
	c := newVerifiedCache(DefaultCacheSize)
	key := [32]byte{1}
	c.put(key, &Session{}, now.Add(time.Hour), now)
	b.ResetTimer()
	for range b.N {
		if _, ok := c.get(key, now); !ok {
			b.Fatal("miss")
		}
	}
}
