package ticket

import (
	"context"
	"errors"
	"sync"
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

func TestMemoryTakeOnce(t *testing.T) {
	ctx := context.Background()
	m := newStore(t, time.Now)
	if err := m.Put(ctx, "k", []byte("v"), time.Minute); err != nil {
		t.Fatal(err)
	}
	got, err := m.Take(ctx, "k")
	if err != nil || string(got) != "v" {
		t.Fatalf("first take = %q, %v; want v", got, err)
	}
	if _, err := m.Take(ctx, "k"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second take err = %v, want ErrNotFound", err)
	}
}

func TestMemoryConcurrentTakeHasOneWinner(t *testing.T) {
	ctx := context.Background()
	m := newStore(t, time.Now)
	for round := 0; round < 50; round++ {
		if err := m.Put(ctx, "k", []byte("v"), time.Minute); err != nil {
			t.Fatal(err)
		}
		var wins atomic.Int32
		var wg sync.WaitGroup
		for i := 0; i < 8; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := m.Take(ctx, "k"); err == nil {
					wins.Add(1)
				}
			}()
		}
		wg.Wait()
		if wins.Load() != 1 {
			t.Fatalf("round %d: %d takers won, want 1", round, wins.Load())
		}
	}
}

func TestMemoryExpiryUsesEntryTTL(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	m := newStore(t, clock.Now)
	if err := m.Put(ctx, "short", []byte("v"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := m.Put(ctx, "long", []byte("v"), time.Hour); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Minute)
	if _, err := m.Get(ctx, "short"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get of expired entry: err = %v, want ErrNotFound", err)
	}
	if _, err := m.Take(ctx, "short"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("take of expired entry: err = %v, want ErrNotFound", err)
	}
	if _, err := m.Get(ctx, "long"); err != nil {
		t.Fatal("entry with a longer ttl expired with the short one")
	}
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
}

func TestMemoryGetDoesNotConsume(t *testing.T) {
	ctx := context.Background()
	m := newStore(t, time.Now)
	_ = m.Put(ctx, "k", []byte("v"), time.Minute)
	for i := 0; i < 2; i++ {
		if v, err := m.Get(ctx, "k"); string(v) != "v" || err != nil {
			t.Fatalf("Get #%d = %q, %v", i, v, err)
		}
	}
	if _, err := m.Take(ctx, "k"); err != nil {
		t.Fatal("Get consumed the entry")
	}
}

func TestMemoryMarkOnce(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	m := newStore(t, clock.Now)
	var wins atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if ok, err := m.Mark(ctx, "jti", time.Minute); ok && err == nil {
				wins.Add(1)
			}
		}()
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d callers stored the same key, want 1", wins.Load())
	}
	if ok, _ := m.Marked(ctx, "jti"); !ok {
		t.Fatal("Marked = false for a live marker")
	}
	clock.Advance(time.Minute)
	if ok, _ := m.Marked(ctx, "jti"); ok {
		t.Fatal("Marked = true at the marker's expiry")
	}
	if ok, _ := m.Mark(ctx, "jti", time.Minute); !ok {
		t.Fatal("Mark refused a key whose marker had expired")
	}
}
