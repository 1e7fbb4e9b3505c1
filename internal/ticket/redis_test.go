package ticket

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap/zaptest"

	"github.com/mailgate/caddy-mailgate/internal/redistest"
)

// prefixes gives each store a key space of its own on a shared server, so
// tests do not see each other's keys.
var prefixes atomic.Int64

func testPrefix() string {
	return fmt.Sprintf("mailgate-test-%d:", prefixes.Add(1))
}

// openPairWithClock starts a Redis with two stores on it, a and b, where b
// has the rest of bCfg and a clock of its own that the test moves: how two
// instances look when one of them falls behind.
func openPairWithClock(t *testing.T, bCfg RedisConfig) (*redistest.Server, *Redis, *Redis, *fakeClock) {
	t.Helper()
	srv := redistest.Start(t)
	prefix := testPrefix()
	a := openRedis(t, RedisConfig{Address: srv.Addr(), KeyPrefix: prefix})
	clock := &fakeClock{}
	clock.t.Store(time.Now().UnixNano())
	bCfg.Address, bCfg.KeyPrefix, bCfg.Now = srv.Addr(), prefix, clock.Now
	return srv, a, openRedis(t, bCfg), clock
}

// openRedis opens a store that the test closes at its end, before its
// server stops (cleanups run last first).
func openRedis(t *testing.T, cfg RedisConfig) *Redis {
	t.Helper()
	r, err := NewRedis(cfg, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Error(err)
		}
	})
	return r
}

// eventually polls cond every 10ms until it holds, failing the test if it
// does not within the bound: Redis and the feed keep their own time.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, within)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRedisStoreContract(t *testing.T) {
	srv := redistest.Start(t)
	testStoreContract(t, func(t *testing.T) (Store, func(time.Duration, func() bool)) {
		// A small counter table, so that the flood case floods it quickly.
		s := openRedis(t, RedisConfig{Address: srv.Addr(), KeyPrefix: testPrefix(), Counters: 1024})
		return s, func(ttl time.Duration, done func() bool) {
			t.Helper()
			eventually(t, ttl+5*time.Second, "expiry", done)
		}
	})
}

