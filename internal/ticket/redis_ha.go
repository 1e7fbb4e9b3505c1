package ticket

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// The Redis store runs on one server, on a primary that Sentinel fails over
// to a replica, or on Redis Cluster. This file holds what differs between
// them: the client, the key layout on a cluster, and the wait for replicas.

// ErrNotReplicated is returned by a write that MinReplicas asks replicas to
// acknowledge when fewer did within AckTimeout. The write is on the primary
// and may yet reach the replicas, but a failover now could lose it, so the
// caller must not report it done (503, try again).
var ErrNotReplicated = errors.New("ticket: redis replicas did not acknowledge the write in time")

// checkDeployment requires exactly one of the three deployments.
func checkDeployment(cfg RedisConfig) error {
	n := 0
	for _, set := range []bool{cfg.Address != "", len(cfg.SentinelAddrs) > 0, len(cfg.ClusterAddrs) > 0} {
		if set {
			n++
		}
	}
	switch {
	case n == 0:
		return errors.New("ticket: redis address, sentinel addresses or cluster addresses are required")
	case n > 1:
		return errors.New("ticket: redis address, sentinel addresses and cluster addresses exclude each other")
	case len(cfg.SentinelAddrs) > 0 && cfg.MasterName == "":
		return errors.New("ticket: redis sentinel needs the master's name")
	case len(cfg.SentinelAddrs) == 0 && (cfg.MasterName != "" || cfg.SentinelUsername != "" || cfg.SentinelPassword != ""):
		return errors.New("ticket: redis master name and sentinel credentials are for sentinel addresses")
	case len(cfg.ClusterAddrs) > 0 && cfg.DB != 0:
		return errors.New("ticket: redis cluster has database 0 only")
	case len(cfg.ClusterAddrs) > 0 && strings.ContainsAny(cfg.KeyPrefix, "{}"):
		return fmt.Errorf("ticket: redis key prefix %q: no braces on a cluster, the prefix becomes the keys' hash tag", cfg.KeyPrefix)
	}
	return nil
}

// newRedisClient makes the client for the deployment cfg names, each with
// the same timeouts and retries: one dial per attempt and one retry per
// command (enough to step over a connection a restart or a failover
// closed) keep a dead Redis from holding a request much past the timeouts;
// go-redis's defaults (5 dials, 3 retries) could wait out DialTimeout
// twenty times. A caller's deadline (a request's) ends a command sooner.
func newRedisClient(cfg RedisConfig) redis.UniversalClient {
	// Maintenance notifications are a Redis Enterprise feature; on other
	// servers they only cost a command per connection.
	noMaint := &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	switch {
	case len(cfg.SentinelAddrs) > 0:
		return redis.NewFailoverClient(&redis.FailoverOptions{
			MasterName:       cfg.MasterName,
			SentinelAddrs:    cfg.SentinelAddrs,
			SentinelUsername: cfg.SentinelUsername,
			SentinelPassword: cfg.SentinelPassword,
			Username:         cfg.Username, Password: cfg.Password, DB: cfg.DB, TLSConfig: cfg.TLS,
			DialTimeout: cfg.DialTimeout, ReadTimeout: cfg.ReadTimeout, WriteTimeout: cfg.WriteTimeout,
			PoolSize: cfg.PoolSize, DialerRetries: 1, MaxRetries: 1, ContextTimeoutEnabled: true,
		})
	case len(cfg.ClusterAddrs) > 0:
		return redis.NewClusterClient(&redis.ClusterOptions{
			Addrs:    cfg.ClusterAddrs,
			Username: cfg.Username, Password: cfg.Password, TLSConfig: cfg.TLS,
			DialTimeout: cfg.DialTimeout, ReadTimeout: cfg.ReadTimeout, WriteTimeout: cfg.WriteTimeout,
			PoolSize: cfg.PoolSize, DialerRetries: 1, MaxRetries: 1, ContextTimeoutEnabled: true,
			MaintNotificationsConfig: noMaint,
		})
	}
	return redis.NewClient(&redis.Options{
		Addr:     cfg.Address,
		Username: cfg.Username, Password: cfg.Password, DB: cfg.DB, TLSConfig: cfg.TLS,
		DialTimeout: cfg.DialTimeout, ReadTimeout: cfg.ReadTimeout, WriteTimeout: cfg.WriteTimeout,
		PoolSize: cfg.PoolSize, DialerRetries: 1, MaxRetries: 1, ContextTimeoutEnabled: true,
		MaintNotificationsConfig: noMaint,
	})
}

