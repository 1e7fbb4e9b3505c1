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

// markLogger tells the operator when the store refuses a marker: the
// logout or API call that needed it was answered 503, and only more memory
// (or waiting for markers to expire) lets it through.
type markLogger struct {
	ticket.Store
	logger *zap.Logger
}

func (s markLogger) Mark(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	fresh, err := s.Store.Mark(ctx, key, ttl)
	if errors.Is(err, ticket.ErrFull) {
		kind, _, _ := strings.Cut(key, ":")
		s.logger.Error("the ticket store has no room for a new marker; the request was refused with 503. Raise store max_memory",
			zap.String("marker", kind))
	}
	return fresh, err
}
