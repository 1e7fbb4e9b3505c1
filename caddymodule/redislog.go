package caddymodule

import (
	"context"
	"fmt"
	"strings"

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

// routine are the starts of go-redis's messages that report normal work
// under Sentinel (which sentinel answered, which sentinels it found),
// logged at info; the rest (failed dials, a new master after a failover)
// at warn, where an operator looks.
var routine = []string{"sentinel: selected ", "sentinel: discovered new sentinel"}

func (redisLog) Printf(_ context.Context, format string, v ...any) {
	log := caddy.Log().Named("http.handlers.mailgate.redis")
	msg := fmt.Sprintf(format, v...)
	for _, p := range routine {
		if strings.HasPrefix(msg, p) {
			log.Info(msg)
			return
		}
	}
	log.Warn(msg)
}
