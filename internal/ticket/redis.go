package ticket

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// RedisConfig configures a Redis store. Redis 6.2 or later is required
// (GETDEL, XADD MINID, exclusive XRANGE), in one of three deployments:
// one server at Address (a standalone server or an endpoint in front of a
// primary), a primary found through Sentinel (SentinelAddrs and
// MasterName), or Redis Cluster (ClusterAddrs). Exactly one of them is set.
type RedisConfig struct {
	// Address is the server's host:port.
	Address string
	// SentinelAddrs are the host:port of Redis Sentinels watching the
	// primary named MasterName: the store asks them where the primary is,
	// and follows it when they fail over to a replica.
	SentinelAddrs []string
	MasterName    string
	// SentinelUsername and SentinelPassword authenticate to the sentinels
	// (which may differ from the data nodes' Username and Password).
	SentinelUsername string
	SentinelPassword string
	// ClusterAddrs are the host:port of some nodes of a Redis Cluster; the
	// client discovers the rest. On a cluster every key of the store
	// carries its KeyPrefix as a hash tag, so they share one slot: see
	// clusterPrefix.
	ClusterAddrs []string
	// MinReplicas, when above 0, makes each write that must survive a
	// failover (a pending ticket, a consumed or deleted one, a marker, an
	// attempt, a revocation) wait, with WAIT, until that many replicas
	// acknowledge it, for at most AckTimeout; one that is not acknowledged
	// in time fails with ErrNotReplicated, so the caller refuses (503)
	// rather than report done what a failover could undo. 0 (default)
	// does not wait: Redis replicates asynchronously, and a failover may
	// lose the last writes the old primary acknowledged.
	MinReplicas int
	// AckTimeout bounds the WAIT of MinReplicas. Default 1s.
	AckTimeout time.Duration
	// Username and Password authenticate each connection (Username for an
	// ACL user; empty for the default user).
	Username string
	Password string
	// DB is the logical database SELECTed on each connection.
	DB int
	// TLS, when set, is used to dial Redis over TLS; nil dials plain TCP.
	TLS *tls.Config
	// KeyPrefix starts every key the store writes, so several realms or
	// applications can share one Redis. Default "mailgate:".
	KeyPrefix string
	// DialTimeout bounds connecting to Redis. Default 2s.
	DialTimeout time.Duration
	// ReadTimeout and WriteTimeout bound each command's socket reads and
	// writes, so a dead Redis fails a request within seconds instead of
	// holding it. Default 2s each.
	ReadTimeout  time.Duration
	WriteTimeout time.Duration
	// PoolSize is the number of pooled connections; 0 keeps go-redis's
	// default (10 per CPU). The revocation feed holds one of them, so a set
	// value must be at least 2.
	PoolSize int
	// StaleAfter is how long Revoked and RevokedBefore keep answering from
	// the local set after the last successful read of the revocation
	// stream; beyond it, they answer ErrStale. It is the longest a revocation made on
	// another instance can go unseen here. Default 5s; it must exceed the
	// feed's blocking read (1s) plus ReadTimeout, or a healthy feed would
	// look stale.
	StaleAfter time.Duration
	// RevocationMemory is the byte budget of the local revocation set;
	// when it is spent, Revoke and RevokeBefore answer ErrFull. Default
	// 64 MiB.
	RevocationMemory int64
	// Counters is how many rate-limit counters Redis holds at most, in
	// sets of four; past that the lowest counts are forgotten (see
	// counterTable). Each set is one hash of at most 12 short fields, about
	// 200 bytes in Redis. Default 262144 (about 13 MiB).
	Counters int
	// Now is the clock for the staleness check and for the expiry of local
	// revocations; default time.Now. Redis expires everything else itself.
	Now func() time.Time
}

