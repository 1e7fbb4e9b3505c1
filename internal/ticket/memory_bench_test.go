package ticket

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"runtime"
	"testing"
	"time"
)

// BenchmarkMillionPendingLinks measures what 1,000,000 pending sign-in links
// cost the memory store: each a ticket shaped like the link flow's (a
// SHA-256 key, an owner pointer, a ~100-byte JSON payload). Run it alone:
//
//	go test -run x -bench MillionPendingLinks -benchtime 1x ./internal/ticket
//
// It reports the Go heap the store holds once full, in MiB.
func BenchmarkMillionPendingLinks(b *testing.B) {
	const links = 1_000_000
	for range b.N {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		m, err := NewMemory(1<<30, time.Now)
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		payload := []byte(`{"email":"someone.with.a.name@example.com","return":"/reports/2026/q3?tab=summary","locale":"en-GB"}`)
		for i := range links {
			sum := sha256.Sum256(fmt.Appendf(nil, "secret %d", i))
			owner := sha256.Sum256(fmt.Appendf(nil, "owner %d", i))
			if err := m.PutOwned(ctx, "link-of:"+hex.EncodeToString(owner[:]), "link:"+hex.EncodeToString(sum[:]), payload, 10*time.Minute); err != nil {
				b.Fatal(err)
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		if _, err := m.Get(ctx, "link:"+func() string { s := sha256.Sum256([]byte("secret 0")); return hex.EncodeToString(s[:]) }()); err != nil {
			b.Fatalf("the first link was dropped: the store was too small for the measurement: %v", err)
		}
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/(1<<20), "MiB-heap")
		m.Close()
	}
}
