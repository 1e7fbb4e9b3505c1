package caddymodule

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
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

	// Address is the Redis server, `host:port`. Required for the redis
	// store. Redis 6.2 or later, a single server or an endpoint in front of
	// a primary (not Redis Cluster), run with `maxmemory-policy
	// noeviction` and persistence.
	Address string `json:"address,omitempty"`

	// Username is the Redis ACL user; empty for the default user.
	Username string `json:"username,omitempty"`

	// Password authenticates to Redis. Placeholders such as
	// `{env.REDIS_PASSWORD}` are replaced; one that is empty in Caddy's
	// environment is a config error.
	Password string `json:"password,omitempty"`

	// DB is the Redis database number. Default: 0.
	DB int `json:"db,omitempty"`

	// TLS connects to Redis over TLS, checking its certificate against
	// the system's roots and Address's host name.
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
	redisSet := s.Address != "" || s.Username != "" || s.Password != "" || s.DB != 0 || s.TLS || s.KeyPrefix != "" || s.Timeout != 0 || s.Counters != 0
	switch s.Type {
	case "memory":
		if redisSet {
			return errors.New("mailgate: store memory: address, username, password, db, tls, key_prefix, timeout and counters are for store redis")
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
		if _, _, err := net.SplitHostPort(s.Address); err != nil {
			return fmt.Errorf("mailgate: store redis address %q: want host:port", s.Address)
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

// newStore builds the store these settings describe for realm.
func (s StoreConfig) newStore(realm string, logger *zap.Logger) (ticket.Store, error) {
	if s.Type == "memory" {
		return ticket.NewMemory(s.MaxMemory, now)
	}
	password, err := expandSecret("store redis password", s.Password)
	if err != nil {
		return nil, err
	}
	cfg := ticket.RedisConfig{
		Address: s.Address, Username: s.Username, Password: password, DB: s.DB,
		KeyPrefix:   s.KeyPrefix + realm + ":",
		DialTimeout: time.Duration(s.Timeout), ReadTimeout: time.Duration(s.Timeout), WriteTimeout: time.Duration(s.Timeout),
		Counters: s.Counters,
		Now:      now,
	}
	if s.TLS {
		host, _, _ := net.SplitHostPort(s.Address)
		cfg.TLS = &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	}
	store, err := ticket.NewRedis(cfg, logger)
	if err != nil {
		return nil, fmt.Errorf("mailgate: store redis at %s: %w", s.Address, err)
	}
	return store, nil
}

func (s StoreConfig) String() string {
	if s.Type == "redis" {
		return fmt.Sprintf("redis store at %s, db %d, key_prefix %q", s.Address, s.DB, s.KeyPrefix)
	}
	return fmt.Sprintf("%s store, max_memory %s", s.Type, humanize.IBytes(uint64(s.MaxMemory)))
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
