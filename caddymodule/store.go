package caddymodule

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"reflect"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/dustin/go-humanize"
	"go.uber.org/zap"

	"github.com/mailgate/caddy-mailgate/internal/ticket"
)

// StoreConfig chooses the ticket store: where pending links and codes,
// used DPoP proofs, rate-limit counters and revoked sessions live.
type StoreConfig struct {
	// Type is `memory` (the default: inside this Caddy process; it
	// survives config reloads, not restarts) or `redis` (shared by every
	// Caddy instance that names the same Redis: the store for a cluster).
	Type string `json:"type,omitempty"`

	// MaxMemory bounds the memory store, in bytes; at least 2MiB. Three
	// sixteenths hold markers and revocations (revoked sessions, used
	// DPoP proofs), which are never dropped to make room: when full,
	// logouts and API calls answer 503 until older entries expire. A
	// sixteenth holds the rate-limit counters, 24 bytes each, which never
	// refuse: a new subject takes the place of a low count (174,760
	// counters at 64MiB). The rest, in whole MiB, holds pending links and
	// codes in bigcache, about 160 bytes a link, with bigcache's index on
	// top, outside this budget: 20 to 40 bytes an entry, two entries a
	// link. When it is full the oldest are dropped, and their owners must
	// ask again. Default: 64MiB, which holds about 300,000 links; 256MiB
	// holds 1.2 million. All of it is Go heap, and bigcache's share is
	// made at once, so Go's collector paces itself as if it were full:
	// without a GOMEMLIMIT, request garbage may take about as much RSS
	// again before a collection (see docs/performance.md). Memory store
	// only.
	MaxMemory int64 `json:"max_memory,omitempty"`

	// Address is the Redis server, `host:port`: a single server or an
	// endpoint in front of a primary. The redis store needs exactly one of
	// address, sentinel (with master_name) and cluster. Redis 6.2 or later,
	// run with `maxmemory-policy noeviction` and persistence.
	Address string `json:"address,omitempty"`

	// Sentinel lists Redis Sentinels, `host:port` each, that watch the
	// primary named MasterName: mailgate asks them where the primary is
	// and follows it when they fail over to a replica. See
	// docs/operations-redis.md.
	Sentinel []string `json:"sentinel,omitempty"`

	// MasterName is the primary's name in the sentinels' configuration
	// (`sentinel monitor <name> ...`). Required with sentinel.
	MasterName string `json:"master_name,omitempty"`

	// SentinelUsername and SentinelPassword authenticate to the sentinels
	// when they require it (`requirepass` or an ACL user in
	// sentinel.conf); Username and Password are for the data nodes.
	// Placeholders are replaced in SentinelPassword as in Password.
	SentinelUsername string `json:"sentinel_username,omitempty"`
	SentinelPassword string `json:"sentinel_password,omitempty"`

	// Cluster lists some nodes of a Redis Cluster, `host:port` each;
	// mailgate discovers the rest. All of a realm's keys share one hash
	// slot (the key prefix and realm in braces), so its scripts run on a
	// cluster. db must be 0.
	Cluster []string `json:"cluster,omitempty"`

	// MinReplicasAck, when above 0, makes each write that must survive a
	// failover (pending links and codes, their use, used DPoP proofs,
	// attempts at a code, logouts) wait until that many replicas have
	// acknowledged it (Redis WAIT), for at most AckTimeout; if they do not,
	// the request is refused (503) instead of reporting done what a
	// failover could undo. Set to the number of replicas, every write
	// reported done is on whichever replica Sentinel promotes; writes then
	// need that many live replicas, so after a failover they answer 503
	// until the dead node is back as a replica (see
	// docs/operations-redis.md). Default: 0, don't wait (Redis replicates
	// asynchronously; a failover can lose the writes not yet replicated).
	MinReplicasAck int `json:"min_replicas_ack,omitempty"`

	// AckTimeout bounds the wait of MinReplicasAck; it must be shorter
	// than Timeout. Default: 1s, or half of Timeout when that is shorter.
	AckTimeout caddy.Duration `json:"ack_timeout,omitempty"`

	// Username is the Redis ACL user; empty for the default user.
	Username string `json:"username,omitempty"`

	// Password authenticates to Redis. Placeholders such as
	// `{env.REDIS_PASSWORD}` are replaced; one that is empty in Caddy's
	// environment is a config error.
	Password string `json:"password,omitempty"`

	// DB is the Redis database number. Default: 0.
	DB int `json:"db,omitempty"`

	// TLS connects to Redis over TLS, checking its certificate against
	// the system's roots and the name of the host dialled (Address, each
	// sentinel and the primary it names, each cluster node).
	TLS bool `json:"tls,omitempty"`

	// KeyPrefix starts every key mailgate writes in Redis; the realm's name
	// and a colon follow it, so realms sharing a Redis share nothing.
	// Default: `mailgate:`.
	KeyPrefix string `json:"key_prefix,omitempty"`

	// Timeout bounds connecting to Redis and each command, so that a Redis
	// that is down fails a request (503) within seconds. Default: 2s.
	Timeout caddy.Duration `json:"timeout,omitempty"`

	// Counters is how many rate-limit counters the realm keeps in Redis
	// at most, 1024 to 16777216, in sets of four; past that a new subject
	// takes the place of a low count instead of growing Redis, so a flood
	// of distinct IPs or addresses cannot fill a noeviction Redis. A set
	// takes about 200 bytes. Default: 262144 (about 13 MiB).
	Counters int `json:"counters,omitempty"`
}

