package caddymodule

import (
	"context"
	"errors"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/mailgate/caddy-mailgate/internal/ticket"
)

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
