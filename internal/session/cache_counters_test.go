package session

import (
	"context"
	"testing"
	"time"
)

// TestCacheCountersHearEveryLookup: a token's first request is a miss,
// each one after it a hit, and a token that does not verify a miss.
func TestCacheCountersHearEveryLookup(t *testing.T) {
	f := newFixture(t)
	var hits, misses int
	f.m = NewManager(Config{
		Signer:        f.signer(),
		TTL:           time.Hour,
		Revocations:   f.store,
		Identities:    users,
		CacheCounters: CacheCounters{Hit: func() { hits++ }, Miss: func() { misses++ }},
	})
	tok, _, err := f.m.Issue(alice.UserID)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := f.m.Verify(context.Background(), tok); err != nil {
			t.Fatal(err)
		}
	}
	if hits != 2 || misses != 1 {
		t.Fatalf("three requests of one token: %d hits, %d misses; want 2 and 1", hits, misses)
	}
	if _, err := f.m.Verify(context.Background(), "not a token"); err == nil {
		t.Fatal("garbage verified")
	}
	if misses != 2 {
		t.Fatalf("a token never seen: %d misses, want 2", misses)
	}
}
