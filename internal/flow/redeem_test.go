package flow

import (
	"context"
	"errors"
	"net/url"
	"testing"
	"time"

	"github.com/mailgate/caddy-mailgate/internal/directory"
	"github.com/mailgate/caddy-mailgate/internal/memstorage"
	"github.com/mailgate/caddy-mailgate/internal/ticket"
)

// readOnlyStorage is Caddy storage whose writes fail while readOnly is set,
// as a full disk or a read-only mount makes them.
type readOnlyStorage struct {
	*memstorage.Storage
	readOnly bool
}

var errReadOnly = errors.New("read-only file system")

func (s *readOnlyStorage) Store(ctx context.Context, key string, value []byte) error {
	if s.readOnly {
		return errReadOnly
	}
	return s.Storage.Store(ctx, key, value)
}

func (s *readOnlyStorage) Lock(ctx context.Context, name string) error {
	if s.readOnly {
		return errReadOnly
	}
	return s.Storage.Lock(ctx, name)
}

// TestFailedConfirmKeepsTheLink: a confirmation that cannot create the
// user, or whose session cannot start, does not use the link up: pressed
// again once the storage is back, it signs the person in, once, and it
// still expires when it would have.
func TestFailedConfirmKeepsTheLink(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	st := &readOnlyStorage{Storage: memstorage.New()}
	f.flow.Users = directory.New(st, "mg", func() time.Time { return f.now })
	if err := f.flow.Request(ctx, browserAt, "carol@corp.example", "/docs", ""); err != nil {
		t.Fatal(err)
	}
	secret := f.secret(f.out.letters[0])

	st.readOnly = true
	if _, err := redeemLink(ctx, f.flow, secret); err == nil || errors.Is(err, ErrLinkInvalid) {
		t.Fatalf("confirming with the storage read-only: %v, want a failure that keeps the link", err)
	}
	st.readOnly = false
	noSession := errors.New("the session could not start")
	if err := f.flow.Redeem(ctx, secret, func(Login) error { return noSession }); !errors.Is(err, noSession) {
		t.Fatalf("a confirmation whose session failed: %v", err)
	}
	login, err := redeemLink(ctx, f.flow, secret)
	if err != nil || login.User.Email != "carol@corp.example" || login.Return != "/docs" {
		t.Fatalf("pressing again once the storage is back: %+v, %v", login, err)
	}
	if _, err := redeemLink(ctx, f.flow, secret); !errors.Is(err, ErrLinkInvalid) {
		t.Fatalf("the link after it signed someone in: %v, want ErrLinkInvalid", err)
	}

	// Put back, a link lives as long as it was going to, not longer.
	if err := f.flow.Request(ctx, browserAt, "carol@corp.example", "/", ""); err != nil {
		t.Fatal(err)
	}
	secret = f.secret(f.out.letters[1])
	f.now = f.now.Add(f.flow.TTL - time.Second)
	if err := f.flow.Redeem(ctx, secret, func(Login) error { return noSession }); !errors.Is(err, noSession) {
		t.Fatal(err)
	}
	f.now = f.now.Add(time.Second)
	if _, err := redeemLink(ctx, f.flow, secret); !errors.Is(err, ErrLinkInvalid) {
		t.Fatalf("a put-back link after its expiry: %v, want ErrLinkInvalid", err)
	}
}

