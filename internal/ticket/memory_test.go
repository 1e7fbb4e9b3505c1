package ticket

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock is a settable clock for expiry tests.
type fakeClock struct{ t atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.t.Store(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).UnixNano())
	return c
}
func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.t.Load()) }
func (c *fakeClock) Advance(d time.Duration) { c.t.Add(int64(d)) }

func newStore(t *testing.T, now func() time.Time) *Memory {
	t.Helper()
	m, err := NewMemory(MinMemory, now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func TestMemoryRejectsBadTTLAndSize(t *testing.T) {
	m := newStore(t, time.Now)
	if err := m.Put(context.Background(), "k", nil, 0); err == nil {
		t.Fatal("Put accepted a zero ttl")
	}
	if _, err := NewMemory(MinMemory-1, time.Now); err == nil {
		t.Fatal("NewMemory accepted less than MinMemory")
	}
	if _, err := m.Mark(context.Background(), "k", 0); err == nil {
		t.Fatal("Mark accepted a zero ttl")
	}
	if _, err := m.Incr(context.Background(), "k", 0); err == nil {
		t.Fatal("Incr accepted a zero window")
	}
}

// TestMemoryResetCounterThenCountAgain: a reset counter's old expiry must
// not end the new window that replaced it.
func TestMemoryResetCounterThenCountAgain(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	m := newStore(t, clock.Now)
	_, _ = m.Incr(ctx, "limit:a", time.Minute)
	_ = m.Reset(ctx, "limit:a")
	clock.Advance(30 * time.Second)
	if c, _ := m.Incr(ctx, "limit:a", time.Minute); c.N != 1 {
		t.Fatalf("first Incr after Reset = %+v", c)
	}
	// The first window's end passes; a new Incr reclaims what it can.
	clock.Advance(45 * time.Second)
	_, _ = m.Incr(ctx, "limit:other", time.Minute)
	if c, _ := m.Count(ctx, "limit:a"); c.N != 1 || c.ResetIn != 15*time.Second {
		t.Fatalf("the new window after the old one's end: %+v", c)
	}
}

// TestMemoryCountersHoldTheirBudget: a flood of a hundred thousand
// distinct subjects into the smallest store neither refuses a new subject
// nor grows the counters past their share of max_memory.
func TestMemoryCountersHoldTheirBudget(t *testing.T) {
	ctx := context.Background()
	m := newStore(t, newFakeClock().Now)
	if got, want := int64(m.CounterCapacity())*counterPlaceBytes, int64(MinMemory/16); got > want || got < want*9/10 {
		t.Fatalf("the counter table takes %d bytes of a %d-byte share", got, want)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	flood(t, m, 100_000, time.Hour)
	runtime.GC()
	runtime.ReadMemStats(&after)
	if grown := int64(after.HeapAlloc) - int64(before.HeapAlloc); grown > 64<<10 {
		t.Fatalf("a flood of 100,000 subjects grew the heap by %d bytes; the table is allocated once", grown)
	}
	if c, err := m.Incr(ctx, "limit:requests_per_ip:fresh", time.Hour); err != nil || c.N != 1 {
		t.Fatalf("a fresh subject after the flood: %+v, %v", c, err)
	}
}

// TestMemoryCutOffsRefuseWhenFull: revocation cut-offs are never dropped to
// make room (a dropped one would let a logged-out-everywhere session back
// in); a full set refuses a new one, and a later expiry for a live one, and
// leaves what it holds as it was, while a later cut-off alone needs no room.
func TestMemoryCutOffsRefuseWhenFull(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	m := newStore(t, clock.Now)
	before, later := clock.Now(), clock.Now().Add(time.Minute)
	key := func(i int) string { return fmt.Sprintf("revoked-user:%043d", i) }
	for n := 0; ; n++ {
		err := m.RevokeBefore(ctx, key(n), before, time.Hour)
		if errors.Is(err, ErrFull) {
			break
		}
		if err != nil || n > MinMemory {
			t.Fatalf("after %d cut-offs: %v", n, err)
		}
	}
	if err := m.RevokeBefore(ctx, key(0), later, 2*time.Hour); !errors.Is(err, ErrFull) {
		t.Fatalf("a later expiry in a full set: %v, want ErrFull", err)
	}
	if at, ok, _ := m.RevokedBefore(key(0)); !ok || !at.Equal(before) {
		t.Fatalf("after a refused RevokeBefore: %v, %v; want the entry as it was", at, ok)
	}
	if err := m.RevokeBefore(ctx, key(0), later, time.Minute); err != nil {
		t.Fatalf("a later cut-off with an earlier expiry in a full set: %v", err)
	}
	if at, _, _ := m.RevokedBefore(key(0)); !at.Equal(later) {
		t.Fatalf("cut-off %v, want %v", at, later)
	}
	clock.Advance(time.Hour)
	if err := m.RevokeBefore(ctx, key(0), later, time.Hour); err != nil {
		t.Fatalf("after every entry expired: %v; want room again", err)
	}
}

// TestMarksRaiseKeepsAnEntryUntilItsLatestExpiry: a raised expiry pays for a
// heap entry of its own, so when the earlier one comes up the entry stays
// and one cost is still counted, and when the later one does, the entry and
// its cost are gone.
func TestMarksRaiseKeepsAnEntryUntilItsLatestExpiry(t *testing.T) {
	s := newMarks(1 << 20)
	const key = "revoked-user:a"
	cost := int64(len(key)) + markOverhead
	if err := s.raise(key, 5, 100, 0); err != nil {
		t.Fatal(err)
	}
	if err := s.raise(key, 3, 200, 10); err != nil {
		t.Fatal(err)
	}
	if s.used != 2*cost {
		t.Fatalf("used %d after a raised expiry, want %d", s.used, 2*cost)
	}
	s.reclaim(100)
	if e, ok := s.get(key, 100); !ok || e.n != 5 || e.exp != 200 || s.used != cost {
		t.Fatalf("past the first expiry: %+v, %v, used %d; want n 5 until 200, used %d", e, ok, s.used, cost)
	}
	s.reclaim(200)
	if _, ok := s.entries[key]; ok || s.used != 0 {
		t.Fatalf("past the latest expiry: entry kept %v, used %d; want gone, 0", ok, s.used)
	}
}

// TestMemoryGivesBigcacheCompactKeysOnly: every key bigcache holds is a
// compact key, no entry holds a key it was given, an owner's pointer is the
// 8 bytes that delete its ticket, and a pointer to a ticket already gone
// does not stop the owner's next one.
func TestMemoryGivesBigcacheCompactKeysOnly(t *testing.T) {
	ctx := context.Background()
	m := newStore(t, time.Now)
	owner, key := pendingLink(1)
	if err := m.Put(ctx, "code:"+key[len("link:"):], []byte("code"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := m.PutOwned(ctx, owner, key, []byte("link"), time.Minute); err != nil {
		t.Fatal(err)
	}
	entries := 0
	for it := m.cache.Iterator(); it.SetNext(); entries++ {
		e, err := it.Value()
		if err != nil {
			t.Fatal(err)
		}
		if len(e.Key()) != compactKeyBytes {
			t.Errorf("bigcache holds a %d-byte key", len(e.Key()))
		}
		for _, k := range []string{key, owner, key[len("link:"):], owner[len("link-of:"):]} {
			if strings.Contains(string(e.Value()), k) {
				t.Errorf("an entry holds a key it was given: %q", k)
			}
		}
	}
	if entries != 3 {
		t.Fatalf("bigcache holds %d entries, want a code, a link and its owner's pointer", entries)
	}
	if ptr, err := m.get(m.keys.of(owner), owner); err != nil || string(ptr) != m.keys.of(key)[:8] {
		t.Fatalf("the owner's pointer is %x, %v; want the first 8 bytes of the link's compact key", ptr, err)
	}
	if other := newStore(t, time.Now); other.keys.of(key) == m.keys.of(key) {
		t.Fatal("two stores share compact keys: the salt is not random")
	}

	if _, err := m.Take(ctx, key); err != nil {
		t.Fatal(err)
	}
	_, next := pendingLink(2)
	if err := m.PutOwned(ctx, owner, next, []byte("next"), time.Minute); err != nil {
		t.Fatalf("PutOwned after the owner's link was taken: %v", err)
	}
	if got, err := m.Get(ctx, next); err != nil || string(got) != "next" {
		t.Fatalf("Get = %q, %v", got, err)
	}
	if got, err := m.Get(ctx, "code:"+key[len("link:"):]); err != nil || string(got) != "code" {
		t.Fatalf("a ticket of another kind under the same hash: %q, %v", got, err)
	}
}

// TestMemoryExpiryAtItsTick: an entry is live until the 10 ms tick its
// deadline falls in, for the shortest and the longest ttl, and stays
// expired a month on, which bigcache, knowing only its life window by the
// wall clock, still holds it.
func TestMemoryExpiryAtItsTick(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	clock.Advance(3) // off the tick
	m := newStore(t, clock.Now)
	for _, ttl := range []time.Duration{time.Second, maxLifetime} {
		key := fmt.Sprintf("link:%s", ttl)
		if err := m.Put(ctx, key, []byte("v"), ttl); err != nil {
			t.Fatal(err)
		}
		start := clock.Now()
		for _, at := range []time.Duration{0, 100 * time.Millisecond, ttl - expiryTick} {
			clock.t.Store(start.Add(at).UnixNano())
			if _, err := m.Get(ctx, key); err != nil {
				t.Fatalf("ttl %s, %s after Put: %v; want live", ttl, at, err)
			}
		}
		for _, at := range []time.Duration{ttl, ttl + maxLifetime + time.Hour} {
			clock.t.Store(start.Add(at).UnixNano())
			if _, err := m.Get(ctx, key); !errors.Is(err, ErrNotFound) {
				t.Fatalf("ttl %s, %s after Put: %v; want ErrNotFound", ttl, at, err)
			}
		}
		clock.t.Store(start.UnixNano())
	}
}

// TestMemoryExpiredTicketsNeverComeBack: bigcache keeps an expired ticket
// until its shard needs the room or its life window has passed by the wall
// clock, so the ticket's own expiry must hold however long it stays: a
// store used every ten days for nearly three years never gives it back (a
// 32-bit expiry of 10 ms ticks would have wrapped twice).
func TestMemoryExpiredTicketsNeverComeBack(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	m := newStore(t, clock.Now)
	if err := m.Put(ctx, "link:old", []byte("v"), time.Second); err != nil {
		t.Fatal(err)
	}
	for day := 0; day < 2*497; day += 10 {
		clock.Advance(10 * 24 * time.Hour)
		if err := m.Put(ctx, fmt.Sprintf("link:%d", day), []byte("v"), maxLifetime); err != nil {
			t.Fatal(err)
		}
		if _, err := m.Get(ctx, "link:old"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("day %d: an expired ticket is back (%v)", day+10, err)
		}
	}
}