// clusterPrefix makes the key prefix a hash tag, "{mailgate:realm:}", so
// every key of the store hashes to one slot of a cluster. Scripts need it:
// PutOwned deletes the ticket whose name it reads from the owner's pointer,
// a key it cannot declare beforehand, and Attempt counts in a key beside
// its ticket's; Redis Cluster runs a script only on keys of one slot. One
// slot per realm also keeps the store simple to reason about (one node
// holds all of a realm, as one server did); mailgate's load on Redis is a
// few commands per sign-in and none per proxied request, so it does not
// need spreading. Realms, each its own tag, spread over the cluster. Only
// a cluster gets the tag: on one server or under Sentinel the key names
// stay as they were, so an upgrade keeps its data.
func clusterPrefix(prefix string) string {
	return "{" + prefix + "}"
}

// write runs what queue sends on c, and, when MinReplicas is set, waits
// for that many replicas to acknowledge it. WAIT counts the writes of its
// own connection, so then queue sends on a pipeline to the primary that
// holds key, with WAIT at its end, all on one connection. The caller reads
// the results of its commands from what queue returned; write returns
// WAIT's verdict (nil without MinReplicas).
func (r *Redis) write(ctx context.Context, key string, queue func(c redis.Cmdable)) error {
	if r.minReplicas == 0 {
		queue(r.client)
		return nil
	}
	p := r.client.Pipeline()
	if r.cluster != nil {
		node, err := r.cluster.MasterForKey(ctx, key)
		if err != nil {
			// The commands are queued, so the caller has them to read,
			// and fail unsent.
			queue(p)
			err = fmt.Errorf("ticket: redis cluster: finding the primary: %w", err)
			for _, c := range p.Cmds() {
				c.SetErr(err)
			}
			return err
		}
		p = node.Pipeline()
	}
	queue(p)
	wait := p.Do(ctx, "WAIT", r.minReplicas, r.ackTimeout.Milliseconds())
	// Each command carries its own error; Exec's is the first of them.
	_, _ = p.Exec(ctx)
	n, err := wait.Int64()
	if err != nil {
		return redisError("WAIT", err)
	}
	if n < int64(r.minReplicas) {
		return fmt.Errorf("%w: %d of %d within %s", ErrNotReplicated, n, r.minReplicas, r.ackTimeout)
	}
	return nil
}

// runScript runs s on c: by its hash with a fallback to its source on a
// client, by its source in a pipeline, where a missing script would only
// show when the pipeline has run (a new primary after a failover has an
// empty script cache).
func runScript(ctx context.Context, c redis.Cmdable, s *redis.Script, keys []string, args ...any) *redis.Cmd {
	if _, ok := c.(redis.Pipeliner); ok {
		return s.Eval(ctx, c, keys, args...)
	}
	return s.Run(ctx, c, keys, args...)
}

// rewind makes the feed read the stream again from its start when the
// stream now ends before lastID, after the feed lost Redis. That happens
// after a failover that promoted a replica which missed the last entries
// the feed read from the old primary (the new primary then numbers new
// entries after its own last id, by its own clock, possibly before lastID,
// where an XREAD after lastID would skip them), and after a Redis that came
// back empty (every entry is new). The two look alike from here, so the
// whole stream is read again; entries the set holds already change nothing
// (see keep), and this happens only after an outage. A stream that is gone
// is read from the start too.
func (r *Redis) rewind(ctx context.Context, lastID *string) error {
	ctx, cancel := context.WithTimeout(ctx, r.readTimeout)
	defer cancel()
	info, err := r.client.XInfoStream(ctx, r.stream).Result()
	if err != nil {
		if strings.Contains(err.Error(), "no such key") {
			*lastID = "0-0"
			return nil
		}
		return redisError("XINFO STREAM", err)
	}
	if streamIDLess(info.LastGeneratedID, *lastID) {
		*lastID = "0-0"
	}
	return nil
}

// streamIDLess reports whether stream id a comes before b ("ms-seq").
func streamIDLess(a, b string) bool {
	am, as := splitStreamID(a)
	bm, bs := splitStreamID(b)
	return am < bm || am == bm && as < bs
}

func splitStreamID(id string) (ms, seq uint64) {
	m, s, _ := strings.Cut(id, "-")
	ms, _ = strconv.ParseUint(m, 10, 64)
	seq, _ = strconv.ParseUint(s, 10, 64)
	return ms, seq
}
