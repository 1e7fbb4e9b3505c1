package limit

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailgate/caddy-mailgate/internal/storetest"
	"github.com/mailgate/caddy-mailgate/internal/ticket"
)

func TestRuleAllowsMaxThenRefusesUntilTheWindowEnds(t *testing.T) {
	now := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
	store := memoryStore(t, &now)
	ctx := context.Background()
	r := Rule{Max: 3, Window: 15 * time.Minute}
	for i := range 3 {
		if err := r.Hit(ctx, store, "mails_per_address", "alice@example.com"); err != nil {
			t.Fatalf("hit %d: %v", i+1, err)
		}
	}
	now = now.Add(5 * time.Minute)
	var ex *ExceededError
	if err := r.Hit(ctx, store, "mails_per_address", "alice@example.com"); !errors.As(err, &ex) || ex.RetryAfter != 10*time.Minute || ex.Rule != "mails_per_address" {
		t.Fatalf("4th hit = %v, want exceeded with 10m to wait", err)
	}
	// Other subjects and other rules count apart.
	if err := r.Hit(ctx, store, "mails_per_address", "bob@example.com"); err != nil {
		t.Fatalf("another address: %v", err)
	}
	if err := r.Hit(ctx, store, "requests_per_ip", "alice@example.com"); err != nil {
		t.Fatalf("another rule: %v", err)
	}
	now = now.Add(10 * time.Minute)
	if err := r.Hit(ctx, store, "mails_per_address", "alice@example.com"); err != nil {
		t.Fatalf("after the window: %v", err)
	}
}

func TestIPSubjectsGroupAnIPv6HostAndSite(t *testing.T) {
	for in, want := range map[string][2]string{
		"192.0.2.7":                   {"192.0.2.7", ""},
		"::ffff:192.0.2.7":            {"192.0.2.7", ""},
		"2001:db8:1:2:3:4:5:6":        {"2001:db8:1:2::/64", "2001:db8:1::/48"},
		"2001:db8:1:2:ffff:ffff:ff:1": {"2001:db8:1:2::/64", "2001:db8:1::/48"},
		"not an ip":                   {"not an ip", ""},
	} {
		if n, w := ipSubjects(in); n != want[0] || w != want[1] {
			t.Errorf("ipSubjects(%q) = %q, %q; want %q", in, n, w, want)
		}
	}
}

