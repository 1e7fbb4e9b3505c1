package caddymodule

import (
	"sync"
	"testing"

	"github.com/mailgate/caddy-mailgate/internal/redistest"
)

// redisStore is the Caddyfile block of a Redis store at addr, with more
// lines of its own (key_prefix, timeout…) when given, indented for a
// mailgate block.
func redisStore(addr string, lines ...string) string {
	b := "store redis {\n\t\t\taddress " + addr
	for _, l := range lines {
		b += "\n\t\t\t" + l
	}
	return b + "\n\t\t}"
}

// eachStore runs test on the memory store and on a fresh redis-server,
// with the store's name and the Caddyfile lines that choose it (none for
// memory): what must hold in a cluster must hold on both.
func eachStore(t *testing.T, test func(t *testing.T, store, lines string)) {
	for _, store := range []string{"memory", "redis"} {
		t.Run(store, func(t *testing.T) {
			lines := ""
			if store == "redis" {
				lines = redisStore(redistest.Start(t).Addr())
			}
			test(t, store, lines)
		})
	}
}

// atOnce runs call(0) … call(n-1), each in a goroutine of its own, and
// waits for them all: the concurrency tests' fifty requests at once.
func atOnce(n int, call func(i int)) {
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			call(i)
		}()
	}
	wg.Wait()
}