// TestRedisInstancesShareState runs two stores on one Redis, as two Caddy
// instances would: what one stores, revokes or takes, the other sees.
func TestRedisInstancesShareState(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	cfg := RedisConfig{Address: srv.Addr(), KeyPrefix: testPrefix()}
	a, b := openRedis(t, cfg), openRedis(t, cfg)

	if err := a.Revoke(ctx, "revoked-session:s1", time.Hour); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "B sees A's revocation", func() bool {
		ok, err := b.Revoked("revoked-session:s1")
		return ok && err == nil
	})
	// A new instance (a restarted Caddy) starts with the whole log.
	if ok, err := openRedis(t, cfg).Revoked("revoked-session:s1"); !ok || err != nil {
		t.Fatalf("a new instance's Revoked = %v, %v; want the revocation made before it started", ok, err)
	}

	if err := a.Put(ctx, "link:x", []byte("v"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if got, err := b.Take(ctx, "link:x"); err != nil || string(got) != "v" {
		t.Fatalf("B took %q, %v; want A's ticket", got, err)
	}
	if _, err := a.Take(ctx, "link:x"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("A took a ticket B had taken: %v", err)
	}

	_ = a.PutOwned(ctx, "link-of:o", "link:1", []byte("1"), time.Minute)
	_ = b.PutOwned(ctx, "link-of:o", "link:2", []byte("2"), time.Minute)
	if _, err := a.Get(ctx, "link:1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("B's PutOwned left A's ticket for the same owner live: %v", err)
	}

	stores := []*Redis{a, b}
	for round := range 10 {
		key := fmt.Sprintf("link:race%d", round)
		if err := a.Put(ctx, key, []byte("v"), time.Minute); err != nil {
			t.Fatal(err)
		}
		var wins atomic.Int32
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range 20 {
			s := stores[i%2]
			wg.Go(func() {
				<-start
				_, err := s.Take(ctx, key)
				switch {
				case err == nil:
					wins.Add(1)
				case !errors.Is(err, ErrNotFound):
					t.Error(err)
				}
			})
		}
		close(start)
		wg.Wait()
		if wins.Load() != 1 {
			t.Fatalf("round %d: %d of 20 Takes across two instances won", round, wins.Load())
		}
	}
}

// TestRedisCutOffsMergeAcrossInstances: a logout-all made on one instance
// holds on every other, and of two made at once the later cut-off wins on
// each instance whatever order their entries reach it in: through the feed
// of a running instance and through the load of a new one.
func TestRedisCutOffsMergeAcrossInstances(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	cfg := RedisConfig{Address: srv.Addr(), KeyPrefix: testPrefix()}
	a, b, watcher := openRedis(t, cfg), openRedis(t, cfg), openRedis(t, cfg)
	early := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	late := early.Add(time.Second)

	// The later cut-off reaches the stream first.
	if err := a.RevokeBefore(ctx, "revoked-user:u", late, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := b.RevokeBefore(ctx, "revoked-user:u", early, time.Hour); err != nil {
		t.Fatal(err)
	}
	// A marker written after both: once an instance has it, its feed has
	// applied both cut-offs too.
	if err := a.Revoke(ctx, "revoked-session:after", time.Hour); err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]*Redis{"A": a, "B": b, "the watcher": watcher, "a new instance": openRedis(t, cfg)} {
		eventually(t, 5*time.Second, name+" reads the stream past both cut-offs", func() bool {
			ok, _ := s.Revoked("revoked-session:after")
			return ok
		})
		if at, ok, err := s.RevokedBefore("revoked-user:u"); !ok || err != nil || !at.Equal(late) {
			t.Errorf("%s: RevokedBefore = %v, %v, %v; want the later cut-off %v", name, at, ok, err, late)
		}
	}
}

// TestRedisOutageFailsClosedAndRecovers stops Redis under two instances:
// every operation must fail (none may pass for "not found"), Revoked must
// refuse once the feed is behind by StaleAfter, and all must recover when
// Redis is back on the same address, without new stores.
func TestRedisOutageFailsClosedAndRecovers(t *testing.T) {
	ctx := context.Background()
	srv, a, b, clock := openPairWithClock(t, RedisConfig{})
	if err := b.Put(ctx, "link:before", []byte("v"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := b.Revoke(ctx, "revoked-session:before", time.Hour); err != nil {
		t.Fatal(err)
	}

	srv.Stop()
	ops := []struct {
		name string
		op   func() error
	}{
		{"Put", func() error { return b.Put(ctx, "link:x", []byte("v"), time.Minute) }},
		{"PutOwned", func() error { return b.PutOwned(ctx, "link-of:o", "link:x", []byte("v"), time.Minute) }},
		{"Get", func() error { _, err := b.Get(ctx, "link:before"); return err }},
		{"Take", func() error { _, err := b.Take(ctx, "link:before"); return err }},
		{"Delete", func() error { return b.Delete(ctx, "link:before") }},
		{"Mark", func() error { _, err := b.Mark(ctx, "dpop-jti:x", time.Minute); return err }},
		{"Marked", func() error { _, err := b.Marked(ctx, "dpop-jti:x"); return err }},
		{"Incr", func() error { _, err := b.Incr(ctx, "limit:x", time.Minute); return err }},
		{"Count", func() error { _, err := b.Count(ctx, "limit:x"); return err }},
		{"Reset", func() error { return b.Reset(ctx, "limit:x") }},
		{"Revoke", func() error { return b.Revoke(ctx, "revoked-session:x", time.Hour) }},
	}
	// A dead Redis on localhost refuses at once; the bound is the
	// documented worst case, one retry of dial plus write plus read.
	const bound = 2 * 3 * DefaultRedisTimeout
	for _, o := range ops {
		began := time.Now()
		err := o.op()
		if err == nil || errors.Is(err, ErrNotFound) {
			t.Errorf("%s with Redis down = %v; want an error that is not ErrNotFound", o.name, err)
		}
		if d := time.Since(began); d > bound {
			t.Errorf("%s with Redis down took %s, more than %s", o.name, d, bound)
		}
	}
	// The feed has not been behind for StaleAfter yet: B still answers.
	if ok, err := b.Revoked("revoked-session:before"); !ok || err != nil {
		t.Fatalf("Revoked within StaleAfter of the outage = %v, %v", ok, err)
	}
	clock.Advance(DefaultRedisStaleAfter + time.Millisecond)
	for _, key := range []string{"revoked-session:before", "revoked-session:other"} {
		if ok, err := b.Revoked(key); ok || !errors.Is(err, ErrStale) {
			t.Fatalf("Revoked(%q) past StaleAfter of the outage = %v, %v; want ErrStale", key, ok, err)
		}
	}

	srv.Restart()
	for name, s := range map[string]*Redis{"A": a, "B": b} {
		eventually(t, 10*time.Second, name+" works again after the restart", func() bool {
			return s.Put(ctx, "link:after", []byte("v"), time.Minute) == nil
		})
	}
	eventually(t, 10*time.Second, "B's feed is current again", func() bool {
		_, err := b.Revoked("revoked-session:other")
		return err == nil
	})
	if err := a.Revoke(ctx, "revoked-session:after", time.Hour); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "B sees a revocation made on A after the restart", func() bool {
		ok, err := b.Revoked("revoked-session:after")
		return ok && err == nil
	})
}

// TestRedisFeedResumesWhereItLeftOff locks B's feed out of a running Redis
// (its ACL user disabled and its connections killed) while A revokes: once
// let back in, B must read on from the last entry it had, not from the
// stream's end, or that revocation would be lost.
func TestRedisFeedResumesWhereItLeftOff(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	admin := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { _ = admin.Close() })
	acl := func(args ...any) {
		t.Helper()
		if err := admin.Do(ctx, args...).Err(); err != nil {
			t.Fatal(err)
		}
	}
	acl("ACL", "SETUSER", "instance-b", "on", ">secret", "~*", "&*", "+@all")

	prefix := testPrefix()
	a := openRedis(t, RedisConfig{Address: srv.Addr(), KeyPrefix: prefix})
	b := openRedis(t, RedisConfig{Address: srv.Addr(), KeyPrefix: prefix, Username: "instance-b", Password: "secret"})
	if err := a.Revoke(ctx, "revoked-session:1", time.Hour); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "B sees the first revocation", func() bool {
		ok, _ := b.Revoked("revoked-session:1")
		return ok
	})

	acl("ACL", "SETUSER", "instance-b", "off")
	acl("CLIENT", "KILL", "USER", "instance-b")
	if err := a.Revoke(ctx, "revoked-session:2", time.Hour); err != nil {
		t.Fatal(err)
	}
	// Two refused logins: go-redis's own retry of the killed XREAD, and
	// at least one read of the feed's after its backoff, so the feed has
	// seen the failure and must resume by itself.
	eventually(t, 5*time.Second, "B's feed is refused", func() bool {
		entries, err := admin.ACLLog(ctx, 10).Result()
		if err != nil {
			t.Fatal(err)
		}
		var refused int64
		for _, e := range entries {
			if e.Reason == "auth" && e.Username == "instance-b" {
				refused += e.Count
			}
		}
		return refused >= 2
	})
	acl("ACL", "SETUSER", "instance-b", "on")
	eventually(t, 5*time.Second, "B sees the revocation made while it was cut off", func() bool {
		ok, _ := b.Revoked("revoked-session:2")
		return ok
	})
}

