package caddymodule

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

// TestRedisOwnLinesGoToCaddysLog: a Redis that cannot be reached makes
// go-redis log a dial failure; it must reach Caddy's JSON log under
// mailgate's name, not the standard logger's raw line.
func TestRedisOwnLinesGoToCaddysLog(t *testing.T) {
	e := startCaddyWith(t, func(e *env) siteConfig {
		return siteConfig{Global: e.logBlock("caddy.log", "")}
	})
	// A client of the process's go-redis, pointed at a port nobody
	// listens on: its pool logs the failed dial.
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialerRetries: 1})
	defer c.Close()
	_ = c.Ping(context.Background()).Err()
	raw, err := os.ReadFile(filepath.Join(e.dir, "caddy.log"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if strings.Contains(line, `"logger":"http.handlers.mailgate.redis"`) && strings.Contains(line, "127.0.0.1:1") {
			return
		}
	}
	t.Fatalf("no line of go-redis's in Caddy's log:\n%s", raw)
}
