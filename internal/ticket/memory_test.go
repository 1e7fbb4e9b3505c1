package ticket

import (
	"context"
	"errors"
	"fmt"
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

// TestMemoryCountersRefuseWhenFull: counters are never dropped to make room
// (a dropped counter is a lifted limit); a full set answers ErrFull.
func TestMemoryCountersRefuseWhenFull(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	m := newStore(t, clock.Now)
	n := 0
	for ; ; n++ {
		_, err := m.Incr(ctx, fmt.Sprintf("limit:ip:%043d", n), time.Minute)
		if errors.Is(err, ErrFull) {
			break
		}
		if err != nil || n > MinMemory {
			t.Fatalf("after %d counters: %v", n, err)
		}
	}
	if c, _ := m.Count(ctx, fmt.Sprintf("limit:ip:%043d", 0)); c.N != 1 {
		t.Fatalf("a full counter set dropped its first counter: %+v", c)
	}
	clock.Advance(time.Minute)
	if c, err := m.Incr(ctx, fmt.Sprintf("limit:ip:%043d", n), time.Minute); err != nil || c.N != 1 {
		t.Fatalf("after the window: %+v, %v; want room again", c, err)
	}
}
