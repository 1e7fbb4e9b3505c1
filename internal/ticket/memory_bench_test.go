package ticket

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
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
// holds (MiB-heap, which counts bigcache's queues whole, as made at their
// hard maximum, written or not, and so what the collector paces itself
// by), and what the process's RSS grew by (MiB-rss, and B/link), which
// counts only the pages written, and the garbage the collector let pile up
// meanwhile; MiB-rss-store is that growth once the garbage is given back to
// the OS (debug.FreeOSMemory), what the store itself keeps resident. It
// fails if any of 1,000 links spread over
// the range, the first and the last among them, was dropped. Linux only
// (RSS from /proc).
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
		// What earlier runs left is given back first, so that MiB-rss
		// counts this store only.
		debug.FreeOSMemory()
		runtime.ReadMemStats(&before)
		rss0 := rss(b)
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
		grown := float64(rss(b) - rss0)
		b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/(1<<20), "MiB-heap")
		b.ReportMetric(grown/(1<<20), "MiB-rss")
		b.ReportMetric(grown/links, "B/link")
		debug.FreeOSMemory()
		b.ReportMetric(float64(rss(b)-rss0)/(1<<20), "MiB-rss-store")
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

// rss is this process's resident set size.
func rss(b *testing.B) int64 {
	raw, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		b.Skip("no /proc/self/statm: ", err)
	}
	var size, resident int64
	if _, err := fmt.Sscan(string(raw), &size, &resident); err != nil {
		b.Fatal(err)
	}
	return resident * int64(os.Getpagesize())
}