// TestRedisFullRevocationSetFailsClosed: a revocation never goes missing
// to make room. Revoke answers ErrFull when this instance's set is full;
// the revocation still reaches the others, and this instance's feed, which
// cannot keep it, stops vouching for its set until it can.
func TestRedisFullRevocationSetFailsClosed(t *testing.T) {
	ctx := context.Background()
	_, a, b, clock := openPairWithClock(t, RedisConfig{RevocationMemory: 4 * markOverhead})
	var refused string
	for i := 0; refused == ""; i++ {
		key := fmt.Sprintf("revoked-session:%d", i)
		err := b.Revoke(ctx, key, time.Hour)
		switch {
		case errors.Is(err, ErrFull):
			refused = key
		case err != nil || i > 10:
			t.Fatalf("Revoke #%d = %v; want ErrFull once 4*markOverhead is spent", i, err)
		}
	}
	eventually(t, 5*time.Second, "A sees the revocation B had no room for", func() bool {
		ok, _ := a.Revoked(refused)
		return ok
	})
	// Every read B's feed sends from now on includes the entry it cannot
	// keep, so none vouches for its set again: past StaleAfter it refuses,
	// and keeps refusing, where a healthy feed would be current again
	// within one blocking read.
	clock.Advance(DefaultRedisStaleAfter + time.Millisecond)
	for end := time.Now().Add(2*feedBlock + time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if ok, err := b.Revoked(refused); !errors.Is(err, ErrStale) {
			t.Fatalf("Revoked on an instance whose feed cannot keep a revocation = %v, %v; want ErrStale", ok, err)
		}
	}
}

