// Package directory keeps mailgate's users in the storage the operator
// already runs for Caddy (files, or a shared storage module in a cluster).
package directory

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/mail"
	"path"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Statuses of a user.
const (
	StatusActive   = "active"
	StatusDisabled = "disabled"
)

// ErrNotFound is returned for an unknown user.
var ErrNotFound = errors.New("directory: user not found")

// ErrInvalidEmail is returned for an address that is not a plain
// local@domain address.
var ErrInvalidEmail = errors.New("directory: invalid email address")

// User is one person who can log in.
type User struct {
	ID      string    `json:"id"`
	Email   string    `json:"email"`
	Name    string    `json:"name,omitempty"`
	Status  string    `json:"status"`
	Created time.Time `json:"created"`
}

// Storage is where users are kept. Caddy's storage modules satisfy it.
type Storage interface {
	Load(ctx context.Context, key string) ([]byte, error)
	Store(ctx context.Context, key string, value []byte) error
	Lock(ctx context.Context, name string) error
	Unlock(ctx context.Context, name string) error
}

// Directory reads and writes users under one storage prefix (one realm).
type Directory struct {
	storage Storage
	prefix  string
	now     func() time.Time
}

// New returns a Directory that keeps its records under prefix in st.
func New(st Storage, prefix string, now func() time.Time) *Directory {
	return &Directory{storage: st, prefix: prefix, now: now}
}

// NormalizeEmail returns the canonical form of a bare address: trimmed and
// lower-cased. Display names and anything but local@domain are refused, so
// "Alice <alice@example.com>" cannot slip into a lookup or an allowlist check.
func NormalizeEmail(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > 254 {
		return "", ErrInvalidEmail
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name != "" || a.Address != s || !strings.Contains(s, "@") {
		return "", ErrInvalidEmail
	}
	return strings.ToLower(s), nil
}

// ByEmail returns the user with the given (normalized) address.
func (d *Directory) ByEmail(ctx context.Context, email string) (User, error) {
	raw, err := d.storage.Load(ctx, d.emailKey(email))
	if errors.Is(err, fs.ErrNotExist) {
		return User{}, ErrNotFound
	}
	if err != nil {
		return User{}, fmt.Errorf("directory: %w", err)
	}
	return d.ByID(ctx, string(raw))
}

// ByID returns the user with the given id.
func (d *Directory) ByID(ctx context.Context, id string) (User, error) {
	raw, err := d.storage.Load(ctx, d.userKey(id))
	if errors.Is(err, fs.ErrNotExist) {
		return User{}, ErrNotFound
	}
	if err != nil {
		return User{}, fmt.Errorf("directory: %w", err)
	}
	var u User
	if err := json.Unmarshal(raw, &u); err != nil {
		return User{}, fmt.Errorf("directory: user %s: %w", id, err)
	}
	return u, nil
}

// EnsureByEmail returns the user with the given normalized address, creating
// an active one if there is none yet. The storage lock keeps two instances
// from creating the same person twice.
func (d *Directory) EnsureByEmail(ctx context.Context, email string) (User, error) {
	lock := d.emailKey(email) + ".lock"
	if err := d.storage.Lock(ctx, lock); err != nil {
		return User{}, fmt.Errorf("directory: locking: %w", err)
	}
	defer d.storage.Unlock(ctx, lock) //nolint:errcheck // a stale lock expires

	u, err := d.ByEmail(ctx, email)
	if !errors.Is(err, ErrNotFound) {
		return u, err
	}
	u = User{ID: uuid.NewString(), Email: email, Status: StatusActive, Created: d.now().UTC()}
	raw, err := json.Marshal(u)
	if err != nil {
		return User{}, err
	}
	// The record first, then the index: a crash between the two leaves an
	// unreachable record, never an index entry pointing at nothing.
	if err := d.storage.Store(ctx, d.userKey(u.ID), raw); err != nil {
		return User{}, fmt.Errorf("directory: storing user: %w", err)
	}
	if err := d.storage.Store(ctx, d.emailKey(email), []byte(u.ID)); err != nil {
		return User{}, fmt.Errorf("directory: indexing user: %w", err)
	}
	return u, nil
}

func (d *Directory) userKey(id string) string {
	return path.Join(d.prefix, "users", id+".json")
}

// emailKey hashes the address so that storage keys (file names) hold no
// personal data and need no escaping.
func (d *Directory) emailKey(email string) string {
	sum := sha256.Sum256([]byte(email))
	return path.Join(d.prefix, "users-by-email", hex.EncodeToString(sum[:]))
}
