package ticket

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// maxLifetime bounds every ticket's ttl: expiries are 32-bit ticks, right
// while every stored one lies within 248 days of now (see compact.go).
// Markers have no such bound.
const maxLifetime = 31 * 24 * time.Hour

// errClosed answers a ticket operation after Close.
var errClosed = errors.New("ticket: the memory store is closed")

// Memory is the embedded Store: tickets in a fixed ring with an index of
// its own (see ticketTable); markers, which include revocations, in a
// bounded set of their own (see marks); counters in a fixed table that
// forgets rather than refuses (see counterTable). The tickets and the
// counters lie outside the Go heap, so they cost their size in RSS and no
// garbage-collector headroom. It is shared by all sites of one realm
// inside one Caddy process; a cluster needs a shared store (Redis).
type Memory struct {
	keys     compactKeys // the ticket table sees compact keys only
	marks    *marks
	counters *counterTable
	now      func() time.Time

	// mu guards the ticket table, so that Take, PutOwned, PutNew and
	// Attempt are atomic.
	mu      sync.Mutex
	tickets *ticketTable // nil once closed
	// lastUse is when the tickets were last used, in Unix nanoseconds: a
	// table unused for longer than maxLifetime holds nothing live and is
	// emptied rather than swept (see ticketTable.sweep).
	lastUse int64
}

// MinMemory is the smallest budget NewMemory accepts.
const MinMemory = 2 << 20

// NewMemory returns a store that uses at most about maxBytes: three
// sixteenths for markers and revocations, a sixteenth for counters, the
// rest for tickets. A pending link through the link flow takes about 140
// bytes of it (BenchmarkMillionPendingLinks): 256MiB holds 1.4 million,
// 176MiB a million.
// Markers take memory only as they are used, but their share is a bound
// that holds: a full set answers ErrFull and never drops an entry. The
// counters' share is one table of 24-byte places, and the tickets' a ring
// and an index (ticketTable), each mapped at once and resident as it is
// used (CounterCapacity). now is the clock that decides expiry; pass
// time.Now outside tests.
func NewMemory(maxBytes int64, now func() time.Time) (*Memory, error) {
	if maxBytes < MinMemory {
		return nil, fmt.Errorf("ticket: max_memory must be at least 2MiB, got %d bytes", maxBytes)
	}
	markBudget, countBudget := maxBytes*3/16, maxBytes/16
	counters, err := newCounterTable(countBudget)
	if err != nil {
		return nil, err
	}
	tickets, err := newTicketTable(maxBytes - markBudget - countBudget)
	if err != nil {
		counters.close()
		return nil, err
	}
	return &Memory{tickets: tickets, keys: newCompactKeys(), marks: newMarks(markBudget), counters: counters, now: now,
		lastUse: now().UnixNano()}, nil
}

// lock takes mu and returns the ticket table, swept at the current time
// (see ticketTable.sweep), and the time; errClosed after Close. The caller
// unlocks mu.
func (m *Memory) lock() (*ticketTable, time.Time, error) {
	m.mu.Lock()
	now := m.now()
	t := m.tickets
	if t == nil {
		return nil, now, errClosed
	}
	if n := now.UnixNano(); n-m.lastUse > int64(maxLifetime) {
		t.reset()
		m.lastUse = n
	} else {
		m.lastUse = max(m.lastUse, n)
	}
	t.sweep(now)
	return t, now, nil
}

// Put implements Store.
func (m *Memory) Put(_ context.Context, key string, value []byte, ttl time.Duration) error {
	ck := m.keys.of(key)
	t, now, err := m.lock()
	defer m.mu.Unlock()
	if err != nil {
		return err
	}
	return put(t, &ck, value, now, ttl)
}

// put stores value, packed (see pack), under the compact key ck until
// now+ttl.
func put(t *ticketTable, ck *[compactKeyBytes]byte, value []byte, now time.Time, ttl time.Duration) error {
	if ttl <= 0 || ttl > maxLifetime {
		return fmt.Errorf("ticket: ttl %s out of range (0, %s]", ttl, maxLifetime)
	}
	return t.set(ck, tick(now.Add(ttl)), pack(value))
}

