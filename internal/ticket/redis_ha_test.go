package ticket

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mailgate/caddy-mailgate/internal/redistest"
)

// TestRedisClusterStoreContract: on a three-master Redis Cluster the store
// keeps every promise it keeps on one server, scripts included.
func TestRedisClusterStoreContract(t *testing.T) {
	c := redistest.StartCluster(t)
	testStoreContract(t, func(t *testing.T) (Store, func(time.Duration, func() bool)) {
		s := openRedis(t, RedisConfig{ClusterAddrs: c.Addrs(), KeyPrefix: testPrefix(), Counters: 1024})
		return s, func(ttl time.Duration, done func() bool) {
			t.Helper()
			eventually(t, ttl+5*time.Second, "expiry", done)
		}
	})
}

// TestRedisSentinelStoreContract: through Sentinel, with every write that
// must survive a failover waiting for the replica (min_replicas 1), the
// store keeps every promise too.
func TestRedisSentinelStoreContract(t *testing.T) {
	d := redistest.StartSentinel(t, 1)
	testStoreContract(t, func(t *testing.T) (Store, func(time.Duration, func() bool)) {
		s := openRedis(t, RedisConfig{
			SentinelAddrs: d.Addrs(), MasterName: redistest.MasterName, MinReplicas: 1,
			KeyPrefix: testPrefix(), Counters: 1024,
		})
		return s, func(ttl time.Duration, done func() bool) {
			t.Helper()
			eventually(t, ttl+5*time.Second, "expiry", done)
		}
	})
}

