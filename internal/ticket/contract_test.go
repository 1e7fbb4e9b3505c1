package ticket

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// backend opens a fresh, empty Store for one test, and says how to let time
// pass for it: wait lets ttl pass and then requires done to hold. The memory
// store moves its injected clock; Redis keeps time itself, so there wait
// polls done until Redis has expired the key (short ttls, no sleep).
type backend func(t *testing.T) (s Store, wait func(ttl time.Duration, done func() bool))

// testStoreContract is what every Store promises, run against each backend:
// the flows rely on it whichever store an operator chooses.
func testStoreContract(t *testing.T, open backend) {
	ctx := context.Background()
	// short is the ttl of entries that a test lets expire.
	const short = 300 * time.Millisecond

	t.Run("tickets: put, get without consuming, take once, delete", func(t *testing.T) {
		s, _ := open(t)
		if err := s.Put(ctx, "link:a", []byte("v1"), time.Minute); err != nil {
			t.Fatal(err)
		}
		if err := s.Put(ctx, "link:a", []byte("v2"), time.Minute); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if got, err := s.Get(ctx, "link:a"); err != nil || string(got) != "v2" {
				t.Fatalf("Get = %q, %v; want v2 (a Put replaces)", got, err)
			}
		}
		if got, err := s.Take(ctx, "link:a"); err != nil || string(got) != "v2" {
			t.Fatalf("Take = %q, %v", got, err)
		}
		for _, op := range []func(context.Context, string) ([]byte, error){s.Take, s.Get} {
			if _, err := op(ctx, "link:a"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("after Take: %v, want ErrNotFound", err)
			}
		}
		if err := s.Put(ctx, "link:b", []byte("v"), time.Minute); err != nil {
			t.Fatal(err)
		}
		if err := s.Delete(ctx, "link:b"); err != nil {
			t.Fatal(err)
		}
		if err := s.Delete(ctx, "link:b"); err != nil {
			t.Fatalf("deleting a missing key: %v", err)
		}
		if _, err := s.Get(ctx, "link:b"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("after Delete: %v, want ErrNotFound", err)
		}
	})

	t.Run("tickets expire after their own ttl", func(t *testing.T) {
		s, wait := open(t)
		_ = s.Put(ctx, "link:short", []byte("v"), short)
		_ = s.Put(ctx, "link:long", []byte("v"), time.Hour)
		wait(short, func() bool {
			_, err := s.Get(ctx, "link:short")
			return errors.Is(err, ErrNotFound)
		})
		if _, err := s.Take(ctx, "link:short"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("an expired ticket was taken: %v", err)
		}
		if _, err := s.Get(ctx, "link:long"); err != nil {
			t.Fatalf("a live ticket expired with a shorter one: %v", err)
		}
	})

	t.Run("of concurrent takes exactly one wins", func(t *testing.T) {
		s, _ := open(t)
		for round := range 20 {
			key := fmt.Sprintf("link:%d", round)
			_ = s.Put(ctx, key, []byte("v"), time.Minute)
			var wins atomic.Int32
			var wg sync.WaitGroup
			for range 8 {
				wg.Go(func() {
					if _, err := s.Take(ctx, key); err == nil {
						wins.Add(1)
					}
				})
			}
			wg.Wait()
			if wins.Load() != 1 {
				t.Fatalf("round %d: %d takers won", round, wins.Load())
			}
		}
	})

	t.Run("put new: once while live, again after take, delete or expiry, and one of concurrent ones", func(t *testing.T) {
		s, wait := open(t)
		if ok, err := s.PutNew(ctx, "one:a", []byte("1"), time.Minute); !ok || err != nil {
			t.Fatalf("first PutNew = %v, %v", ok, err)
		}
		if ok, err := s.PutNew(ctx, "one:a", []byte("2"), time.Minute); ok || err != nil {
			t.Fatalf("PutNew over a live value = %v, %v; want false", ok, err)
		}
		if got, _ := s.Get(ctx, "one:a"); string(got) != "1" {
			t.Fatalf("a refused PutNew changed the value to %q", got)
		}
		_, _ = s.Take(ctx, "one:a")
		if ok, err := s.PutNew(ctx, "one:a", []byte("3"), time.Minute); !ok || err != nil {
			t.Fatalf("PutNew after Take = %v, %v", ok, err)
		}
		_ = s.Delete(ctx, "one:a")
		if ok, err := s.PutNew(ctx, "one:a", []byte("4"), short); !ok || err != nil {
			t.Fatalf("PutNew after Delete = %v, %v", ok, err)
		}
		wait(short, func() bool {
			_, err := s.Get(ctx, "one:a")
			return errors.Is(err, ErrNotFound)
		})
		if ok, err := s.PutNew(ctx, "one:a", []byte("5"), time.Minute); !ok || err != nil {
			t.Fatalf("PutNew after expiry = %v, %v", ok, err)
		}
		for round := range 10 {
			key := fmt.Sprintf("one:r%d", round)
			var wins atomic.Int32
			var wg sync.WaitGroup
			for range 50 {
				wg.Go(func() {
					if ok, err := s.PutNew(ctx, key, []byte("v"), time.Minute); ok && err == nil {
						wins.Add(1)
					}
				})
			}
			wg.Wait()
			if wins.Load() != 1 {
				t.Fatalf("round %d: %d PutNews stored", round, wins.Load())
			}
		}
	})

	t.Run("an owner's new ticket supersedes the old one, even concurrently", func(t *testing.T) {
		s, _ := open(t)
		_ = s.PutOwned(ctx, "link-of:o", "link:1", []byte("1"), time.Minute)
		_ = s.PutOwned(ctx, "link-of:o", "link:2", []byte("2"), time.Minute)
		if _, err := s.Get(ctx, "link:1"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("the superseded ticket is live: %v", err)
		}
		if _, err := s.Get(ctx, "link:2"); err != nil {
			t.Fatalf("the newest ticket: %v", err)
		}
		var wg sync.WaitGroup
		for i := range 16 {
			wg.Go(func() {
				_ = s.PutOwned(ctx, "link-of:p", fmt.Sprintf("link:p%d", i), []byte("v"), time.Minute)
			})
		}
		wg.Wait()
		live := 0
		for i := range 16 {
			if _, err := s.Get(ctx, fmt.Sprintf("link:p%d", i)); err == nil {
				live++
			}
		}
		if live != 1 {
			t.Fatalf("%d live tickets for one owner after concurrent issues", live)
		}
	})

	t.Run("markers: set once, even concurrently, and expire", func(t *testing.T) {
		s, wait := open(t)
		if ok, err := s.Mark(ctx, "dpop-jti:x", short); !ok || err != nil {
			t.Fatalf("first Mark = %v, %v", ok, err)
		}
		if ok, _ := s.Mark(ctx, "dpop-jti:x", short); ok {
			t.Fatal("a second Mark of a live marker reported true")
		}
		if ok, err := s.Marked(ctx, "dpop-jti:x"); !ok || err != nil {
			t.Fatalf("Marked = %v, %v", ok, err)
		}
		var wins atomic.Int32
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				if ok, _ := s.Mark(ctx, "dpop-jti:y", time.Minute); ok {
					wins.Add(1)
				}
			})
		}
		wg.Wait()
		if wins.Load() != 1 {
			t.Fatalf("%d concurrent Marks reported true", wins.Load())
		}
		wait(short, func() bool { ok, _ := s.Marked(ctx, "dpop-jti:x"); return !ok })
		if ok, _ := s.Mark(ctx, "dpop-jti:x", time.Minute); !ok {
			t.Fatal("an expired marker could not be set again")
		}
	})

	t.Run("counters count in a fixed window, concurrently, and reset", func(t *testing.T) {
		s, wait := open(t)
		if c, err := s.Count(ctx, "limit:a"); err != nil || c != (Count{}) {
			t.Fatalf("Count of nothing = %+v, %v", c, err)
		}
		for want := int64(1); want <= 3; want++ {
			c, err := s.Incr(ctx, "limit:a", short)
			if err != nil || c.N != want || c.ResetIn <= 0 || c.ResetIn > short {
				t.Fatalf("Incr #%d = %+v, %v", want, c, err)
			}
		}
		if c, _ := s.Count(ctx, "limit:a"); c.N != 3 {
			t.Fatalf("Count = %+v, want 3 (Count adds nothing)", c)
		}
		// The window ends where the first hit put it: hits do not extend it.
		wait(short, func() bool { c, _ := s.Count(ctx, "limit:a"); return c.N == 0 })
		if c, _ := s.Incr(ctx, "limit:a", time.Minute); c.N != 1 || c.ResetIn <= short {
			t.Fatalf("the first Incr of a new window = %+v", c)
		}
		if err := s.Reset(ctx, "limit:a"); err != nil {
			t.Fatal(err)
		}
		if c, _ := s.Count(ctx, "limit:a"); c.N != 0 {
			t.Fatalf("after Reset: %+v", c)
		}
		// A reset counter is gone, window and all: the next hit opens a
		// window of its own rather than finishing the old one.
		if c, _ := s.Incr(ctx, "limit:a", time.Hour); c.N != 1 || c.ResetIn <= time.Minute {
			t.Fatalf("the first Incr after Reset = %+v; want 1 in a new window of an hour", c)
		}
		if err := s.Reset(ctx, "limit:missing"); err != nil {
			t.Fatalf("resetting a missing counter: %v", err)
		}

		seen := make([]atomic.Bool, 33)
		var wg sync.WaitGroup
		for range 32 {
			wg.Go(func() {
				c, err := s.Incr(ctx, "limit:b", time.Minute)
				if err != nil || c.N < 1 || c.N > 32 || seen[c.N].Swap(true) {
					t.Errorf("concurrent Incr = %+v, %v: not a fresh count", c, err)
				}
			})
		}
		wg.Wait()
	})

	t.Run("refund takes one hit back without moving the window", func(t *testing.T) {
		s, wait := open(t)
		for range 3 {
			_, _ = s.Incr(ctx, "limit:r", short)
		}
		for range 4 {
			if err := s.Refund(ctx, "limit:r"); err != nil {
				t.Fatal(err)
			}
		}
		if c, _ := s.Count(ctx, "limit:r"); c.N != 0 {
			t.Fatalf("three hits refunded four times: %+v, want 0 (never below zero)", c)
		}
		if c, _ := s.Incr(ctx, "limit:r", time.Hour); c.N != 1 || c.ResetIn > short {
			t.Fatalf("a hit after refunds = %+v; want 1 in the first window, which refunds do not move", c)
		}
		wait(short, func() bool { c, _ := s.Count(ctx, "limit:r"); return c.N == 0 })
		if err := s.Refund(ctx, "limit:missing"); err != nil {
			t.Fatalf("refunding a missing counter: %v", err)
		}
	})

	t.Run("attempts are counted with their ticket, each within the limit once", func(t *testing.T) {
		s, wait := open(t)
		if _, err := s.Attempt(ctx, "code:none", 3); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Attempt at no ticket: %v, want ErrNotFound", err)
		}
		_ = s.Put(ctx, "code:a", []byte("v"), time.Minute)
		for want := int64(1); want <= 3; want++ {
			if n, err := s.Attempt(ctx, "code:a", 3); n != want || err != nil {
				t.Fatalf("Attempt #%d = %d, %v", want, n, err)
			}
			if got, err := s.Get(ctx, "code:a"); err != nil || string(got) != "v" {
				t.Fatalf("the ticket after %d attempts: %q, %v; want it untouched", want, got, err)
			}
		}
		for range 2 {
			if n, err := s.Attempt(ctx, "code:a", 3); n != 4 || err != nil {
				t.Fatalf("an attempt over the limit = %d, %v; want 4", n, err)
			}
		}
		// The ticket stays for a compare still under way to take it.
		if got, err := s.Take(ctx, "code:a"); err != nil || string(got) != "v" {
			t.Fatalf("the ticket after attempts over its limit: %q, %v", got, err)
		}

		// Fifty at once: only the limit's first three get a number within
		// it, each its own, so no more than three may go on to compare.
		_ = s.Put(ctx, "code:b", []byte("v"), time.Minute)
		var within atomic.Int64
		seen := make([]atomic.Bool, 51)
		var wg sync.WaitGroup
		for range 50 {
			wg.Go(func() {
				n, err := s.Attempt(ctx, "code:b", 3)
				if err != nil || n < 1 || n > 4 || (n <= 3 && seen[n].Swap(true)) {
					t.Errorf("concurrent Attempt = %d, %v: not a fresh number within the limit, nor limit+1", n, err)
				}
				if n <= 3 {
					within.Add(1)
				}
			})
		}
		wg.Wait()
		if within.Load() != 3 {
			t.Fatalf("%d of 50 concurrent attempts were within a limit of 3", within.Load())
		}

		// The count expires with its ticket: a new ticket starts afresh.
		_ = s.Put(ctx, "code:c", []byte("v"), short)
		_, _ = s.Attempt(ctx, "code:c", 3)
		wait(short, func() bool { _, err := s.Get(ctx, "code:c"); return errors.Is(err, ErrNotFound) })
		if _, err := s.Attempt(ctx, "code:c", 3); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Attempt at an expired ticket: %v", err)
		}
		for _, limit := range []int64{0, MaxAttempts + 1} {
			if _, err := s.Attempt(ctx, "code:c", limit); err == nil || errors.Is(err, ErrNotFound) {
				t.Fatalf("Attempt took a limit of %d: %v", limit, err)
			}
		}
	})

	t.Run("a flood of distinct subjects is forgotten, not refused, and spares counts near their limit", func(t *testing.T) {
		s, _ := open(t)
		// A subject at 5 hits, as a person close to a limit is.
		for range 5 {
			_, _ = s.Incr(ctx, "limit:watched", time.Hour)
		}
		flood(t, s, 5*counterCapacity(s), time.Hour)
		if c, err := s.Count(ctx, "limit:watched"); err != nil || c.N != 5 {
			t.Fatalf("after a flood five times the table: %+v, %v; want the count of 5 kept", c, err)
		}
		if c, err := s.Incr(ctx, "limit:fresh", time.Hour); err != nil || c.N != 1 {
			t.Fatalf("a fresh subject after the flood: %+v, %v; want counted from 1", c, err)
		}
	})

	t.Run("a full set gives way to the lowest count, the one ending first among equals", func(t *testing.T) {
		s, _ := open(t)
		k := sameSet(s, counterWays+1)
		// k[0] is close to a limit; three subjects seen once end at
		// different times.
		hits(t, s, k[0], 3, time.Hour)
		hits(t, s, k[1], 1, 2*time.Hour)
		hits(t, s, k[2], 1, time.Hour)
		hits(t, s, k[3], 1, 3*time.Hour)
		// A fifth subject forgets the lowest count and, of the equal ones,
		// the one whose window ends first: it had least left to count.
		hits(t, s, k[4], 1, time.Hour)
		wantCounts(t, s, "a fifth subject in a full set", map[string]int64{k[0]: 3, k[1]: 1, k[2]: 0, k[3]: 1, k[4]: 1})
	})

	t.Run("an ended count gives way before any live one, and ends no other", func(t *testing.T) {
		s, wait := open(t)
		k := sameSet(s, counterWays+1)
		hits(t, s, k[0], 3, short)
		for _, key := range k[1:counterWays] {
			hits(t, s, key, 1, time.Hour)
		}
		wait(short, func() bool { c, _ := s.Count(ctx, k[0]); return c.N == 0 })
		// k[0]'s place is free once its window ended, however high its
		// count was: a new subject takes it and forgets no live count.
		hits(t, s, k[4], 1, short)
		live := map[string]int64{k[1]: 1, k[2]: 1, k[3]: 1}
		wantCounts(t, s, "a new subject where one count ended", live)
		// A short window in a set does not end the longer ones beside it
		// (Redis expires a set as a whole, at its latest window's end).
		wait(short, func() bool { c, _ := s.Count(ctx, k[4]); return c.N == 0 })
		wantCounts(t, s, "after the newest, shortest window ended", live)
	})

	t.Run("every set holds its four counters", func(t *testing.T) {
		s, _ := open(t)
		salt, sets := counterLayout(s)
		// Exactly four subjects for each set: the table's whole capacity,
		// which it holds only if no set shares a place with another.
		inSet := map[uint64]int{}
		var keys []string
		for i := 0; len(keys) < counterCapacity(s); i++ {
			key := fmt.Sprintf("limit:even:%d", i)
			if set, _ := counterHash(salt, key, sets); inSet[set] < counterWays {
				inSet[set]++
				keys = append(keys, key)
			}
		}
		for _, key := range keys {
			hits(t, s, key, 2, time.Hour)
		}
		for _, key := range keys {
			if c, err := s.Count(ctx, key); err != nil || c.N != 2 {
				t.Fatalf("a table holding exactly its capacity forgot %s: %+v, %v", key, c, err)
			}
		}
	})

	t.Run("a flood aimed at a subject's set without the salt misses it", func(t *testing.T) {
		s, _ := open(t)
		_, sets := counterLayout(s)
		hits(t, s, "limit:victim", 2, time.Hour)
		// What a visitor can compute: subjects that share the victim's set
		// under the hash without the store's salt, each counted more often.
		// Salted, they land in sets of their own, and the victim keeps its
		// count.
		victim, _ := counterHash(nil, "limit:victim", sets)
		for i, aimed := 0, 0; aimed < 2*counterWays; i++ {
			key := fmt.Sprintf("limit:aimed:%d", i)
			if set, _ := counterHash(nil, key, sets); set == victim {
				hits(t, s, key, 3, time.Hour)
				aimed++
			}
		}
		wantCounts(t, s, "after the aimed flood", map[string]int64{"limit:victim": 2})
	})

	t.Run("revocations are seen at once and expire", func(t *testing.T) {
		s, wait := open(t)
		if ok, err := s.Revoked("revoked-session:a"); ok || err != nil {
			t.Fatalf("Revoked before Revoke = %v, %v", ok, err)
		}
		if err := s.Revoke(ctx, "revoked-session:a", short); err != nil {
			t.Fatal(err)
		}
		if err := s.Revoke(ctx, "revoked-session:b", time.Hour); err != nil {
			t.Fatal(err)
		}
		// Revoke returns once this instance's own set has the key.
		if ok, err := s.Revoked("revoked-session:a"); !ok || err != nil {
			t.Fatalf("Revoked right after Revoke = %v, %v", ok, err)
		}
		wait(short, func() bool { ok, _ := s.Revoked("revoked-session:a"); return !ok })
		if ok, _ := s.Revoked("revoked-session:b"); !ok {
			t.Fatal("a live revocation expired with a shorter one")
		}
	})

	t.Run("revocation cut-offs only move later, keep the latest expiry and cost no allocation", func(t *testing.T) {
		s, wait := open(t)
		early := time.Date(2026, 1, 2, 3, 0, 0, 123, time.UTC)
		late := early.Add(time.Minute)
		if at, ok, err := s.RevokedBefore("revoked-user:a"); ok || err != nil || !at.IsZero() {
			t.Fatalf("RevokedBefore before RevokeBefore = %v, %v, %v", at, ok, err)
		}
		revoke := func(key string, before time.Time, ttl time.Duration) {
			t.Helper()
			if err := s.RevokeBefore(ctx, key, before, ttl); err != nil {
				t.Fatal(err)
			}
		}
		want := func(key string, before time.Time) {
			t.Helper()
			if at, ok, err := s.RevokedBefore(key); !ok || err != nil || !at.Equal(before) {
				t.Fatalf("RevokedBefore(%q) = %v, %v, %v; want %v", key, at, ok, err, before)
			}
		}
		// An earlier cut-off does not lower a later one, but its longer ttl
		// is kept.
		revoke("revoked-user:a", late, short)
		revoke("revoked-user:a", early, time.Hour)
		// A later cut-off moves an earlier one, but its shorter ttl does
		// not cut the entry short.
		revoke("revoked-user:b", early, time.Hour)
		revoke("revoked-user:b", late, short)
		revoke("revoked-user:c", late, short)
		for _, key := range []string{"revoked-user:a", "revoked-user:b", "revoked-user:c"} {
			want(key, late)
		}
		wait(short, func() bool { _, ok, _ := s.RevokedBefore("revoked-user:c"); return !ok })
		want("revoked-user:a", late)
		want("revoked-user:b", late)

		// The guard calls RevokedBefore on every request.
		allocs := testing.AllocsPerRun(1000, func() {
			_, _, _ = s.RevokedBefore("revoked-user:a")
			_, _, _ = s.RevokedBefore("revoked-user:none")
		})
		if allocs != 0 {
			t.Fatalf("RevokedBefore allocates %.1f times per call pair, want 0", allocs)
		}

		for name, err := range map[string]error{
			"a zero cut-off":       s.RevokeBefore(ctx, "revoked-user:d", time.Time{}, time.Hour),
			"a zero ttl":           s.RevokeBefore(ctx, "revoked-user:d", late, 0),
			"a ttl beyond 31 days": s.RevokeBefore(ctx, "revoked-user:d", late, maxLifetime+time.Second),
			"a cut-off past 2262":  s.RevokeBefore(ctx, "revoked-user:d", time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC), time.Hour),
		} {
			if err == nil {
				t.Errorf("RevokeBefore accepted %s", name)
			}
		}
	})
}

func TestMemoryStoreContract(t *testing.T) {
	testStoreContract(t, func(t *testing.T) (Store, func(time.Duration, func() bool)) {
		clock := newFakeClock()
		s := newStore(t, clock.Now)
		return s, func(ttl time.Duration, done func() bool) {
			t.Helper()
			clock.Advance(ttl)
			if !done() {
				t.Fatalf("not expired %s later", ttl)
			}
		}
	})
}