// TestHitIPBoundsASiteThatRotatesItsHosts: every /64 of one /48 may make
// the rule's hits, and the /48 as a whole WideShare times as many.
func TestHitIPBoundsASiteThatRotatesItsHosts(t *testing.T) {
	now := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
	store := memoryStore(t, &now)
	ctx := context.Background()
	r := Rule{Max: 2, Window: time.Minute}
	hits := 0
	for host := 0; ; host++ {
		ip := fmt.Sprintf("2001:db8:7:%x::1", host)
		// Each /64 twice: within its own rule.
		var err error
		for range 2 {
			if err = r.HitIP(ctx, store, "requests_per_ip", ip); err != nil {
				break
			}
			hits++
		}
		var ex *ExceededError
		if errors.As(err, &ex) {
			if ex.Rule != "requests_per_ip_48" {
				t.Fatalf("refused by %s, want the /48 rule", ex.Rule)
			}
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if host > 1000 {
			t.Fatal("a /48 rotating its /64s was never refused")
		}
	}
	if hits != 2*WideShare {
		t.Fatalf("a /48 made %d hits, want %d", hits, 2*WideShare)
	}
	if err := r.HitIP(ctx, store, "requests_per_ip", "2001:db8:8::1"); err != nil {
		t.Fatalf("another /48: %v", err)
	}
}

func TestAttemptsAreCountedBeforeAndGivenBackAfterASuccess(t *testing.T) {
	now := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
	store := memoryStore(t, &now)
	ctx := context.Background()
	f := Failures{Rule: Rule{Max: 2, Window: time.Minute}, Store: store, Name: "failures_per_ip"}
	// Successes give their attempt back, however many.
	for range 5 {
		a, err := f.TryIP(ctx, "192.0.2.1")
		if err != nil {
			t.Fatalf("a try after successes only: %v", err)
		}
		if err := a.Done(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 2 {
		a, err := f.TryIP(ctx, "192.0.2.1")
		if err != nil {
			t.Fatalf("try before failure %d: %v", i+1, err)
		}
		a.Failed()
		_ = a.Done(ctx)
	}
	var ex *ExceededError
	if _, err := f.TryIP(ctx, "192.0.2.1"); !errors.As(err, &ex) || ex.RetryAfter != time.Minute {
		t.Fatalf("after 2 failures: %v", err)
	}
	if _, err := f.TryIP(ctx, "192.0.2.2"); err != nil {
		t.Fatalf("another IP: %v", err)
	}
	now = now.Add(time.Minute)
	if _, err := f.TryIP(ctx, "192.0.2.1"); err != nil {
		t.Fatalf("after the window: %v", err)
	}
	if RetryAfterSeconds(1500*time.Millisecond) != 2 {
		t.Fatal("Retry-After must round up")
	}
}

// TestFiftyConcurrentAttemptsGetNoMoreThanTheRule: the count is taken
// before the compare, so attempts sent at once cannot all pass a check
// that none of them has counted yet; on the memory store and on Redis.
func TestFiftyConcurrentAttemptsGetNoMoreThanTheRule(t *testing.T) {
	storetest.Each(t, time.Now, func(t *testing.T, store ticket.Store) {
		ctx := context.Background()
		f := Failures{Rule: Rule{Max: 3, Window: time.Minute}, Store: store, Name: "failures_per_ip"}
		var compared atomic.Int64
		var wg sync.WaitGroup
		for range 50 {
			wg.Go(func() {
				a, err := f.TryIP(ctx, "2001:db8::1")
				if err != nil {
					return
				}
				compared.Add(1)
				a.Failed()
				_ = a.Done(ctx)
			})
		}
		wg.Wait()
		if compared.Load() != 3 {
			t.Fatalf("%d of 50 concurrent attempts went on to compare, want 3", compared.Load())
		}
	})
}

// TestTryIPBoundsASiteThatRotatesItsHosts: failed secrets are bounded as
// HitIP bounds hits. Successes from a whole /48 are given back on both of
// its counts, however many; then every /64 may fail the rule's Max times,
// the /48 as a whole WideShare times as often, for the rule's window.
func TestTryIPBoundsASiteThatRotatesItsHosts(t *testing.T) {
	now := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
	store := memoryStore(t, &now)
	ctx := context.Background()
	f := Failures{Rule: Rule{Max: 2, Window: time.Minute}, Store: store, Name: "failures_per_ip"}
	ip := func(host, n int) string { return fmt.Sprintf("2001:db8:7:%x::%d", host, n) }
	for host := range 4 * 2 * WideShare {
		a, err := f.TryIP(ctx, ip(host, 1))
		if err != nil {
			t.Fatalf("success %d from one /48: %v", host+1, err)
		}
		if err := a.Done(ctx); err != nil {
			t.Fatal(err)
		}
	}
	failures := 0
	for host := 0; ; host++ {
		// Each /64 twice, from two of its addresses: within its own rule.
		var err error
		for n := range 2 {
			var a *Attempt
			if a, err = f.TryIP(ctx, ip(host, n+1)); err != nil {
				break
			}
			a.Failed()
			_ = a.Done(ctx)
			failures++
		}
		var ex *ExceededError
		if errors.As(err, &ex) {
			if ex.RetryAfter != time.Minute {
				t.Fatalf("the /48 is refused for %s, want the rule's window", ex.RetryAfter)
			}
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if host > 1000 {
			t.Fatal("a /48 rotating its /64s was never refused")
		}
	}
	if failures != 2*WideShare {
		t.Fatalf("a /48 failed %d times before it was refused, want %d", failures, 2*WideShare)
	}
	if _, err := f.TryIP(ctx, "2001:db8:8::1"); err != nil {
		t.Fatalf("another /48: %v", err)
	}
}

// halfDown is a store that cannot count the keys that contain down.
type halfDown struct {
	*ticket.Memory
	down string
}

func (s *halfDown) Incr(ctx context.Context, key string, window time.Duration) (ticket.Count, error) {
	if s.down != "" && strings.Contains(key, s.down) {
		return ticket.Count{}, errors.New("store down")
	}
	return s.Memory.Incr(ctx, key, window)
}

// TestAnAttemptTheStoreCouldNotCountIsGivenBack: an attempt refused
// because the store could not count all of it (here, its /48) gives back
// what was counted, so that the person's try is not lost to the outage.
func TestAnAttemptTheStoreCouldNotCountIsGivenBack(t *testing.T) {
	now := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
	store := &halfDown{Memory: memoryStore(t, &now), down: "failures_per_ip" + wideSuffix}
	ctx := context.Background()
	f := Failures{Rule: Rule{Max: 1, Window: time.Minute}, Store: store, Name: "failures_per_ip"}
	var ex *ExceededError
	if _, err := f.TryIP(ctx, "2001:db8::1"); err == nil || errors.As(err, &ex) {
		t.Fatalf("a try the store could not count: %v, want the store's error", err)
	}
	store.down = ""
	if _, err := f.TryIP(ctx, "2001:db8::1"); err != nil {
		t.Fatalf("the one try after the store recovered: %v", err)
	}
}

// TestForgiveStartsAfresh: a subject that used up its failures is locked,
// and after a success (Forgive) has all of them again, round after round.
func TestForgiveStartsAfresh(t *testing.T) {
	now := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
	store := memoryStore(t, &now)
	ctx := context.Background()
	f := Failures{Rule: Rule{Max: 2, Window: time.Minute}, Store: store, Name: "wrong_codes_per_address"}
	for round := range 3 {
		for i := range 2 {
			a, err := f.Try(ctx, "alice@example.com")
			if err != nil {
				t.Fatalf("round %d, failure %d: %v", round+1, i+1, err)
			}
			a.Failed()
			_ = a.Done(ctx)
		}
		var ex *ExceededError
		if err := f.Locked(ctx, "alice@example.com"); !errors.As(err, &ex) {
			t.Fatalf("round %d: after 2 failures Locked = %v, want exceeded", round+1, err)
		}
		if err := f.Forgive(ctx, "alice@example.com"); err != nil {
			t.Fatal(err)
		}
		if err := f.Locked(ctx, "alice@example.com"); err != nil {
			t.Fatalf("round %d: after Forgive: %v", round+1, err)
		}
	}
}

// TestZeroFailuresLimitNothing: Failures with the zero rule, and no
// store, let every attempt through and lock nobody, as the zero Rule
// does for hits.
func TestZeroFailuresLimitNothing(t *testing.T) {
	ctx := context.Background()
	var f Failures
	for range 3 {
		a, err := f.TryIP(ctx, "192.0.2.1")
		if err != nil {
			t.Fatalf("a try under the zero rule: %v", err)
		}
		a.Failed()
		if err := a.Done(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Locked(ctx, "alice@example.com"); err != nil {
		t.Fatalf("Locked under the zero rule: %v", err)
	}
	if err := f.Forgive(ctx, "alice@example.com"); err != nil {
		t.Fatalf("Forgive under the zero rule: %v", err)
	}
}

// memoryStore is a memory ticket store on the clock *now.
func memoryStore(t *testing.T, now *time.Time) *ticket.Memory {
	t.Helper()
	store, err := ticket.NewMemory(ticket.MinMemory, func() time.Time { return *now })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return store
}