// TestRedisClusterKeysShareOneSlot: every key a realm's store writes on a
// cluster carries the prefix as its hash tag, so PutOwned's and Attempt's
// scripts run (one slot), and two realms land on slots of their own.
func TestRedisClusterKeysShareOneSlot(t *testing.T) {
	ctx := context.Background()
	c := redistest.StartCluster(t)
	admin := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs()})
	t.Cleanup(func() { _ = admin.Close() })
	slots := map[int64]bool{}
	for _, realm := range []string{"mailgate:one:", "mailgate:two:"} {
		r := openRedis(t, RedisConfig{ClusterAddrs: c.Addrs(), KeyPrefix: realm})
		_ = r.PutOwned(ctx, "link-of:o", "link:a", []byte("v"), time.Minute)
		_ = r.PutOwned(ctx, "link-of:o", "link:b", []byte("v"), time.Minute)
		_, _ = r.Attempt(ctx, "link:b", 3)
		_, _ = r.Mark(ctx, "dpop-jti:x", time.Minute)
		_, _ = r.Incr(ctx, "limit:a", time.Minute)
		_ = r.Revoke(ctx, "revoked-session:a", time.Minute)
		if _, err := r.Get(ctx, "link:a"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("PutOwned on a cluster left the owner's previous ticket: %v", err)
		}
		var keys []string
		err := admin.ForEachMaster(ctx, func(ctx context.Context, n *redis.Client) error {
			found, err := n.Keys(ctx, "{"+realm+"}*").Result()
			keys = append(keys, found...)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		// link-of:o, link:b, its attempts, the marker, a counter set, the
		// salt, the revocations.
		if len(keys) != 7 {
			t.Fatalf("%s: keys = %q, want 7", realm, keys)
		}
		realmSlots := map[int64]bool{}
		for _, k := range keys {
			s, err := admin.ClusterKeySlot(ctx, k).Result()
			if err != nil {
				t.Fatal(err)
			}
			realmSlots[s], slots[s] = true, true
		}
		if len(realmSlots) != 1 {
			t.Errorf("%s: keys over %d slots, want 1: %q", realm, len(realmSlots), keys)
		}
	}
	if len(slots) != 2 {
		t.Errorf("two realms share a slot")
	}
	// With min_replicas, each write and its WAIT go to the shard that holds
	// the realm (any other would answer MOVED): on a cluster without
	// replicas the write lands, unacknowledged.
	r := openRedis(t, RedisConfig{ClusterAddrs: c.Addrs(), KeyPrefix: "mailgate:three:", MinReplicas: 1, AckTimeout: 50 * time.Millisecond})
	if err := r.PutOwned(ctx, "link-of:o", "link:c", []byte("v"), time.Minute); !errors.Is(err, ErrNotReplicated) {
		t.Fatalf("PutOwned on a cluster without replicas: %v, want ErrNotReplicated", err)
	}
	if v, err := r.Get(ctx, "link:c"); err != nil || string(v) != "v" {
		t.Fatalf("the unacknowledged ticket on its primary: %q, %v", v, err)
	}
	if _, err := NewRedis(RedisConfig{ClusterAddrs: c.Addrs(), KeyPrefix: "a{b}:"}, nil); err == nil {
		t.Error("a prefix with braces, which would make another hash tag, was accepted on a cluster")
	}
}

// TestRedisSentinelFailoverLosesNoAcknowledgedWrite kills the primary while
// two instances write (markers for used proofs, revocations for logouts),
// with min_replicas 1 and one replica. Every write either fails (the caller
// answers 503) or was acknowledged by the replica, and then the promoted
// replica has it: nothing acknowledged is lost. The instances fail closed
// until the deployment can acknowledge writes again (the replica promoted,
// the dead node restarted as a supervisor would and turned into its
// replica), and then work by themselves, no reopening, within the
// failover's time plus 5s.
func TestRedisSentinelFailoverLosesNoAcknowledgedWrite(t *testing.T) {
	ctx := context.Background()
	d := redistest.StartSentinel(t, 1)
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(d.Replicas[0].LogTail())
			t.Log(d.Sentinels[0].LogTail())
		}
	})
	cfg := RedisConfig{
		SentinelAddrs: d.Addrs(), MasterName: redistest.MasterName, MinReplicas: 1,
		KeyPrefix: testPrefix(), ReadTimeout: 500 * time.Millisecond, WriteTimeout: 500 * time.Millisecond,
		DialTimeout: 500 * time.Millisecond, AckTimeout: 250 * time.Millisecond,
	}
	a, b := openRedis(t, cfg), openRedis(t, cfg)
	// Written and acknowledged before the failover: a pending link, a
	// used proof, a logout, a consumed link.
	if err := a.PutOwned(ctx, "link-of:alice", "link:pending", []byte("v"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if ok, err := a.Mark(ctx, "dpop-jti:used", time.Hour); !ok || err != nil {
		t.Fatalf("Mark = %v, %v", ok, err)
	}
	if err := a.Revoke(ctx, "revoked-session:before", time.Hour); err != nil {
		t.Fatal(err)
	}
	_ = a.Put(ctx, "link:used", []byte("v"), time.Hour)
	if _, err := a.Take(ctx, "link:used"); err != nil {
		t.Fatal(err)
	}

	// Both instances write without pause, through the failover.
	w := startWriters(t, a, b)
	eventually(t, 5*time.Second, "writes acknowledged", func() bool { return w.ackedSince(time.Now().Add(-time.Second)) })

	d.Master.Stop()
	killed := time.Now()
	d.WaitPromoted(t)
	promoted := time.Since(killed)
	// Writes are refused now: the promoted replica has no replica of its
	// own to acknowledge them. A supervisor restarts the dead node as its
	// replica.
	d.Rejoin(t)
	eventually(t, promoted+5*time.Second, "both instances writing again", func() bool { return w.ackedSince(killed) })
	healed := time.Since(killed)
	acked, refused := w.stop()
	t.Logf("failover: replica promoted %s after the primary was killed; instances acknowledged writes again after %s; %d writes acknowledged, %d refused",
		promoted, healed, len(acked), refused)

	// Nothing acknowledged is lost, on the new primary and for an instance
	// that starts after the failover and loads the revocation log.
	c := openRedis(t, cfg)
	for _, k := range append(acked, "dpop-jti:used", "revoked-session:before") {
		if kind, _, _ := strings.Cut(k, ":"); kind == "dpop-jti" {
			if ok, err := c.Marked(ctx, k); !ok || err != nil {
				t.Errorf("the acknowledged marker %s is lost: %v, %v", k, ok, err)
			}
			continue
		}
		for name, s := range map[string]*Redis{"a": a, "b": b, "a new instance": c} {
			// An instance's feed reads the log within StaleAfter.
			eventually(t, DefaultRedisStaleAfter, "revocation "+k+" on "+name, func() bool {
				ok, err := s.Revoked(k)
				return ok && err == nil
			})
		}
	}
	if v, err := b.Get(ctx, "link:pending"); err != nil || string(v) != "v" {
		t.Errorf("the pending link is lost: %q, %v", v, err)
	}
	if _, err := b.Take(ctx, "link:used"); !errors.Is(err, ErrNotFound) {
		t.Errorf("the consumed link came back: %v", err)
	}
}

// TestRedisUnacknowledgedWritesAreRefused: with min_replicas and no replica
// to acknowledge, every write that must survive a failover fails with
// ErrNotReplicated, so the caller answers 503 instead of reporting done
// what a failover could undo; reads and counters go on.
func TestRedisUnacknowledgedWritesAreRefused(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	r := openRedis(t, RedisConfig{Address: srv.Addr(), KeyPrefix: testPrefix(), MinReplicas: 1, AckTimeout: 50 * time.Millisecond})
	// Each write lands on the primary, which is what the next one needs.
	errs := map[string]error{}
	errs["Put"] = r.Put(ctx, "link:a", []byte("v"), time.Minute)
	_, errs["Attempt"] = r.Attempt(ctx, "link:a", 3)
	_, errs["Take"] = r.Take(ctx, "link:a")
	errs["PutOwned"] = r.PutOwned(ctx, "link-of:o", "link:b", []byte("v"), time.Minute)
	errs["Delete"] = r.Delete(ctx, "link:b")
	_, errs["Mark"] = r.Mark(ctx, "dpop-jti:a", time.Minute)
	errs["Revoke"] = r.Revoke(ctx, "revoked-session:a", time.Minute)
	for name, err := range errs {
		if !errors.Is(err, ErrNotReplicated) {
			t.Errorf("%s without a replica: %v, want ErrNotReplicated", name, err)
		}
	}
	if _, err := r.Incr(ctx, "limit:a", time.Minute); err != nil {
		t.Errorf("a counter waited for replicas: %v", err)
	}
	// This instance refuses the session it revoked all the same.
	if ok, err := r.Revoked("revoked-session:a"); !ok || err != nil {
		t.Errorf("Revoked = %v, %v", ok, err)
	}
}

func TestStreamIDOrder(t *testing.T) {
	for _, c := range []struct {
		a, b string
		less bool
	}{
		{"0-0", "1-0", true}, {"5-1", "5-2", true}, {"10-0", "9-9", false}, {"7-3", "7-3", false},
	} {
		if got := streamIDLess(c.a, c.b); got != c.less {
			t.Errorf("streamIDLess(%s, %s) = %v", c.a, c.b, got)
		}
	}
}

// TestRedisSentinelFailoverWithoutAcks measures the default, min_replicas
// 0, on the same deployment: instances work again as soon as the replica
// is promoted, with no replica of its own, and the writes the old primary
// acknowledged but had not yet replicated are lost. The test counts them
// for docs/operations-redis.md.
func TestRedisSentinelFailoverWithoutAcks(t *testing.T) {
	ctx := context.Background()
	d := redistest.StartSentinel(t, 1)
	cfg := RedisConfig{
		SentinelAddrs: d.Addrs(), MasterName: redistest.MasterName, KeyPrefix: testPrefix(),
		ReadTimeout: 500 * time.Millisecond, WriteTimeout: 500 * time.Millisecond, DialTimeout: 500 * time.Millisecond,
	}
	a, b := openRedis(t, cfg), openRedis(t, cfg)
	w := startWriters(t, a, b)
	eventually(t, 5*time.Second, "writes acknowledged", func() bool { return w.ackedSince(time.Now().Add(-time.Second)) })
	d.Master.Stop()
	killed := time.Now()
	d.WaitPromoted(t)
	promoted := time.Since(killed)
	eventually(t, 5*time.Second, "both instances writing again", func() bool { return w.ackedSince(killed) })
	healed := time.Since(killed)
	acked, refused := w.stop()
	lost := 0
	for _, k := range acked {
		if kind, _, _ := strings.Cut(k, ":"); kind == "dpop-jti" {
			if ok, err := a.Marked(ctx, k); err != nil || !ok {
				lost++
			}
		}
	}
	t.Logf("failover without min_replicas: replica promoted %s after the primary was killed; instances wrote again after %s; "+
		"%d writes acknowledged, %d refused, %d acknowledged markers lost", promoted, healed, len(acked), refused, lost)
}

// writers are two instances writing markers and revocations without pause,
// as a busy cluster's logins and logouts would, recording which writes
// were acknowledged.
type writers struct {
	mu      sync.Mutex
	acked   []string     // keys whose write returned no error
	lastAck [2]time.Time // when each instance's last acknowledged Mark began
	refused int
	done    chan struct{}
	wg      sync.WaitGroup
}

func startWriters(t *testing.T, stores ...*Redis) *writers {
	ctx := context.Background()
	w := &writers{done: make(chan struct{})}
	for i, s := range stores {
		w.wg.Go(func() {
			for n := 0; ; n++ {
				select {
				case <-w.done:
					return
				default:
				}
				mark := fmt.Sprintf("dpop-jti:%d-%d", i, n)
				rev := fmt.Sprintf("revoked-session:%d-%d", i, n)
				began := time.Now()
				ok, err := s.Mark(ctx, mark, time.Hour)
				err2 := s.Revoke(ctx, rev, time.Hour)
				w.mu.Lock()
				if err == nil && ok {
					w.acked = append(w.acked, mark)
					w.lastAck[i] = began
				} else {
					w.refused++
				}
				if err2 == nil {
					w.acked = append(w.acked, rev)
				} else {
					w.refused++
				}
				w.mu.Unlock()
				if err != nil || err2 != nil {
					time.Sleep(20 * time.Millisecond) // as a person retrying would, not a busy loop
				}
			}
		})
	}
	t.Cleanup(func() { w.stop() })
	return w
}

// ackedSince reports whether both instances had a write acknowledged that
// began after since.
func (w *writers) ackedSince(since time.Time) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.lastAck[0].After(since) && w.lastAck[1].After(since)
}