// applyDefaults fills in and checks the store settings.
func (s *StoreConfig) applyDefaults() error {
	if s.Type == "" {
		s.Type = "memory"
	}
	redisSet := s.Address != "" || s.Username != "" || s.Password != "" || s.DB != 0 || s.TLS || s.KeyPrefix != "" || s.Timeout != 0 || s.Counters != 0 ||
		len(s.Sentinel) > 0 || s.MasterName != "" || s.SentinelUsername != "" || s.SentinelPassword != "" || len(s.Cluster) > 0 || s.MinReplicasAck != 0 || s.AckTimeout != 0
	switch s.Type {
	case "memory":
		if redisSet {
			return errors.New("mailgate: store memory: address, sentinel, cluster and the other connection settings are for store redis")
		}
		if s.MaxMemory == 0 {
			s.MaxMemory = defaultMaxMemory
		}
		if s.MaxMemory < ticket.MinMemory {
			return fmt.Errorf("mailgate: store max_memory %d bytes: must be at least 2MiB", s.MaxMemory)
		}
	case "redis":
		if s.MaxMemory != 0 {
			return errors.New("mailgate: store redis: max_memory is for store memory; Redis's own maxmemory bounds a redis store")
		}
		if err := s.checkDeployment(); err != nil {
			return err
		}
		if s.DB < 0 {
			return fmt.Errorf("mailgate: store redis db %d: must be 0 or more", s.DB)
		}
		if s.KeyPrefix == "" {
			s.KeyPrefix = ticket.DefaultRedisKeyPrefix
		}
		if s.Timeout == 0 {
			s.Timeout = caddy.Duration(ticket.DefaultRedisTimeout)
		}
		if t := time.Duration(s.Timeout); t < 100*time.Millisecond || t > time.Minute {
			return fmt.Errorf("mailgate: store redis timeout %s: must be between 100ms and 1m", t)
		}
		if s.MinReplicasAck < 0 {
			return fmt.Errorf("mailgate: store redis min_replicas_ack %d: must be 0 or more", s.MinReplicasAck)
		}
		if s.AckTimeout == 0 {
			s.AckTimeout = caddy.Duration(min(ticket.DefaultRedisAckTimeout, time.Duration(s.Timeout)/2))
		}
		if s.AckTimeout <= 0 || s.AckTimeout >= s.Timeout {
			return fmt.Errorf("mailgate: store redis ack_timeout %s: must be above 0 and shorter than timeout %s", time.Duration(s.AckTimeout), time.Duration(s.Timeout))
		}
		if s.Counters == 0 {
			s.Counters = ticket.DefaultRedisCounters
		}
		if s.Counters < 1024 || s.Counters > 1<<24 {
			return fmt.Errorf("mailgate: store redis counters %d: must be between 1024 and 16777216", s.Counters)
		}
	default:
		return fmt.Errorf("mailgate: store %q: unknown (known: memory, redis)", s.Type)
	}
	return nil
}

// checkDeployment requires exactly one of address, sentinel and cluster,
// each address host:port.
func (s *StoreConfig) checkDeployment() error {
	n := 0
	for _, set := range []bool{s.Address != "", len(s.Sentinel) > 0, len(s.Cluster) > 0} {
		if set {
			n++
		}
	}
	switch {
	case n == 0:
		return fmt.Errorf("mailgate: store redis address %q: want host:port, or sentinel (with master_name), or cluster", s.Address)
	case n > 1:
		return errors.New("mailgate: store redis: set one of address, sentinel and cluster, not several")
	}
	for _, a := range append(append([]string{s.Address}, s.Sentinel...), s.Cluster...) {
		if _, _, err := net.SplitHostPort(a); a != "" && err != nil {
			return fmt.Errorf("mailgate: store redis address %q: want host:port", a)
		}
	}
	switch {
	case len(s.Sentinel) > 0 && s.MasterName == "":
		return errors.New("mailgate: store redis sentinel: master_name is required")
	case len(s.Sentinel) == 0 && (s.MasterName != "" || s.SentinelUsername != "" || s.SentinelPassword != ""):
		return errors.New("mailgate: store redis: master_name, sentinel_username and sentinel_password go with sentinel")
	case len(s.Cluster) > 0 && s.DB != 0:
		return errors.New("mailgate: store redis cluster: db must be 0, a cluster has no other")
	case len(s.Cluster) > 0 && strings.ContainsAny(s.KeyPrefix, "{}"):
		return fmt.Errorf("mailgate: store redis cluster: key_prefix %q: no braces, mailgate makes the prefix the keys' hash tag", s.KeyPrefix)
	}
	return nil
}

