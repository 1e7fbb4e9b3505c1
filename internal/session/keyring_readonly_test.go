package session

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/mailgate/caddy-mailgate/internal/memstorage"
)

// readOnly is a storage that refuses every lock and write, as a read-only
// mount or replica does; writes counts the attempts.
type readOnly struct {
	*memstorage.Storage
	writes int
}

var errReadOnly = errors.New("read-only file system")

func (s *readOnly) Store(context.Context, string, []byte) error { s.writes++; return errReadOnly }
func (s *readOnly) Lock(context.Context, string) error          { s.writes++; return errReadOnly }

// TestKeyRingLoadsFromReadOnlyStorage: an instance that starts on a storage
// it cannot write to, where the ring already is, reads the ring without
// trying to lock or write anything, and holds the same keys; rotating has
// to wait, and says why.
func TestKeyRingLoadsFromReadOnlyStorage(t *testing.T) {
	ctx := context.Background()
	st := memstorage.New()
	first, err := LoadKeyRing(ctx, st, "keys", time.Now)
	if err != nil {
		t.Fatal(err)
	}
	ro := &readOnly{Storage: st}
	ring, err := LoadKeyRing(ctx, ro, "keys", time.Now)
	if err != nil {
		t.Fatalf("loading an existing ring from read-only storage: %v", err)
	}
	if ro.writes != 0 {
		t.Errorf("loading an existing ring tried %d locks or writes, want 0", ro.writes)
	}
	if ring.KeyID() != first.KeyID() || string(ring.JWKS()) != string(first.JWKS()) {
		t.Fatal("the ring read from read-only storage holds other keys")
	}
	if _, err := ring.Rotate(ctx, time.Minute, time.Hour); !errors.Is(err, errReadOnly) {
		t.Fatalf("rotating on read-only storage: %v, want the storage's error", err)
	}
	if ring.KeyID() != first.KeyID() {
		t.Fatal("a failed rotation changed the signing key")
	}
}
