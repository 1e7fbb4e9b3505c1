package session

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
)

// TestInstancesStartingTogetherShareOneKeyRing: instances that start at the
// same moment on an empty shared storage end up with one key ring, not one
// each that rejects the others' sessions. Each instance has its own storage
// value over the same folder, as separate processes would; the storage's
// lock (lock files in the folder) is what keeps them apart.
func TestInstancesStartingTogetherShareOneKeyRing(t *testing.T) {
	dir := t.TempDir()
	const instances = 8
	var kids [instances]string
	var wg sync.WaitGroup
	for i := range instances {
		wg.Go(func() {
			ring, err := LoadKeyRing(context.Background(), &certmagic.FileStorage{Path: dir}, "mailgate/default/keys.json", time.Now)
			if err != nil {
				t.Errorf("instance %d: %v", i, err)
				return
			}
			kids[i] = ring.KeyID()
		})
	}
	wg.Wait()
	for i := 1; i < instances; i++ {
		if kids[i] != kids[0] {
			t.Fatalf("instances hold different key rings: %v", kids)
		}
	}
}
