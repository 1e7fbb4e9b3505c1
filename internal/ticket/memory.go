package ticket

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/allegro/bigcache/v3"
)

// maxLifetime bounds every ticket's ttl: bigcache evicts by a single global
// life window, so it is set to the longest ttl any caller may ask for and each
// entry carries its own, shorter, expiry. Markers have no such bound.
const maxLifetime = 31 * 24 * time.Hour

// Memory is the embedded Store: tickets in bigcache; markers, which include
// revocations, and counters in bounded sets of their own (see marks). It is
// shared by all sites of one realm inside one Caddy process; a cluster needs
// a shared store (Redis).
type Memory struct {
	cache    *bigcache.BigCache
	marks    *marks
	counters *marks
	now      func() time.Time

	// mu makes Take and PutOwned atomic: bigcache has no get-and-delete,
	// so two concurrent callers could both see the same value.
	mu sync.Mutex
}

// MinMemory is the smallest budget NewMemory accepts: bigcache sizes in
// whole MiB, and markers need room beside it.
const MinMemory = 2 << 20

// NewMemory returns a store that uses at most about maxBytes: a quarter for
// markers and revocations, an eighth for counters, the rest, in whole MiB,
// for tickets (bigcache adds a small per-entry index on top). now is the
// clock that decides expiry; pass time.Now outside tests.
func NewMemory(maxBytes int64, now func() time.Time) (*Memory, error) {
	if maxBytes < MinMemory {
		return nil, fmt.Errorf("ticket: max_memory must be at least 2MiB, got %d bytes", maxBytes)
	}
	markBudget, countBudget := maxBytes/4, maxBytes/8
	const shards = 16
	cfg := bigcache.Config{
		Shards:      shards,
		LifeWindow:  maxLifetime,
		CleanWindow: time.Minute,
		// Only sizes the initial allocation; the default would preallocate
		// hundreds of MiB per cache.
		MaxEntriesInWindow: 1024,
		MaxEntrySize:       512,
		HardMaxCacheSize:   int((maxBytes - markBudget - countBudget) >> 20),
	}
	// bigcache's cleaner prints to stdout when its context ends, so it gets
	// one that never does: Close alone stops it.
	cache, err := bigcache.New(context.Background(), cfg)
	if err != nil {
		return nil, fmt.Errorf("ticket: creating memory store: %w", err)
	}
	return &Memory{cache: cache, marks: newMarks(markBudget), counters: newMarks(countBudget), now: now}, nil
}

// Put implements Store.
func (m *Memory) Put(_ context.Context, key string, value []byte, ttl time.Duration) error {
	if ttl <= 0 || ttl > maxLifetime {
		return fmt.Errorf("ticket: ttl %s out of range (0, %s]", ttl, maxLifetime)
	}
	entry := make([]byte, 8+len(value))
	binary.BigEndian.PutUint64(entry, uint64(m.now().Add(ttl).UnixNano()))
	copy(entry[8:], value)
	return m.cache.Set(key, entry)
}

// PutOwned implements Store.
func (m *Memory) PutOwned(ctx context.Context, owner, key string, value []byte, ttl time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	prev, err := m.get(owner)
	switch {
	case err == nil:
		if err := m.Delete(ctx, string(prev)); err != nil {
			return err
		}
	case !errors.Is(err, ErrNotFound):
		return err
	}
	if err := m.Put(ctx, key, value, ttl); err != nil {
		return err
	}
	return m.Put(ctx, owner, []byte(key), ttl)
}

// Get implements Store.
func (m *Memory) Get(_ context.Context, key string) ([]byte, error) {
	return m.get(key)
}

// Take implements Store.
func (m *Memory) Take(_ context.Context, key string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	entry, err := m.get(key)
	if err != nil {
		return nil, err
	}
	if err := m.cache.Delete(key); err != nil && !errors.Is(err, bigcache.ErrEntryNotFound) {
		return nil, err
	}
	return entry, nil
}

// Mark implements Store.
func (m *Memory) Mark(_ context.Context, key string, ttl time.Duration) (bool, error) {
	if ttl <= 0 {
		return false, fmt.Errorf("ticket: marker ttl %s must be positive", ttl)
	}
	now := m.now()
	return m.marks.add(key, 1, now.Add(ttl).UnixNano(), now.UnixNano())
}

// Marked implements Store.
func (m *Memory) Marked(_ context.Context, key string) (bool, error) {
	return m.Revoked(key)
}

// Revoke implements Revocations: in one process, a revocation is a marker.
func (m *Memory) Revoke(ctx context.Context, key string, ttl time.Duration) error {
	_, err := m.Mark(ctx, key, ttl)
	return err
}

// Revoked implements Revocations. It sits on the guard's path and costs no
// allocation.
func (m *Memory) Revoked(key string) (bool, error) {
	_, ok := m.marks.get(key, m.now().UnixNano())
	return ok, nil
}

// Incr implements Store.
func (m *Memory) Incr(_ context.Context, key string, window time.Duration) (Count, error) {
	if window <= 0 {
		return Count{}, fmt.Errorf("ticket: counter window %s must be positive", window)
	}
	now := m.now().UnixNano()
	v, err := m.counters.incr(key, now+int64(window), now)
	if err != nil {
		return Count{}, err
	}
	return Count{N: v.n, ResetIn: time.Duration(v.exp - now)}, nil
}

// Count implements Store.
func (m *Memory) Count(_ context.Context, key string) (Count, error) {
	now := m.now().UnixNano()
	v, ok := m.counters.get(key, now)
	if !ok {
		return Count{}, nil
	}
	return Count{N: v.n, ResetIn: time.Duration(v.exp - now)}, nil
}

// Reset implements Store.
func (m *Memory) Reset(_ context.Context, key string) error {
	m.counters.remove(key)
	return nil
}

// Delete implements Store.
func (m *Memory) Delete(_ context.Context, key string) error {
	if err := m.cache.Delete(key); err != nil && !errors.Is(err, bigcache.ErrEntryNotFound) {
		return err
	}
	return nil
}

// Close implements Store.
func (m *Memory) Close() error { return m.cache.Close() }

// get returns the live value under key. bigcache hands back expired entries
// until its cleaner runs, so expiry is checked here against the store's clock.
func (m *Memory) get(key string) ([]byte, error) {
	entry, err := m.cache.Get(key)
	if errors.Is(err, bigcache.ErrEntryNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	if len(entry) < 8 {
		return nil, fmt.Errorf("ticket: corrupt entry for %q", key)
	}
	if m.now().UnixNano() >= int64(binary.BigEndian.Uint64(entry)) {
		return nil, ErrNotFound
	}
	return entry[8:], nil
}

var _ Store = (*Memory)(nil)