// PutOwned implements Store. The owner's pointer holds the first 8 bytes
// of its ticket's compact key (see pointerTo), instead of the 69-byte key.
func (m *Memory) PutOwned(_ context.Context, owner, key string, value []byte, ttl time.Duration) error {
	co, ck := m.keys.of(owner), m.keys.of(key)
	t, now, err := m.lock()
	defer m.mu.Unlock()
	if err != nil {
		return err
	}
	if prev, _, ok := liveEntry(t, &co, now); ok {
		if ptr := unpack(prev[headerBytes:]); len(ptr) == 8 {
			t.removePrefix(prefixOf(ptr))
		}
	}
	if err := put(t, &ck, value, now, ttl); err != nil {
		return err
	}
	return put(t, &co, pointerTo(&ck), now, ttl)
}

// PutNew implements Store.
func (m *Memory) PutNew(_ context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	ck := m.keys.of(key)
	t, now, err := m.lock()
	defer m.mu.Unlock()
	if err != nil {
		return false, err
	}
	if _, _, ok := liveEntry(t, &ck, now); ok {
		return false, nil
	}
	return true, put(t, &ck, value, now, ttl)
}

// Get implements Store.
func (m *Memory) Get(_ context.Context, key string) ([]byte, error) {
	ck := m.keys.of(key)
	t, now, err := m.lock()
	defer m.mu.Unlock()
	if err != nil {
		return nil, err
	}
	e, _, ok := liveEntry(t, &ck, now)
	if !ok {
		return nil, ErrNotFound
	}
	return unpack(e[headerBytes:]), nil
}

// Take implements Store.
func (m *Memory) Take(_ context.Context, key string) ([]byte, error) {
	ck := m.keys.of(key)
	t, now, err := m.lock()
	defer m.mu.Unlock()
	if err != nil {
		return nil, err
	}
	e, slot, ok := liveEntry(t, &ck, now)
	if !ok {
		return nil, ErrNotFound
	}
	v := unpack(e[headerBytes:])
	t.remove(slot)
	return v, nil
}

// liveEntry returns the live entry under ck (from its expiry on, in the ring)
// and its slot.
func liveEntry(t *ticketTable, ck *[compactKeyBytes]byte, now time.Time) ([]byte, int, bool) {
	e, slot, ok := t.lookup(ck)
	if !ok || !liveAt(e, now) {
		return nil, 0, false
	}
	return e, slot, true
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

// Attempt implements Store. The count is the byte after the ticket's
// expiry, so it lives and goes with the ticket.
func (m *Memory) Attempt(_ context.Context, key string, limit int64) (int64, error) {
	if err := checkAttemptLimit(limit); err != nil {
		return 0, err
	}
	ck := m.keys.of(key)
	t, now, err := m.lock()
	defer m.mu.Unlock()
	if err != nil {
		return 0, err
	}
	e, _, ok := liveEntry(t, &ck, now)
	if !ok {
		return 0, ErrNotFound
	}
	n := int64(e[expiryBytes]) + 1
	if n > limit {
		return limit + 1, nil
	}
	e[expiryBytes] = byte(n) // n <= limit <= MaxAttempts fits a byte
	return n, nil
}

// Delete implements Store.
func (m *Memory) Delete(_ context.Context, key string) error {
	ck := m.keys.of(key)
	t, _, err := m.lock()
	defer m.mu.Unlock()
	if err != nil {
		return err
	}
	if _, slot, ok := t.lookup(&ck); ok {
		t.remove(slot)
	}
	return nil
}

// Close implements Store: it gives the tickets' and the counters' memory
// back. Tickets answer errClosed afterwards, counters count nothing.
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.tickets != nil {
		m.tickets.free()
		m.tickets = nil
		m.counters.close()
	}
	return nil
}

var _ Store = (*Memory)(nil)
