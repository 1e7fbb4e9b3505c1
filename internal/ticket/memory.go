package ticket

import (
	"context"
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
// revocations, in a bounded set of their own (see marks); counters in a
// fixed table that forgets rather than refuses (see counterTable). It is
// shared by all sites of one realm inside one Caddy process; a cluster needs
// a shared store (Redis).
type Memory struct {
	cache    *bigcache.BigCache
	keys     compactKeys // bigcache sees compact keys only
	marks    *marks
	counters *counterTable
	now      func() time.Time

	// mu makes Take, PutOwned, PutNew and Attempt atomic: bigcache has no
	// get-and-delete, set-if-absent or get-and-set, so two concurrent
	// callers could both see the same value.
	mu sync.Mutex
}

// MinMemory is the smallest budget NewMemory accepts: bigcache sizes in
// whole MiB, and markers need room beside it.
const MinMemory = 2 << 20

// How the tickets' bigcache is laid out. Each shard is a queue of bytes,
// written in order and evicting its oldest entries when full, and an index,
// a Go map from an entry's 8-byte hash to its place in the queue.
const (
	// ticketShards is bigcache's shard count. Take, PutOwned, PutNew and
	// Attempt hold the store's own lock across shards anyway, so more
	// shards would buy little concurrency, while each shard is a queue
	// that evicts on its own: 16 keep each at 64 KiB or more on the
	// smallest budget, room for hundreds of tickets.
	ticketShards = 16
	// ticketIndexHint is the number of entries each shard's index is made
	// for at first: bigcache makes each map for MaxEntriesInWindow/Shards
	// entries, and a map made for the millions a full store holds would
	// take tens of MiB of RSS at once, empty. Go's maps grow a table of
	// 1,024 places at a time without copying the rest, so a small start
	// costs nothing later.
	ticketIndexHint = 1024
)

// NewMemory returns a store that uses at most about maxBytes, plus the
// tickets' index: three sixteenths for markers and revocations, a
// sixteenth for counters, the rest, in whole MiB, for the tickets' queues.
// A pending link through the link flow is two entries, about 160 bytes of
// queue and two places in bigcache's index, 20 to 40 bytes each as Go's
// maps happen to be filled (BenchmarkMillionPendingLinks: 228 MiB resident
// for a million): 256MiB holds 1.2 million. Markers take memory only as
// they are used, but their share is a bound that holds: a full set
// answers ErrFull and never drops an entry. The counters' share is one
// table of 24-byte places, allocated at once (CounterCapacity). All of it
// is Go heap, the queues counted whole from the start, so the collector
// paces itself as if the store were full: GOMEMLIMIT bounds the garbage
// that lets pile up (docs/performance.md). now is the clock that decides
// expiry; pass time.Now outside tests.
func NewMemory(maxBytes int64, now func() time.Time) (*Memory, error) {
	if maxBytes < MinMemory {
		return nil, fmt.Errorf("ticket: max_memory must be at least 2MiB, got %d bytes", maxBytes)
	}
	markBudget, countBudget := maxBytes*3/16, maxBytes/16
	ticketMiB := int((maxBytes - markBudget - countBudget) >> 20)
	shardBytes := ticketMiB << 20 / ticketShards
	cfg := bigcache.Config{
		Shards:     ticketShards,
		LifeWindow: maxLifetime,
		// No cleaner goroutine: expiry is checked on every read against
		// the store's clock (see liveAt), a full shard drops its oldest
		// entries, and every write drops its shard's oldest entry once it
		// is older than LifeWindow.
		CleanWindow: 0,
		// Each shard's queue is made at its hard maximum at once
		// (ticketIndexHint × MaxEntrySize ≥ shardBytes): a queue that grew
		// would double and copy itself, holding both copies for a moment,
		// and the pages of a queue made at once become resident only as
		// entries are written to them.
		MaxEntriesInWindow: ticketIndexHint * ticketShards,
		MaxEntrySize:       (shardBytes + ticketIndexHint - 1) / ticketIndexHint,
		HardMaxCacheSize:   ticketMiB,
		Hasher:             prefixHasher{},
	}
	// With no cleaner, bigcache never uses the context.
	cache, err := bigcache.New(context.Background(), cfg)
	if err != nil {
		return nil, fmt.Errorf("ticket: creating memory store: %w", err)
	}
	return &Memory{cache: cache, keys: newCompactKeys(), marks: newMarks(markBudget), counters: newCounterTable(countBudget), now: now}, nil
}

// Put implements Store.
func (m *Memory) Put(_ context.Context, key string, value []byte, ttl time.Duration) error {
	return m.put(m.keys.of(key), value, ttl)
}

// put stores value, packed (see pack), under the compact key ck.
func (m *Memory) put(ck string, value []byte, ttl time.Duration) error {
	if ttl <= 0 || ttl > maxLifetime {
		return fmt.Errorf("ticket: ttl %s out of range (0, %s]", ttl, maxLifetime)
	}
	packed := pack(value)
	entry := make([]byte, headerBytes+len(packed))
	putExpiry(entry, m.now().Add(ttl))
	copy(entry[headerBytes:], packed)
	return m.cache.Set(ck, entry)
}

// PutOwned implements Store. The owner's pointer holds the bigcache hash of
// its ticket (see pointerTo), 8 bytes instead of the 69-byte key.
func (m *Memory) PutOwned(_ context.Context, owner, key string, value []byte, ttl time.Duration) error {
	co, ck := m.keys.of(owner), m.keys.of(key)
	m.mu.Lock()
	defer m.mu.Unlock()
	prev, err := m.get(co, owner)
	switch {
	case err == nil:
		if err := m.delete(string(prev)); err != nil {
			return err
		}
	case !errors.Is(err, ErrNotFound):
		return err
	}
	if err := m.put(ck, value, ttl); err != nil {
		return err
	}
	return m.put(co, pointerTo(ck), ttl)
}

// PutNew implements Store: under mu, as PutOwned, since bigcache has no
// set-if-absent.
func (m *Memory) PutNew(_ context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	ck := m.keys.of(key)
	m.mu.Lock()
	defer m.mu.Unlock()
	switch _, err := m.get(ck, key); {
	case err == nil:
		return false, nil
	case !errors.Is(err, ErrNotFound):
		return false, err
	}
	return true, m.put(ck, value, ttl)
}

// Get implements Store.
func (m *Memory) Get(_ context.Context, key string) ([]byte, error) {
	return m.get(m.keys.of(key), key)
}

// Take implements Store: under mu, since bigcache has no get-and-delete;
// a Take that finds the ticket deletes it before the next one looks.
func (m *Memory) Take(_ context.Context, key string) ([]byte, error) {
	ck := m.keys.of(key)
	m.mu.Lock()
	defer m.mu.Unlock()
	value, err := m.get(ck, key)
	if err != nil {
		return nil, err
	}
	if err := m.delete(ck); err != nil {
		return nil, err
	}
	return value, nil
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

// RevokeBefore implements Revocations: the cut-off is the entry's number,
// merged by max, in the same set as the markers.
func (m *Memory) RevokeBefore(_ context.Context, key string, before time.Time, ttl time.Duration) error {
	if err := checkRevokeBefore(before, ttl); err != nil {
		return err
	}
	now := m.now()
	return m.marks.raise(key, before.UnixNano(), now.Add(ttl).UnixNano(), now.UnixNano())
}

// RevokedBefore implements Revocations. It sits on the guard's path and
// costs no allocation.
func (m *Memory) RevokedBefore(key string) (time.Time, bool, error) {
	e, ok := m.marks.get(key, m.now().UnixNano())
	if !ok {
		return time.Time{}, false, nil
	}
	return time.Unix(0, e.n), true, nil
}

// Incr implements Store: the counter table never refuses; under pressure
// it forgets the lowest counts (see counterTable).
func (m *Memory) Incr(_ context.Context, key string, window time.Duration) (Count, error) {
	if window <= 0 {
		return Count{}, fmt.Errorf("ticket: counter window %s must be positive", window)
	}
	now := m.now().UnixNano()
	return m.count(m.counters.incr(key, int64(window), now), now), nil
}

// Count implements Store.
func (m *Memory) Count(_ context.Context, key string) (Count, error) {
	now := m.now().UnixNano()
	return m.count(m.counters.get(key, now), now), nil
}

// count is a counter place as a Count at now.
func (m *Memory) count(p counterPlace, now int64) Count {
	if p.n == 0 {
		return Count{}
	}
	return Count{N: p.n, ResetIn: time.Duration(p.exp - now)}
}

// Reset implements Store.
func (m *Memory) Reset(_ context.Context, key string) error {
	m.counters.reset(key, m.now().UnixNano())
	return nil
}

// Refund implements Store.
func (m *Memory) Refund(_ context.Context, key string) error {
	m.counters.refund(key, m.now().UnixNano())
	return nil
}

// CounterCapacity is how many counters the store holds before it starts
// forgetting the lowest counts.
func (m *Memory) CounterCapacity() int { return m.counters.capacity() }

// Attempt implements Store. The count is the byte after the ticket's expiry,
// so it lives and goes with the ticket, whatever bigcache evicts.
func (m *Memory) Attempt(_ context.Context, key string, limit int64) (int64, error) {
	if err := checkAttemptLimit(limit); err != nil {
		return 0, err
	}
	ck := m.keys.of(key)
	m.mu.Lock()
	defer m.mu.Unlock()
	entry, err := m.entry(ck, key)
	if err != nil {
		return 0, err
	}
	n := int64(entry[expiryBytes]) + 1
	if n > limit {
		return limit + 1, nil
	}
	entry[expiryBytes] = byte(n) // n <= limit <= MaxAttempts fits a byte
	return n, m.cache.Set(ck, entry)
}

// Delete implements Store.
func (m *Memory) Delete(_ context.Context, key string) error {
	return m.delete(m.keys.of(key))
}

// delete removes the entry under the compact key ck, if any.
func (m *Memory) delete(ck string) error {
	if err := m.cache.Delete(ck); err != nil && !errors.Is(err, bigcache.ErrEntryNotFound) {
		return err
	}
	return nil
}

// Close implements Store.
func (m *Memory) Close() error { return m.cache.Close() }

// get returns the live value under the compact key ck of key, which only
// names the entry in errors, unpacked.
func (m *Memory) get(ck, key string) ([]byte, error) {
	entry, err := m.entry(ck, key)
	if err != nil {
		return nil, err
	}
	return unpack(entry[headerBytes:]), nil
}

// entry is the whole live entry under ck, its header included and its
// value packed: bigcache hands out a copy, which the caller may change and
// set again. bigcache hands back expired entries too (it knows only its
// life window), so expiry is checked here against the store's clock.
func (m *Memory) entry(ck, key string) ([]byte, error) {
	entry, err := m.cache.Get(ck)
	if errors.Is(err, bigcache.ErrEntryNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	if len(entry) < headerBytes {
		return nil, fmt.Errorf("ticket: corrupt entry for %q", key)
	}
	if !liveAt(entry, m.now()) {
		return nil, ErrNotFound
	}
	return entry, nil
}

var _ Store = (*Memory)(nil)
