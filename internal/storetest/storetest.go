// Package storetest runs a test against each ticket store a realm may use,
// the memory store and Redis (a real redis-server, see internal/redistest),
// so that a check-then-act on the store is tried on both.
package storetest

import (
	"testing"
	"time"

	"github.com/mailgate/caddy-mailgate/internal/redistest"
	"github.com/mailgate/caddy-mailgate/internal/ticket"
)

// Each runs test as the subtests "memory" and "redis", each on a fresh,
// empty store that is closed when the subtest ends. The memory store keeps
// time by now; Redis keeps its own.
func Each(t *testing.T, now func() time.Time, test func(t *testing.T, s ticket.Store)) {
	t.Run("memory", func(t *testing.T) {
		m, err := ticket.NewMemory(ticket.MinMemory, now)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = m.Close() })
		test(t, m)
	})
	t.Run("redis", func(t *testing.T) {
		srv := redistest.Start(t)
		r, err := ticket.NewRedis(ticket.RedisConfig{Address: srv.Addr()}, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = r.Close() })
		test(t, r)
	})
}
