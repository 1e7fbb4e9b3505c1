package ticket

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// TestMemoryAgainstAMap runs random Puts, PutOwneds, Takes, Deletes,
// Attempts and Gets with short and long ttls on the smallest store, so that
// every bigcache shard fills and evicts many times over, against a map of
// what was last stored: a read never returns anything but the value last
// stored under its key, alive and not taken, deleted or superseded since;
// a ticket's attempts count on from where they were; and the most recent
// entries are always there (only the oldest may be evicted).
func TestMemoryAgainstAMap(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	m := newStore(t, clock.Now)
	r := rand.New(rand.NewPCG(1, 2))
	type entry struct {
		v        string
		exp      time.Time
		attempts int64
	}
	model := map[string]entry{}  // ticket key → what it must hold, if anything
	owned := map[string]string{} // owner key → the ticket its pointer names
	var order []string           // ticket keys stored, most recent last
	value := func(step int) string {
		// JSON like Kind's, so packing is exercised, or raw bytes.
		if r.IntN(2) == 0 {
			return fmt.Sprintf(`{"email":"u%d@example.com","return":"/%s","expires":%d}`, step, strings.Repeat("p", r.IntN(80)), step)
		}
		return fmt.Sprintf("v%d\x01%s", step, strings.Repeat("r", r.IntN(120)))
	}
	ttl := func() time.Duration { return []time.Duration{time.Second, time.Hour}[r.IntN(2)] }
	check := func(step int, key string, got []byte, err error) {
		t.Helper()
		want, ok := model[key]
		switch {
		case errors.Is(err, ErrNotFound):
		case err != nil:
			t.Fatalf("step %d, %s: %v", step, key, err)
		case !ok || !clock.Now().Before(want.exp):
			t.Fatalf("step %d, %s: got %q, want nothing", step, key, got)
		case string(got) != want.v:
			t.Fatalf("step %d, %s: got %q, want %q", step, key, got, want.v)
		}
	}
	for step := range 200_000 {
		key := fmt.Sprintf("link:%d", r.IntN(4000))
		switch op := r.IntN(20); {
		case op < 6:
			v, d := value(step), ttl()
			if err := m.Put(ctx, key, []byte(v), d); err != nil {
				t.Fatal(err)
			}
			model[key] = entry{v: v, exp: clock.Now().Add(d)}
			order = append(order, key)
		case op < 9:
			owner := fmt.Sprintf("link-of:%d", r.IntN(1000))
			v, d := value(step), ttl()
			// The previous ticket goes if the pointer to it is still
			// there; an evicted pointer leaves it to its own ttl.
			if _, err := m.Get(ctx, owner); err == nil {
				delete(model, owned[owner])
			}
			if err := m.PutOwned(ctx, owner, key, []byte(v), d); err != nil {
				t.Fatal(err)
			}
			model[key], owned[owner] = entry{v: v, exp: clock.Now().Add(d)}, key
			order = append(order, key)
		case op < 11:
			got, err := m.Take(ctx, key)
			check(step, key, got, err)
			delete(model, key)
		case op < 12:
			if err := m.Delete(ctx, key); err != nil {
				t.Fatal(err)
			}
			delete(model, key)
		case op < 14:
			const limit = 3
			n, err := m.Attempt(ctx, key, limit)
			if errors.Is(err, ErrNotFound) {
				break
			}
			if err != nil {
				t.Fatalf("step %d, %s: %v", step, key, err)
			}
			e, ok := model[key]
			if !ok || !clock.Now().Before(e.exp) {
				t.Fatalf("step %d, %s: an attempt at a ticket that is gone", step, key)
			}
			if want := min(e.attempts+1, limit+1); n != want {
				t.Fatalf("step %d, %s: attempt %d, want %d", step, key, n, want)
			}
			e.attempts = min(e.attempts+1, limit)
			model[key] = e
		default:
			got, err := m.Get(ctx, key)
			check(step, key, got, err)
		}
		clock.Advance(50 * time.Millisecond)
	}
	// The last sets, if still there in the model, are all in the store:
	// each 64 KiB shard holds hundreds of entries of at most ~160 bytes.
	for _, key := range order[len(order)-50:] {
		want, ok := model[key]
		if !ok || !clock.Now().Before(want.exp) {
			continue
		}
		if got, err := m.Get(ctx, key); err != nil || string(got) != want.v {
			t.Fatalf("a recent entry %s: %q, %v; want %q", key, got, err, want.v)
		}
	}
}