// Redis is the Store shared by a cluster of Caddy instances. Tickets,
// markers and counters live in Redis only, each operation a single command
// or a Lua script, so Redis's single-threaded execution makes it atomic
// across instances. Revocations are also mirrored into a local set that a
// background feed keeps current (see Revoked), because the guard checks
// them on every request and cannot afford a round trip.
//
// With the timeouts set, a Redis that is down makes every operation fail
// within about twice DialTimeout+WriteTimeout+ReadTimeout (one retry), and a
// ctx deadline ends it sooner; nothing reports ErrNotFound that Redis did
// not answer.
//
// Redis must not drop what the store relies on: run it with
// maxmemory-policy noeviction, so that when full it refuses writes (errors
// here, 503 upstream) instead of evicting a marker, a counter or the
// revocation log, and with persistence, or a restart forgets them (running
// instances keep their local revocations; new ones would start without).
//
// Under Sentinel the client follows the primary through a failover; what a
// failover may lose of the writes the old primary acknowledged is what
// MinReplicas is for (see write). On a cluster every key carries the
// prefix as a hash tag (see clusterPrefix).
type Redis struct {
	client      redis.UniversalClient
	cluster     *redis.ClusterClient // client, on Redis Cluster; else nil
	minReplicas int
	ackTimeout  time.Duration
	prefix      string
	stream      string // <prefix>revocations, the revocation log
	readTimeout time.Duration
	now         func() time.Time
	staleAfter  int64 // nanoseconds
	log         *zap.Logger

	revoked  *marks
	syncedAt atomic.Int64 // Unix nanoseconds, by now, of the last complete read of the stream

	counterSalt []byte // shared by every instance, see loadCounterSalt
	counterSets uint64 // how many sets of counterWays the counters have

	stopFeed  context.CancelFunc
	feedDone  chan struct{}
	closeOnce sync.Once
	closeErr  error
}

// Defaults for RedisConfig.
const (
	DefaultRedisKeyPrefix       = "mailgate:"
	DefaultRedisTimeout         = 2 * time.Second
	DefaultRedisStaleAfter      = 5 * time.Second
	DefaultRedisRevocationBytes = 64 << 20
	DefaultRedisCounters        = 1 << 18
	DefaultRedisAckTimeout      = time.Second
)