// TestRedisKeysStartWithPrefix: every key the store writes is under its
// prefix, so several realms or applications can share one Redis.
func TestRedisKeysStartWithPrefix(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	prefix := testPrefix()
	r := openRedis(t, RedisConfig{Address: srv.Addr(), KeyPrefix: prefix})
	_ = r.Put(ctx, "link:a", []byte("v"), time.Minute)
	_ = r.PutOwned(ctx, "link-of:o", "link:b", []byte("v"), time.Minute)
	_, _ = r.Mark(ctx, "dpop-jti:x", time.Minute)
	_, _ = r.Incr(ctx, "limit:a", time.Minute)
	_ = r.Revoke(ctx, "revoked-session:a", time.Minute)
	_, _ = r.Attempt(ctx, "link:a", 3)

	admin := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { _ = admin.Close() })
	var keys []string
	iter := admin.Scan(ctx, 0, "*", 100).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	// link:a, its attempts, link-of:o, link:b, dpop-jti:x, the counter
	// set of limit:a, the counters' salt, revocations.
	if len(keys) != 8 {
		t.Fatalf("keys in Redis = %q, want 8", keys)
	}
	for _, k := range keys {
		if !strings.HasPrefix(k, prefix) {
			t.Errorf("key %q is outside the prefix %q", k, prefix)
		}
	}
}

// TestRedisRevokedCostsNoAllocation: the guard calls Revoked on every
// request, so it answers from memory without allocating.
func TestRedisRevokedCostsNoAllocation(t *testing.T) {
	srv := redistest.Start(t)
	r := openRedis(t, RedisConfig{Address: srv.Addr(), KeyPrefix: testPrefix()})
	if err := r.Revoke(context.Background(), "revoked-session:a", time.Hour); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(1000, func() {
		if ok, err := r.Revoked("revoked-session:a"); !ok || err != nil {
			t.Fatalf("Revoked = %v, %v", ok, err)
		}
		if ok, err := r.Revoked("revoked-session:b"); ok || err != nil {
			t.Fatalf("Revoked = %v, %v", ok, err)
		}
	})
	if allocs != 0 {
		t.Fatalf("Revoked allocates %.1f times per call pair, want 0", allocs)
	}
}

func TestRedisRejectsBadConfigAndTTL(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	for name, cfg := range map[string]RedisConfig{
		"no address":            {},
		"pool of one":           {Address: srv.Addr(), PoolSize: 1},
		"stale_after too tight": {Address: srv.Addr(), StaleAfter: feedBlock + DefaultRedisTimeout},
	} {
		if r, err := NewRedis(cfg, nil); err == nil {
			_ = r.Close()
			t.Errorf("%s: NewRedis accepted %+v", name, cfg)
		}
	}
	r := openRedis(t, RedisConfig{Address: srv.Addr(), KeyPrefix: testPrefix()})
	if err := r.Put(ctx, "k", nil, 0); err == nil {
		t.Error("Put accepted a zero ttl")
	}
	if err := r.PutOwned(ctx, "o", "k", nil, maxLifetime+time.Second); err == nil {
		t.Error("PutOwned accepted a ttl beyond 31 days")
	}
	if _, err := r.Mark(ctx, "k", 0); err == nil {
		t.Error("Mark accepted a zero ttl")
	}
	if _, err := r.Incr(ctx, "k", 0); err == nil {
		t.Error("Incr accepted a zero window")
	}
	if err := r.Revoke(ctx, "k", maxLifetime+time.Second); err == nil {
		t.Error("Revoke accepted a ttl beyond 31 days, which the stream's trimming would cut short")
	}
}