// stop ends the writing, after a few more writes, and returns the
// acknowledged keys and the number of refused writes.
func (w *writers) stop() ([]string, int) {
	select {
	case <-w.done:
	default:
		w.mu.Lock()
		n := len(w.acked)
		w.mu.Unlock()
		for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
			w.mu.Lock()
			more := len(w.acked) > n+20
			w.mu.Unlock()
			if more {
				break
			}
		}
		close(w.done)
	}
	w.wg.Wait()
	return w.acked, w.refused
}

// BenchmarkRedisWriteWithReplicaAck measures what min_replicas costs a
// write (a Mark, as for a used DPoP proof) on a primary with one replica:
// the WAIT's round trip to the replica, on top of the write's own.
func BenchmarkRedisWriteWithReplicaAck(b *testing.B) {
	d := redistest.StartSentinel(b, 1)
	for _, acks := range []int{0, 1} {
		b.Run(fmt.Sprintf("min_replicas=%d", acks), func(b *testing.B) {
			r, err := NewRedis(RedisConfig{SentinelAddrs: d.Addrs(), MasterName: redistest.MasterName, KeyPrefix: testPrefix(), MinReplicas: acks}, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close()
			ctx := context.Background()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				if _, err := r.Mark(ctx, "dpop-jti:"+strconv.Itoa(i), time.Minute); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestRedisFeedRereadsAStreamThatWentBack: after an outage the stream may
// end before the feed's position (a promoted replica that missed entries,
// whose clock lags; a Redis back empty) and get entries numbered before
// it. The feed reads it again, so it misses none of them.
func TestRedisFeedRereadsAStreamThatWentBack(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	prefix := testPrefix()
	r := openRedis(t, RedisConfig{Address: srv.Addr(), KeyPrefix: prefix})
	if err := r.Revoke(ctx, "revoked-session:before", time.Hour); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the feed past its own entry", func() bool {
		return r.syncedAt.Load() > time.Now().Add(-500*time.Millisecond).UnixNano()
	})
	srv.Restart()
	admin := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { _ = admin.Close() })
	// Another instance's logout, numbered by a clock far behind this one.
	exp := strconv.FormatInt(time.Now().Add(time.Hour).UnixMilli(), 10)
	if err := admin.XAdd(ctx, &redis.XAddArgs{Stream: prefix + "revocations", ID: "1-1", Values: []string{"key", "revoked-session:after", "exp", exp}}).Err(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the entry numbered before the feed's position", func() bool {
		ok, err := r.Revoked("revoked-session:after")
		return ok && err == nil
	})
}

// TestRedisSentinelWithPasswords: sentinels and data nodes that require
// passwords of their own, each given its own: the store finds the primary
// and works; a wrong sentinel password is refused when the store opens.
func TestRedisSentinelWithPasswords(t *testing.T) {
	ctx := context.Background()
	d := redistest.StartSentinelAuth(t, 1, "data-secret", "sentinel-secret")
	cfg := RedisConfig{
		SentinelAddrs: d.Addrs(), MasterName: redistest.MasterName, SentinelPassword: "sentinel-secret",
		Password: "data-secret", KeyPrefix: testPrefix(), MinReplicas: 1,
	}
	r := openRedis(t, cfg)
	if err := r.Put(ctx, "link:a", []byte("v"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if v, err := r.Get(ctx, "link:a"); err != nil || string(v) != "v" {
		t.Fatalf("Get = %q, %v", v, err)
	}
	cfg.SentinelPassword = "wrong"
	r, err := NewRedis(cfg, nil)
	if err == nil {
		_ = r.Close()
		t.Fatal("a wrong sentinel password was accepted")
	}
	if !strings.Contains(err.Error(), "WRONGPASS") {
		t.Fatalf("a wrong sentinel password: %v, want the sentinels' refusal", err)
	}
}