// newStore builds the store these settings describe for realm.
func (s StoreConfig) newStore(realm string, logger *zap.Logger) (ticket.Store, error) {
	if s.Type == "memory" {
		return ticket.NewMemory(s.MaxMemory, now)
	}
	password, err := expandSecret("store redis password", s.Password)
	if err != nil {
		return nil, err
	}
	sentinelPassword, err := expandSecret("store redis sentinel_password", s.SentinelPassword)
	if err != nil {
		return nil, err
	}
	cfg := ticket.RedisConfig{
		Address: s.Address, Username: s.Username, Password: password, DB: s.DB,
		SentinelAddrs: s.Sentinel, MasterName: s.MasterName,
		SentinelUsername: s.SentinelUsername, SentinelPassword: sentinelPassword,
		ClusterAddrs: s.Cluster,
		MinReplicas:  s.MinReplicasAck, AckTimeout: time.Duration(s.AckTimeout),
		KeyPrefix:   s.KeyPrefix + realm + ":",
		DialTimeout: time.Duration(s.Timeout), ReadTimeout: time.Duration(s.Timeout), WriteTimeout: time.Duration(s.Timeout),
		Counters: s.Counters,
		Now:      now,
	}
	if s.TLS {
		cfg.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
		// One server's certificate is checked against its name; under
		// Sentinel or Cluster the nodes change, and go-redis checks each
		// against the host it dials.
		if s.Address != "" {
			cfg.TLS.ServerName, _, _ = net.SplitHostPort(s.Address)
		}
	}
	store, err := ticket.NewRedis(cfg, logger)
	if err != nil {
		return nil, fmt.Errorf("mailgate: store redis at %s: %w", s.where(), err)
	}
	return store, nil
}

func (s StoreConfig) String() string {
	if s.Type == "redis" {
		return fmt.Sprintf("redis store at %s, db %d, key_prefix %q, min_replicas_ack %d", s.where(), s.DB, s.KeyPrefix, s.MinReplicasAck)
	}
	return fmt.Sprintf("%s store, max_memory %s", s.Type, humanize.IBytes(uint64(s.MaxMemory)))
}

// same reports whether s and o build the same store, so that a reload can
// keep a running one.
func (s StoreConfig) same(o StoreConfig) bool {
	return reflect.DeepEqual(s, o)
}

// where names the Redis deployment, for messages.
func (s StoreConfig) where() string {
	switch {
	case len(s.Sentinel) > 0:
		return fmt.Sprintf("sentinel %s (master %s)", strings.Join(s.Sentinel, " "), s.MasterName)
	case len(s.Cluster) > 0:
		return "cluster " + strings.Join(s.Cluster, " ")
	}
	return s.Address
}

// fullLogger tells the operator when the store refuses a marker or a
// revocation for want of room: the logout or API call
// that needed it was answered 503, and only more memory (or waiting for
// older entries to expire) lets it through.
type fullLogger struct {
	ticket.Store
	logger *zap.Logger
}

func (s fullLogger) Mark(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	fresh, err := s.Store.Mark(ctx, key, ttl)
	s.check(err, "marker", key)
	return fresh, err
}

func (s fullLogger) Revoke(ctx context.Context, key string, ttl time.Duration) error {
	err := s.Store.Revoke(ctx, key, ttl)
	s.check(err, "revocation", key)
	return err
}

func (s fullLogger) RevokeBefore(ctx context.Context, key string, before time.Time, ttl time.Duration) error {
	err := s.Store.RevokeBefore(ctx, key, before, ttl)
	s.check(err, "revocation", key)
	return err
}

// check logs err if it is ErrFull, naming the entry's kind (the key's
// prefix, never the rest, which may be an address's hash or a session id).
func (s fullLogger) check(err error, what, key string) {
	if errors.Is(err, ticket.ErrFull) {
		kind, _, _ := strings.Cut(key, ":")
		s.logger.Error("the ticket store has no room for a new "+what+"; the request was refused with 503. Raise store max_memory",
			zap.String(what, kind))
	}
}
