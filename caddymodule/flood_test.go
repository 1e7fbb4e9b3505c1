package caddymodule

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mailgate/caddy-mailgate/internal/redistest"
	"github.com/mailgate/caddy-mailgate/internal/ticket"
)

// TestAFloodOfSubjectsRefusesNobody floods the counters through Caddy, as a
// visitor with a routed IPv6 block does: every request from its own /48 and
// for its own made-up address at a domain that is not allowed, three times
// as many counters as the store holds, in the smallest memory store and in
// a Redis store with the fewest counters. Nobody may be refused for it: a
// new person from a fresh IP still gets a sign-in link through the form and
// a code through the API, and Redis holds no more than its counter sets.
func TestAFloodOfSubjectsRefusesNobody(t *testing.T) {
	t.Run("memory", func(t *testing.T) {
		e := startFlooded(t, "store memory {\n\t\t\tmax_memory 2MiB\n\t\t}")
		// Each request counts its /64, its /48 and its address: as many
		// requests as the store holds counters fill it three times over.
		flood(t, e, counterCapacity(t, 2<<20))
		signInAfterFlood(t, e)
	})
	t.Run("redis", func(t *testing.T) {
		srv := redistest.Start(t)
		e := startFlooded(t, redisStore(srv.Addr(), "key_prefix flood:", "counters 1024"))
		flood(t, e, 1024)
		signInAfterFlood(t, e)
		rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
		t.Cleanup(func() { rdb.Close() })
		keys, err := rdb.Keys(context.Background(), "flood:*:counters:*").Result()
		if err != nil {
			t.Fatal(err)
		}
		if len(keys) > 1024/4 {
			t.Fatalf("%d counter sets in Redis after the flood, want at most %d", len(keys), 1024/4)
		}
	})
}

// startFlooded starts Caddy with store, strict per-IP and per-address
// limits, and the client IP taken from X-Forwarded-For.
func startFlooded(t *testing.T, store string) *env {
	return startCaddyWith(t, func(*env) siteConfig {
		return siteConfig{
			Servers:  "trusted_proxies static 127.0.0.1/32",
			Mailgate: projectsConfig + "\n\t\t" + store,
			Limits: `limits {
			requests_per_ip 5 15m
			mails_per_address 5 15m
		}`,
		}
	})
}

// flood sends n code requests, each from its own /48 for its own address
// at a domain that is not allowed (so no mail goes out), and fails the test
// if any is refused.
func flood(t *testing.T, e *env, n int) {
	t.Helper()
	client := e.browser(t).client
	var refused atomic.Int64
	var wg sync.WaitGroup
	next := make(chan int)
	for range 8 {
		wg.Go(func() {
			for i := range next {
				req, _ := http.NewRequest(http.MethodPost, e.base+"/.mailgate/login/email/request?projectId="+gameProject,
					strings.NewReader(fmt.Sprintf(`{"email":"flood%d@elsewhere.example"}`, i)))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("X-Forwarded-For", fmt.Sprintf("2001:%x:%x::1", 0x4000+i>>16, i&0xffff))
				resp, err := client.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					refused.Add(1)
				}
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	if r := refused.Load(); r != 0 {
		// Before counters forgot instead of refusing, the store was full
		// after a few hundred and every later request got 503.
		t.Fatalf("%d of %d flood requests were refused; each came from its own network for its own address", r, n)
	}
}

// signInAfterFlood signs a new person in by link and another by code.
func signInAfterFlood(t *testing.T, e *env) {
	t.Helper()
	fresh := e.browser(t)
	fresh.login("alice@example.com", "/")
	if r := fresh.get("/"); r.StatusCode != http.StatusOK {
		t.Fatalf("a new person after the flood, signed in by link: %s", r.Status)
	}
	id := e.startCode(t, "", `{"email":"bob@corp.example"}`)
	if r, _ := e.confirmCode(t, "bob@corp.example", id, e.mailedCode(t, "bob@corp.example")); r.StatusCode != http.StatusOK {
		t.Fatalf("a new person after the flood, signed in by code: %s %s", r.Status, r.body)
	}
}

// counterCapacity is how many counters a memory store of maxMemory holds.
func counterCapacity(t *testing.T, maxMemory int64) int {
	m, err := ticket.NewMemory(maxMemory, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	return m.CounterCapacity()
}
