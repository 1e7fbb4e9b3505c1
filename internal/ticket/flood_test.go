package ticket

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestFloodNeverDropsMarkers fills the tickets as an attacker would (many
// maximal link payloads) and checks that markers set before the flood, a
// revoked session and a used DPoP proof, are still there afterwards.
func TestFloodNeverDropsMarkers(t *testing.T) {
	ctx := context.Background()
	m := newStore(t, time.Now)
	if _, err := m.Mark(ctx, "revoked-session:s1", time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Mark(ctx, "dpop-jti:k:j1", 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	value := []byte(strings.Repeat("r", 3<<10))
	// Ten times what the tickets may hold: bigcache must drop old ones.
	for i := range 10 * MinMemory / len(value) {
		if err := m.Put(ctx, fmt.Sprintf("link:%064d", i), value, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := m.Get(ctx, fmt.Sprintf("link:%064d", 0)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the oldest ticket survived a flood ten times the store's size (err %v): the flood did not fill it", err)
	}
	if ok, _ := m.Marked(ctx, "revoked-session:s1"); !ok {
		t.Fatal("a flood of tickets dropped a revocation")
	}
	if fresh, _ := m.Mark(ctx, "dpop-jti:k:j1", 2*time.Minute); fresh {
		t.Fatal("a flood of tickets dropped a replay marker")
	}
}

// TestMarkersRefuseWhenFull fills the markers with maximal keys: the store
// refuses new ones with ErrFull instead of dropping old ones, and takes new
// ones again as old ones expire.
func TestMarkersRefuseWhenFull(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	m := newStore(t, clock.Now)
	if _, err := m.Mark(ctx, "revoked-session:first", time.Hour); err != nil {
		t.Fatal(err)
	}
	jti := strings.Repeat("j", 256)
	n := 0
	for ; ; n++ {
		_, err := m.Mark(ctx, fmt.Sprintf("dpop-jti:%043d:%s", n, jti), 2*time.Minute)
		if errors.Is(err, ErrFull) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if n > MinMemory {
			t.Fatal("the markers never filled up")
		}
	}
	if ok, _ := m.Marked(ctx, "revoked-session:first"); !ok {
		t.Fatal("a full marker set dropped its first marker")
	}
	if ok, _ := m.Marked(ctx, fmt.Sprintf("dpop-jti:%043d:%s", n-1, jti)); !ok {
		t.Fatal("the last marker that fitted is not there")
	}
	// As long as the marker that did not fit, so no leftover takes it.
	second := fmt.Sprintf("dpop-jti:%043d:%s", n+1, jti)
	if _, err := m.Mark(ctx, second, time.Hour); !errors.Is(err, ErrFull) {
		t.Fatalf("Mark on a full set: err %v, want ErrFull", err)
	}
	clock.Advance(2 * time.Minute)
	if ok, err := m.Mark(ctx, second, time.Hour); !ok || err != nil {
		t.Fatalf("Mark after the replay markers expired = %v, %v; want room again", ok, err)
	}
	if ok, _ := m.Marked(ctx, "revoked-session:first"); !ok {
		t.Fatal("reclaiming expired markers dropped a live one")
	}
}

// TestMarksStayWithinTheirBudget measures the heap a full marker set holds:
// markOverhead must not understate what a marker costs, or the store's
// memory bound would not hold.
func TestMarksStayWithinTheirBudget(t *testing.T) {
	const budget = 8 << 20
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	s := newMarks(budget)
	for i := 0; ; i++ {
		if _, err := s.add(fmt.Sprintf("revoked-session:%043d", i), 1, 1<<62, 0); err != nil {
			break
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	used := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("%d markers: %d bytes of heap for a budget of %d", len(s.entries), used, budget)
	if used > budget {
		t.Fatalf("a full marker set holds %d bytes of heap, over its budget of %d", used, budget)
	}
	runtime.KeepAlive(s)
}

// flood counts one hit each for n distinct subjects, as a visitor with many
// addresses does.
func flood(t testing.TB, s Store, n int, window time.Duration) {
	t.Helper()
	ctx := context.Background()
	for i := range n {
		if _, err := s.Incr(ctx, fmt.Sprintf("limit:flood:%d", i), window); err != nil {
			t.Fatalf("flood hit %d: %v", i, err)
		}
	}
}

// counterCapacity is how many counters s holds before it forgets some.
func counterCapacity(s Store) int {
	switch s := s.(type) {
	case *Memory:
		return s.CounterCapacity()
	case *Redis:
		return int(s.counterSets) * counterWays
	}
	panic(fmt.Sprintf("no counter capacity for %T", s))
}

// counterLayout is the salt and the number of sets that s places counters
// with.
func counterLayout(s Store) (salt []byte, sets uint64) {
	switch s := s.(type) {
	case *Memory:
		return s.counters.salt[:], s.counters.sets
	case *Redis:
		return s.counterSalt, s.counterSets
	}
	panic(fmt.Sprintf("no counter layout for %T", s))
}

// sameSet returns n counter keys that s places in one set, found with the
// store's own salt, which nobody outside the store knows.
func sameSet(s Store, n int) []string {
	salt, sets := counterLayout(s)
	bySet := map[uint64][]string{}
	for i := 0; ; i++ {
		key := fmt.Sprintf("limit:set:%d", i)
		set, _ := counterHash(salt, key, sets)
		if bySet[set] = append(bySet[set], key); len(bySet[set]) == n {
			return bySet[set]
		}
	}
}

// hits counts n hits of key.
func hits(t *testing.T, s Store, key string, n int, window time.Duration) {
	t.Helper()
	for range n {
		if _, err := s.Incr(context.Background(), key, window); err != nil {
			t.Fatal(err)
		}
	}
}

// wantCounts requires each key's live count.
func wantCounts(t *testing.T, s Store, when string, counts map[string]int64) {
	t.Helper()
	for key, n := range counts {
		if c, err := s.Count(context.Background(), key); err != nil || c.N != n {
			t.Errorf("%s: %s counts %d (%v), want %d", when, key, c.N, err, n)
		}
	}
}
