package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	"go.uber.org/zap"

	"github.com/mailgate/caddy-mailgate/internal/ticket"
)

// StoreConfig chooses the ticket store.
type StoreConfig struct {
	// Type is `memory`, the only store so far: it lives inside this Caddy
	// process and survives config reloads, not restarts.
	Type string `json:"type,omitempty"`

	// MaxMemory bounds the memory store, in bytes; at least 2MiB. A
	// quarter holds markers (revoked sessions, used DPoP proofs), which are
	// never dropped to make room: when that quarter is full, logouts and
	// API calls answer 503 until older markers expire. The rest holds
	// pending links and codes; when it is full the oldest are dropped, and
	// their owners must ask again. Default: 64MiB.
	MaxMemory int64 `json:"max_memory,omitempty"`
}

// applyDefaults fills in and checks the store settings.
func (s *StoreConfig) applyDefaults() error {
	if s.Type == "" {
		s.Type = "memory"
	}
	if s.Type != "memory" {
		return fmt.Errorf("mailgate: store %q: unknown (known: memory)", s.Type)
	}
	if s.MaxMemory == 0 {
		s.MaxMemory = defaultMaxMemory
	}
	if s.MaxMemory < ticket.MinMemory {
		return fmt.Errorf("mailgate: store max_memory %d bytes: must be at least 2MiB", s.MaxMemory)
	}
	return nil
}

// newStore builds the store these settings describe.
func (s StoreConfig) newStore() (*ticket.Memory, error) {
	return ticket.NewMemory(s.MaxMemory, now)
}

func (s StoreConfig) String() string {
	return fmt.Sprintf("%s store, max_memory %s", s.Type, humanize.IBytes(uint64(s.MaxMemory)))
}

// fullLogger tells the operator when the store refuses a marker, a
// revocation or a counter for want of room: the logout, API call or login
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

func (s fullLogger) Incr(ctx context.Context, key string, window time.Duration) (ticket.Count, error) {
	c, err := s.Store.Incr(ctx, key, window)
	s.check(err, "counter", key)
	return c, err
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
