package caddymodule

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/mailgate/caddy-mailgate/internal/directory"
	"github.com/mailgate/caddy-mailgate/internal/flow"
	"github.com/mailgate/caddy-mailgate/internal/memstorage"
	"github.com/mailgate/caddy-mailgate/internal/session"
)

// countingStorage counts the reads of users' records.
type countingStorage struct {
	*memstorage.Storage
	loads int
}

func (s *countingStorage) Load(ctx context.Context, key string) ([]byte, error) {
	s.loads++
	return s.Storage.Load(ctx, key)
}

// A user read for one session's first sight serves the next ones for
// identityTTL, and no longer: a user disabled meanwhile is refused once it
// has passed.
func TestIdentitiesAreReadOncePerTTL(t *testing.T) {
	ctx := context.Background()
	st := &countingStorage{Storage: memstorage.New()}
	clock := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	now := func() time.Time { return clock }
	users := directory.New(st, "mailgate/default", now)
	u, err := users.EnsureByEmail(ctx, "alice@example.com")
	if err != nil {
		t.Fatal(err)
	}
	ids := newIdentities(users, flow.NewAllowlist([]string{"alice@example.com"}, nil), now)

	st.loads = 0
	for range 3 {
		if id, err := ids.Identity(ctx, u.ID); err != nil || id.Email != "alice@example.com" {
			t.Fatalf("identity: %+v, %v", id, err)
		}
	}
	if st.loads != 1 {
		t.Fatalf("%d storage reads for three first sights within %s, want 1", st.loads, identityTTL)
	}

	// Disabled in storage, as another instance would.
	u.Status = directory.StatusDisabled
	raw, _ := json.Marshal(u)
	if err := st.Store(ctx, "mailgate/default/users/"+u.ID+".json", raw); err != nil {
		t.Fatal(err)
	}
	clock = clock.Add(identityTTL - time.Second)
	if _, err := ids.Identity(ctx, u.ID); err != nil {
		t.Fatalf("within the ttl: %v", err)
	}
	clock = clock.Add(time.Second)
	for range 2 {
		if _, err := ids.Identity(ctx, u.ID); !errors.Is(err, session.ErrInvalid) {
			t.Fatalf("a disabled user after the ttl: %v, want ErrInvalid", err)
		}
	}
	if _, err := ids.Identity(ctx, "no-such-user"); !errors.Is(err, session.ErrInvalid) {
		t.Fatalf("an unknown user: %v, want ErrInvalid", err)
	}
}