// TestFailedPasswordStepKeepsTheStep: a password that cannot be stored
// leaves the set-password page usable.
func TestFailedPasswordStepKeepsTheStep(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	st := &readOnlyStorage{Storage: memstorage.New()}
	users := directory.New(st, "mg", func() time.Time { return f.now })
	u, err := users.EnsureByEmail(ctx, "bob@example.com")
	if err != nil {
		t.Fatal(err)
	}
	step := &PasswordStep{Store: f.flow.Store, Users: users, Now: func() time.Time { return f.now }}
	secret, err := step.Begin(ctx, Login{User: u, Client: &ClientLogin{ClientID: "shop", ResetPassword: true}})
	if err != nil {
		t.Fatal(err)
	}
	st.readOnly = true
	if _, err := completeStep(ctx, step, secret, "long enough phrase 1", "long enough phrase 1"); err == nil || errors.Is(err, ErrLinkInvalid) {
		t.Fatalf("setting a password with the storage read-only: %v, want a failure that keeps the step", err)
	}
	st.readOnly = false
	if login, err := completeStep(ctx, step, secret, "long enough phrase 1", "long enough phrase 1"); err != nil || login.User.ID != u.ID {
		t.Fatalf("pressing again once the storage is back: %+v, %v", login, err)
	}
}

// fullMarkers is a store with no room for markers while full is set.
type fullMarkers struct {
	ticket.Store
	full bool
}

func (s *fullMarkers) Mark(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	if s.full {
		return false, ticket.ErrFull
	}
	return s.Store.Mark(ctx, key, ttl)
}

// TestFailedCodeLinkConfirmKeepsTheLink: a code's link whose confirmation
// the store has no room for still confirms once there is room.
func TestFailedCodeLinkConfirmKeepsTheLink(t *testing.T) {
	f := newCodeFixture(t)
	ctx := context.Background()
	store := &fullMarkers{Store: f.flow.Store}
	f.flow.Store = store
	id := f.start(t, "alice@example.com", true)
	u, _ := url.Parse(f.out.letters[0].Link)
	secret := u.Query().Get("t")

	store.full = true
	if _, err := f.flow.ConfirmLink(ctx, secret); !errors.Is(err, ticket.ErrFull) {
		t.Fatalf("confirming with the markers full: %v, want ErrFull", err)
	}
	store.full = false
	if next, err := f.flow.ConfirmLink(ctx, secret); err != nil || next != "https://game.example.com/status" {
		t.Fatalf("pressing again once there is room: %q, %v", next, err)
	}
	if _, err := f.flow.Code(ctx, project, "alice@example.com", id); err != nil {
		t.Fatalf("the code after the confirmation: %v", err)
	}
}

// TestFailedCodeCompletionKeepsTheCode: the right code typed while the
// storage cannot create the user is not used up; typed again once the
// storage is back, it signs the person in, and a superseding code still
// replaces it.
func TestFailedCodeCompletionKeepsTheCode(t *testing.T) {
	f := newCodeFixture(t)
	st := &readOnlyStorage{Storage: memstorage.New()}
	f.flow.Users = directory.New(st, "mg", func() time.Time { return f.now })
	id := f.start(t, "carol@corp.example", false)
	code := f.lastCode(t)
	st.readOnly = true
	if _, err := f.complete(id, "carol@corp.example", code); err == nil || errors.Is(err, ErrCodeExpired) {
		t.Fatalf("the right code with the storage read-only: %v, want a failure that keeps the code", err)
	}
	st.readOnly = false
	if login, err := f.complete(id, "carol@corp.example", code); err != nil || login.User.Email != "carol@corp.example" {
		t.Fatalf("the same code once the storage is back: %+v, %v", login, err)
	}
	if _, err := f.complete(id, "carol@corp.example", code); !errors.Is(err, ErrCodeExpired) {
		t.Fatalf("the code after it signed someone in: %v", err)
	}

	st.readOnly = true
	id = f.start(t, "dave@corp.example", false)
	code = f.lastCode(t)
	if _, err := f.complete(id, "dave@corp.example", code); err == nil {
		t.Fatal("the right code with the storage read-only succeeded")
	}
	f.start(t, "dave@corp.example", false)
	st.readOnly = false
	if _, err := f.complete(id, "dave@corp.example", code); !errors.Is(err, ErrCodeExpired) {
		t.Fatalf("a put-back code after a newer one: %v, want ErrCodeExpired", err)
	}
}
