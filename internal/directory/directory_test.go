package directory

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mailgate/caddy-mailgate/internal/memstorage"
)

func TestEnsureByEmailCreatesOnce(t *testing.T) {
	ctx := context.Background()
	st := memstorage.New()
	created := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	d := New(st, "mailgate/default", func() time.Time { return created })

	if _, err := d.ByEmail(ctx, "alice@example.com"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("before creation: err = %v", err)
	}
	u, err := d.EnsureByEmail(ctx, "alice@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if u.ID == "" || u.Email != "alice@example.com" || u.Status != StatusActive || !u.Created.Equal(created) {
		t.Fatalf("created user = %+v", u)
	}
	again, err := d.EnsureByEmail(ctx, "alice@example.com")
	if err != nil || again.ID != u.ID {
		t.Fatalf("second Ensure = %+v, %v; want the same id %s", again, err, u.ID)
	}
	// A fresh Directory over the same storage (another instance, or after a
	// restart) finds the user.
	other := New(st, "mailgate/default", time.Now)
	if got, err := other.ByEmail(ctx, "alice@example.com"); err != nil || got != u {
		t.Fatalf("reload: %+v, %v", got, err)
	}
	for _, k := range st.Keys() {
		if strings.Contains(k, "alice") {
			t.Fatalf("storage key %q holds the address", k)
		}
	}
}

func TestUsernamesAreUniqueSlugs(t *testing.T) {
	ctx := context.Background()
	d := New(memstorage.New(), "mg", time.Now)
	want := map[string]string{
		"alice@example.com":       "alice",
		"alice@other.example":     "alice-2",
		"Alice.Smith+x@corp.test": "alice-smith-x",
		"___@example.com":         "user",
	}
	for _, email := range []string{"alice@example.com", "alice@other.example", "Alice.Smith+x@corp.test", "___@example.com"} {
		n, _ := NormalizeEmail(email)
		u, err := d.EnsureByEmail(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		if u.Username != want[email] {
			t.Errorf("%s: username %q, want %q", email, u.Username, want[email])
		}
		got, err := d.ByUsername(ctx, u.Username)
		if err != nil || got.ID != u.ID {
			t.Errorf("ByUsername(%q) = %+v, %v", u.Username, got, err)
		}
	}
	for _, bad := range []string{"", "nobody", "../etc/passwd", "Alice"} {
		if _, err := d.ByUsername(ctx, bad); !errors.Is(err, ErrNotFound) {
			t.Errorf("ByUsername(%q): err = %v, want ErrNotFound", bad, err)
		}
	}
}

func TestSetPassword(t *testing.T) {
	ctx := context.Background()
	at := time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)
	d := New(memstorage.New(), "mg", func() time.Time { return at })
	u, _ := d.EnsureByEmail(ctx, "alice@example.com")
	if err := d.SetPassword(ctx, u.ID, "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA"); err != nil {
		t.Fatal(err)
	}
	got, _ := d.ByEmail(ctx, "alice@example.com")
	if got.PasswordHash != "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA" || !got.PasswordSet.Equal(at) || got.Username != u.Username {
		t.Fatalf("after SetPassword: %+v", got)
	}
	if err := d.SetPassword(ctx, "no-such-id", "x"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown user: %v", err)
	}
}
