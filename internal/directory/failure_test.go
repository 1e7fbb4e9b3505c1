package directory

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mailgate/caddy-mailgate/internal/memstorage"
)

// fillingStorage takes storesLeft more writes and then fails every one, as
// a disk that fills up does; it tracks the locks held, and, like a storage
// over the network, cannot release one with a context that is done.
type fillingStorage struct {
	*memstorage.Storage
	storesLeft int
	held       map[string]bool
	// onFull, if set, runs when a write fails.
	onFull func()
	// readOnly refuses locks too, as a read-only mount does.
	readOnly bool
}

func (s *fillingStorage) Store(ctx context.Context, key string, value []byte) error {
	if s.storesLeft == 0 {
		if s.onFull != nil {
			s.onFull()
		}
		return errors.New("no space left on device")
	}
	s.storesLeft--
	return s.Storage.Store(ctx, key, value)
}

func (s *fillingStorage) Lock(_ context.Context, name string) error {
	if s.readOnly {
		return errors.New("read-only file system")
	}
	s.held[name] = true
	return nil
}

func (s *fillingStorage) Unlock(ctx context.Context, name string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	delete(s.held, name)
	return nil
}

// TestCreationThatFailsMidwayLeavesNoOrphan: whichever write of a new
// user's fails, the storage holds no user record that the address does not
// lead to, and the next login completes the same user, with the username
// it would have had, not a second one.
func TestCreationThatFailsMidwayLeavesNoOrphan(t *testing.T) {
	ctx := context.Background()
	for writes := 0; writes < 3; writes++ {
		st := &fillingStorage{Storage: memstorage.New(), storesLeft: writes, held: map[string]bool{}}
		d := New(st, "mg", time.Now)
		if _, err := d.EnsureByEmail(ctx, "alice@example.com"); err == nil {
			t.Fatalf("after %d writes: the creation did not fail", writes)
		}
		if _, err := d.ByEmail(ctx, "alice@example.com"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("after %d writes: the half-created user is found: %v", writes, err)
		}
		if len(st.held) != 0 {
			t.Fatalf("after %d writes: locks still held: %v", writes, st.held)
		}
		st.storesLeft = -1
		u, err := d.EnsureByEmail(ctx, "alice@example.com")
		if err != nil || u.Username != "alice" {
			t.Fatalf("after %d writes, once there is room: %+v, %v; want the username alice", writes, u, err)
		}
		records := 0
		for _, k := range st.Keys() {
			if !strings.HasPrefix(k, "mg/users/") {
				continue
			}
			records++
			if k != d.userKey(u.ID) {
				t.Errorf("after %d writes: record %s is not the address's (%s)", writes, k, u.ID)
			}
		}
		if records != 1 {
			t.Errorf("after %d writes: %d user records, want 1", writes, records)
		}
	}
}

// TestLockIsReleasedWhenTheRequestIsGone: a person who gives up while the
// storage fails does not leave the address locked for the next login.
func TestLockIsReleasedWhenTheRequestIsGone(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st := &fillingStorage{Storage: memstorage.New(), storesLeft: 1, held: map[string]bool{}, onFull: cancel}
	if _, err := New(st, "mg", time.Now).EnsureByEmail(ctx, "alice@example.com"); err == nil {
		t.Fatal("the creation did not fail")
	}
	if len(st.held) != 0 {
		t.Fatalf("locks still held after the request was gone: %v", st.held)
	}
}

// TestExistingUserOnReadOnlyStorage: someone who has an account signs in
// while the storage takes no writes, not even a lock.
func TestExistingUserOnReadOnlyStorage(t *testing.T) {
	ctx := context.Background()
	st := &fillingStorage{Storage: memstorage.New(), storesLeft: -1, held: map[string]bool{}}
	d := New(st, "mg", time.Now)
	u, err := d.EnsureByEmail(ctx, "alice@example.com")
	if err != nil {
		t.Fatal(err)
	}
	st.storesLeft, st.readOnly = 0, true
	if got, err := d.EnsureByEmail(ctx, "alice@example.com"); err != nil || got != u {
		t.Fatalf("an existing user on read-only storage: %+v, %v", got, err)
	}
	if _, err := d.EnsureByEmail(ctx, "bob@example.com"); err == nil {
		t.Fatal("a new user was created on read-only storage")
	}
}