// NewRedis connects to Redis, loads the whole revocation stream into the
// local set and starts the feed that keeps it current; Close stops it. The
// load happens before NewRedis returns, so a new store (after every Caddy
// reload) never turns requests away while it catches up, and a Redis that
// cannot be reached is reported here rather than as refused requests. log
// receives the feed's losses and recoveries; nil discards them.
func NewRedis(cfg RedisConfig, log *zap.Logger) (*Redis, error) {
	if err := checkDeployment(cfg); err != nil {
		return nil, err
	}
	if cfg.KeyPrefix == "" {
		cfg.KeyPrefix = DefaultRedisKeyPrefix
	}
	if cfg.AckTimeout == 0 {
		cfg.AckTimeout = DefaultRedisAckTimeout
	}
	if cfg.MinReplicas < 0 || cfg.AckTimeout < 0 {
		return nil, errors.New("ticket: redis min replicas and ack timeout must be positive")
	}
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = DefaultRedisTimeout
	}
	if cfg.ReadTimeout == 0 {
		cfg.ReadTimeout = DefaultRedisTimeout
	}
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = DefaultRedisTimeout
	}
	if cfg.StaleAfter == 0 {
		cfg.StaleAfter = DefaultRedisStaleAfter
	}
	if cfg.RevocationMemory == 0 {
		cfg.RevocationMemory = DefaultRedisRevocationBytes
	}
	if cfg.Counters == 0 {
		cfg.Counters = DefaultRedisCounters
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if log == nil {
		log = zap.NewNop()
	}
	if cfg.DialTimeout < 0 || cfg.ReadTimeout < 0 || cfg.WriteTimeout < 0 {
		return nil, errors.New("ticket: redis timeouts must be positive")
	}
	if cfg.PoolSize < 0 || cfg.PoolSize == 1 {
		return nil, fmt.Errorf("ticket: redis pool size %d: the revocation feed holds a connection, use 0 (default) or at least 2", cfg.PoolSize)
	}
	if cfg.MinReplicas > 0 && cfg.AckTimeout >= cfg.ReadTimeout {
		return nil, fmt.Errorf("ticket: redis ack timeout %s must be shorter than the read timeout %s, which would cut its WAIT short", cfg.AckTimeout, cfg.ReadTimeout)
	}
	if cfg.StaleAfter <= feedBlock+cfg.ReadTimeout {
		return nil, fmt.Errorf("ticket: redis stale_after %s must exceed %s (the feed's blocking read plus read timeout)", cfg.StaleAfter, feedBlock+cfg.ReadTimeout)
	}
	if cfg.RevocationMemory < 0 {
		return nil, fmt.Errorf("ticket: redis revocation memory %d must be positive", cfg.RevocationMemory)
	}
	if cfg.Counters < counterWays {
		return nil, fmt.Errorf("ticket: redis counters %d must be at least %d", cfg.Counters, counterWays)
	}

	client := newRedisClient(cfg)
	prefix := cfg.KeyPrefix
	cluster, _ := client.(*redis.ClusterClient)
	if cluster != nil {
		prefix = clusterPrefix(prefix)
	}
	r := &Redis{
		client:      client,
		cluster:     cluster,
		minReplicas: cfg.MinReplicas,
		ackTimeout:  cfg.AckTimeout,
		prefix:      prefix,
		stream:      prefix + "revocations",
		readTimeout: cfg.ReadTimeout,
		now:         cfg.Now,
		staleAfter:  int64(cfg.StaleAfter),
		log:         log,
		revoked:     newMarks(cfg.RevocationMemory),
		counterSets: uint64(cfg.Counters / counterWays),
		feedDone:    make(chan struct{}),
	}
	if err := r.loadCounterSalt(context.Background()); err != nil {
		_ = client.Close()
		return nil, err
	}
	lastID, err := r.load(context.Background())
	if err != nil {
		_ = client.Close()
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.stopFeed = cancel
	go r.follow(ctx, lastID)
	r.checkPersistence()
	return r, nil
}

// Put implements Store with SET PX: one command, so atomic.
func (r *Redis) Put(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := checkTicketTTL(ttl); err != nil {
		return err
	}
	var cmd *redis.StatusCmd
	ack := r.write(ctx, r.prefix+key, func(c redis.Cmdable) { cmd = c.Set(ctx, r.prefix+key, value, roundMillis(ttl)) })
	if err := cmd.Err(); err != nil {
		return redisError("SET", err)
	}
	return ack
}

// putOwnedScript deletes the owner's previous ticket and stores the new one
// and the owner's pointer to it. Redis runs a script without interleaving
// any other command, which is what makes two concurrent PutOwned for one
// owner leave one live ticket. The pointer holds the ticket's key without
// the prefix, so a script can only ever delete inside its own prefix.
//
// KEYS[1] owner, KEYS[2] ticket; ARGV[1] value, ARGV[2] unprefixed ticket
// key, ARGV[3] ttl in ms, ARGV[4] prefix.
var putOwnedScript = redis.NewScript(`
local prev = redis.call('GET', KEYS[1])
if prev then
	redis.call('DEL', ARGV[4] .. prev)
end
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[3])
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
`)

// PutOwned implements Store with one Lua script (GET owner, DEL previous
// ticket, SET ticket PX, SET owner PX), atomic because Redis runs a script
// alone.
func (r *Redis) PutOwned(ctx context.Context, owner, key string, value []byte, ttl time.Duration) error {
	if err := checkTicketTTL(ttl); err != nil {
		return err
	}
	keys := []string{r.prefix + owner, r.prefix + key}
	var cmd *redis.Cmd
	ack := r.write(ctx, keys[0], func(c redis.Cmdable) {
		cmd = runScript(ctx, c, putOwnedScript, keys, value, key, roundMillis(ttl).Milliseconds(), r.prefix)
	})
	if err := cmd.Err(); err != nil {
		return redisError("PutOwned script", err)
	}
	return ack
}

// PutNew implements Store with SET NX PX: one command, so of concurrent
// PutNews from any instance exactly one stores its value.
func (r *Redis) PutNew(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	if err := checkTicketTTL(ttl); err != nil {
		return false, err
	}
	var cmd *redis.BoolCmd
	ack := r.write(ctx, r.prefix+key, func(c redis.Cmdable) { cmd = c.SetNX(ctx, r.prefix+key, value, roundMillis(ttl)) })
	ok, err := cmd.Result()
	if err != nil {
		return false, redisError("SET NX", err)
	}
	return ok, ack
}

// Get implements Store with GET.
func (r *Redis) Get(ctx context.Context, key string) ([]byte, error) {
	v, err := r.client.Get(ctx, r.prefix+key).Bytes()
	if err != nil {
		return nil, redisError("GET", err)
	}
	return v, nil
}

// Take implements Store with GETDEL: reading and deleting in one command is
// what lets exactly one of concurrent Takes, from any instance, get the
// value.
func (r *Redis) Take(ctx context.Context, key string) ([]byte, error) {
	var cmd *redis.StringCmd
	ack := r.write(ctx, r.prefix+key, func(c redis.Cmdable) { cmd = c.GetDel(ctx, r.prefix+key) })
	v, err := cmd.Bytes()
	if err != nil {
		return nil, redisError("GETDEL", err)
	}
	if ack != nil {
		// Taken on the primary, but a failover could bring it back: the
		// caller must not act on it.
		return nil, ack
	}
	return v, nil
}

// Delete implements Store with DEL.
func (r *Redis) Delete(ctx context.Context, key string) error {
	var cmd *redis.IntCmd
	ack := r.write(ctx, r.prefix+key, func(c redis.Cmdable) { cmd = c.Del(ctx, r.prefix+key) })
	if err := cmd.Err(); err != nil {
		return redisError("DEL", err)
	}
	return ack
}

// Mark implements Store with SET 1 NX PX: Redis sets the key only if it is
// absent (an expired key is absent) and says whether it did, in one
// command, so of concurrent Marks exactly one reports true.
func (r *Redis) Mark(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	if ttl <= 0 {
		return false, fmt.Errorf("ticket: marker ttl %s must be positive", ttl)
	}
	var cmd *redis.BoolCmd
	ack := r.write(ctx, r.prefix+key, func(c redis.Cmdable) { cmd = c.SetNX(ctx, r.prefix+key, 1, roundMillis(ttl)) })
	ok, err := cmd.Result()
	if err != nil {
		return false, redisError("SET NX", err)
	}
	if ack != nil {
		// A marker a failover could undo vouches for nothing.
		return false, ack
	}
	return ok, nil
}

// Marked implements Store with EXISTS.
func (r *Redis) Marked(ctx context.Context, key string) (bool, error) {
	n, err := r.client.Exists(ctx, r.prefix+key).Result()
	if err != nil {
		return false, redisError("EXISTS", err)
	}
	return n == 1, nil
}

// Close implements Store: it stops the revocation feed and closes the
// connections. Closing the client also ends the feed's blocking read at
// once instead of after its block. Calling it again is harmless.
func (r *Redis) Close() error {
	r.closeOnce.Do(func() {
		r.stopFeed()
		r.closeErr = r.client.Close()
		<-r.feedDone
	})
	if r.closeErr != nil {
		return fmt.Errorf("ticket: closing redis: %w", r.closeErr)
	}
	return nil
}

// checkTicketTTL keeps Redis tickets within the same bounds as the memory
// store's, so a configuration that works on one works on the other.
func checkTicketTTL(ttl time.Duration) error {
	if ttl <= 0 || ttl > maxLifetime {
		return fmt.Errorf("ticket: ttl %s out of range (0, %s]", ttl, maxLifetime)
	}
	return nil
}

// roundMillis rounds d up to Redis's expiry resolution, so a positive ttl
// never becomes 0 (an error for PX) or expires early.
func roundMillis(d time.Duration) time.Duration {
	return (d + time.Millisecond - 1).Truncate(time.Millisecond)
}

// redisError maps Redis's "no such key" to ErrNotFound and wraps anything
// else. Only a reply from Redis can be redis.Nil, so an unreachable Redis
// is always an error and never a miss that would admit someone.
func redisError(op string, err error) error {
	if errors.Is(err, redis.Nil) {
		return ErrNotFound
	}
	return fmt.Errorf("ticket: redis %s: %w", op, err)
}

var _ Store = (*Redis)(nil)
