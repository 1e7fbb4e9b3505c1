package caddymodule

import (
	"context"
	"fmt"

	"github.com/caddyserver/caddy/v2"
	"github.com/redis/go-redis/v9"
)

// go-redis writes its own messages (a dial that failed, a connection the
// pool dropped) to the standard logger, as raw "redis: … pool.go:770" lines
// in the middle of Caddy's JSON log. It has one logger per process, so it
// is set once, here, to one that writes through Caddy's current default
// logger each time: config reloads replace Caddy's logging, and a logger
// captured once could write to a closed sink.
func init() { redis.SetLogger(redisLog{}) }

// redisLog is go-redis's logger, writing to Caddy's log.
type redisLog struct{}

func (redisLog) Printf(_ context.Context, format string, v ...any) {
	caddy.Log().Named("http.handlers.mailgate.redis").Warn(fmt.Sprintf(format, v...))
}