func BenchmarkRedisRevoked(b *testing.B) {
	srv := redistest.Start(b)
	r, err := NewRedis(RedisConfig{Address: srv.Addr(), KeyPrefix: testPrefix()}, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = r.Close() })
	if err := r.Revoke(context.Background(), "revoked-session:a", time.Hour); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		_, _ = r.Revoked("revoked-session:a")
	}
}

// TestRedisCountersStayBounded floods a small counter table with twenty
// times as many distinct subjects as it holds: Redis ends up with one key
// per set and no more, so a noeviction Redis cannot be filled this way.
func TestRedisCountersStayBounded(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	prefix := testPrefix()
	r := openRedis(t, RedisConfig{Address: srv.Addr(), KeyPrefix: prefix, Counters: 256})
	flood(t, r, 20*256, time.Hour)
	admin := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { _ = admin.Close() })
	keys, err := admin.Keys(ctx, prefix+"counters:*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) == 0 || len(keys) > 256/counterWays {
		t.Fatalf("%d counter keys after a flood of %d subjects, want 1 to %d", len(keys), 20*256, 256/counterWays)
	}
	used, err := admin.MemoryUsage(ctx, keys[0]).Result()
	if err != nil {
		t.Fatal(err)
	}
	// The documented size of a set (RedisConfig.Counters): about 200 bytes.
	if used > 300 {
		t.Fatalf("a full counter set takes %d bytes in Redis", used)
	}
}

// TestRedisInstancesShareCounters: two instances place a subject in the
// same set (one salt, kept in Redis), so a limit counts hits from both.
func TestRedisInstancesShareCounters(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	prefix := testPrefix()
	a := openRedis(t, RedisConfig{Address: srv.Addr(), KeyPrefix: prefix})
	b := openRedis(t, RedisConfig{Address: srv.Addr(), KeyPrefix: prefix})
	_, _ = a.Incr(ctx, "limit:x", time.Minute)
	if c, err := b.Incr(ctx, "limit:x", time.Minute); err != nil || c.N != 2 {
		t.Fatalf("the second instance's hit = %+v, %v; want 2", c, err)
	}
}

// TestRedisCountsLeaveWithWhatTheyCount: a counter's set and a ticket's
// attempts leave Redis once what they count has ended, so that neither
// idle counters nor every code anybody ever tried stay in a Redis that
// does not evict.
func TestRedisCountsLeaveWithWhatTheyCount(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	prefix := testPrefix()
	r := openRedis(t, RedisConfig{Address: srv.Addr(), KeyPrefix: prefix})
	admin := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { _ = admin.Close() })
	const short = 300 * time.Millisecond
	if _, err := r.Incr(ctx, "limit:a", short); err != nil {
		t.Fatal(err)
	}
	if err := r.Put(ctx, "code:a", []byte("v"), short); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Attempt(ctx, "code:a", 3); err != nil {
		t.Fatal(err)
	}
	// KEYS leaves out a key whose time is up, reclaimed or not.
	counts := func() []string {
		var keys []string
		for _, pattern := range []string{prefix + "counters:*", prefix + "code:a:*"} {
			k, err := admin.Keys(ctx, pattern).Result()
			if err != nil {
				t.Fatal(err)
			}
			keys = append(keys, k...)
		}
		return keys
	}
	if keys := counts(); len(keys) != 2 {
		t.Fatalf("keys of a counter and of a ticket's attempts: %q, want 2", keys)
	}
	eventually(t, short+5*time.Second, "the counter's set and the attempts leaving Redis", func() bool { return len(counts()) == 0 })
}
