package ticket

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

// BenchmarkMillionPendingLinks measures what 1,000,000 pending sign-in links
// cost the memory store: each a ticket shaped like the link flow's (a
// SHA-256 key, an owner pointer, a ~100-byte JSON payload), with a budget
// large enough to hold them with room to spare and with the budget the
// goal names. Run it alone:
//
//	go test -run x -bench MillionPendingLinks -benchtime 1x ./internal/ticket
//
// It reports, once the store is full and after a GC: the Go heap the store
// holds (MiB-heap, and B/link), and the memory the process holds from the
// OS for it (MiB-sys: Sys less what the runtime has returned, close to
// RSS), which also counts what bigcache's queues left behind while they
// grew. It fails if any of 1,000 links spread over the range, the first
// and the last among them, was dropped.
func BenchmarkMillionPendingLinks(b *testing.B) {
	for _, budget := range []int64{1 << 30, 256 << 20} {
		b.Run(fmt.Sprintf("max_memory=%dMiB", budget>>20), func(b *testing.B) {
			benchmarkPendingLinks(b, budget)
		})
	}
}

func benchmarkPendingLinks(b *testing.B, budget int64) {
	const links, samples = 1_000_000, 1_000
	ctx := context.Background()
	payload := []byte(`{"email":"someone.with.a.name@example.com","return":"/reports/2026/q3?tab=summary","locale":"en-GB"}`)
	for range b.N {
		var before, after runtime.MemStats
		// What earlier runs left is given back first, so that MiB-sys
		// counts this store only.
		debug.FreeOSMemory()
		runtime.ReadMemStats(&before)
		m, err := NewMemory(budget, time.Now)
		if err != nil {
			b.Fatal(err)
		}
		for i := range links {
			owner, key := pendingLink(i)
			if err := m.PutOwned(ctx, owner, key, payload, 10*time.Minute); err != nil {
				b.Fatal(err)
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		for s := range samples {
			i := s * (links - 1) / (samples - 1) // 0 to links-1
			if _, key := pendingLink(i); !live(m, key) {
				b.Fatalf("link %d of %d was dropped: max_memory %dMiB does not hold them", i, links, budget>>20)
			}
		}
		heap := float64(after.HeapAlloc - before.HeapAlloc)
		b.ReportMetric(heap/(1<<20), "MiB-heap")
		b.ReportMetric(heap/links, "B/link")
		b.ReportMetric(float64((after.Sys-after.HeapReleased)-(before.Sys-before.HeapReleased))/(1<<20), "MiB-sys")
		m.Close()
	}
}

// pendingLink returns the owner and ticket keys of link i, as the link flow
// makes them.
func pendingLink(i int) (owner, key string) {
	o := sha256.Sum256(fmt.Appendf(nil, "owner %d", i))
	k := sha256.Sum256(fmt.Appendf(nil, "secret %d", i))
	return "link-of:" + hex.EncodeToString(o[:]), "link:" + hex.EncodeToString(k[:])
}

func live(s Store, key string) bool {
	_, err := s.Get(context.Background(), key)
	return err == nil
}
