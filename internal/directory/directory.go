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
	"path"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Statuses of a user.
const (
	// StatusInvited is a user an app or the operator created who has not
	// signed up yet: the address is not proven.
	StatusInvited = "invited"
	// StatusActive is a user who signed up, or signed in.
	StatusActive = "active"
	// StatusDisabled is a user the operator or an app took access from.
	StatusDisabled = "disabled"
)

// ErrNotFound is returned for an unknown user.
var ErrNotFound = errors.New("directory: user not found")

// User is one person who can log in.
type User struct {
	ID    string `json:"id"`
	Email string `json:"email"`
	// Username is a unique slug, derived from the address when the user is
	// created: lower-case letters, digits and '-'.
	Username string    `json:"username"`
	Name     string    `json:"name,omitempty"`
	Status   string    `json:"status"`
	Created  time.Time `json:"created"`
	// SignedUp is when the user proved the address, by a first sign-in or
	// an invitation's link; zero while invited.
	SignedUp time.Time `json:"signed_up,omitzero"`
	// Locale is the language of the mails to the user (see package
	// locale); empty: the site's.
	Locale string `json:"locale,omitempty"`
	// PasswordHash is an argon2id PHC string, set when the user chooses a
	// password; empty for link-only accounts.
	PasswordHash string    `json:"password_hash,omitempty"`
	PasswordSet  time.Time `json:"password_set,omitzero"`
	// PasswordExpired is an operator's order to replace the password at
	// the next password sign-in (seed 004's expired_password step);
	// storing a new password (SetPassword) clears it.
	PasswordExpired bool `json:"password_expired,omitempty"`
}

// Storage is where users are kept. Caddy's storage modules satisfy it.
type Storage interface {
	Load(ctx context.Context, key string) ([]byte, error)
	Store(ctx context.Context, key string, value []byte) error
	Delete(ctx context.Context, key string) error
	List(ctx context.Context, path string, recursive bool) ([]string, error)
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

// ByEmail returns the user with the given (normalized) address.
func (d *Directory) ByEmail(ctx context.Context, email string) (User, error) {
	return d.byIndex(ctx, d.emailKey(email))
}

// ByUsername returns the user with the given username.
func (d *Directory) ByUsername(ctx context.Context, username string) (User, error) {
	if !validUsername(username) {
		return User{}, ErrNotFound
	}
	return d.byIndex(ctx, d.usernameKey(username))
}

// byIndex follows an index entry (email or username) to its user.
func (d *Directory) byIndex(ctx context.Context, key string) (User, error) {
	raw, err := d.storage.Load(ctx, key)
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
// an active one if there is none yet. A user who is there is only read, so
// people with an account sign in on a storage that takes no writes (a
// read-only mount, a full disk); the storage lock keeps two instances from
// creating the same person twice.
//
// The address's index entry is written first and the record last, so that a
// write that fails midway (a full disk, a read-only mount) leaves no record
// that nothing points at: only an entry whose record is missing, which finds
// nobody (ErrNotFound) and which the next call completes under the same id
// and username.
func (d *Directory) EnsureByEmail(ctx context.Context, email string) (User, error) {
	if u, err := d.ByEmail(ctx, email); !errors.Is(err, ErrNotFound) {
		return u, err
	}
	lock := d.emailKey(email) + ".lock"
	if err := d.storage.Lock(ctx, lock); err != nil {
		return User{}, fmt.Errorf("directory: locking: %w", err)
	}
	defer d.unlock(ctx, lock)

	now := d.now().UTC()
	u := User{ID: uuid.NewString(), Email: email, Status: StatusActive, Created: now, SignedUp: now}
	raw, err := d.storage.Load(ctx, d.emailKey(email))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := d.storage.Store(ctx, d.emailKey(email), []byte(u.ID)); err != nil {
			return User{}, fmt.Errorf("directory: indexing user: %w", err)
		}
	case err != nil:
		return User{}, fmt.Errorf("directory: %w", err)
	default:
		existing, err := d.ByID(ctx, string(raw))
		if !errors.Is(err, ErrNotFound) {
			return existing, err
		}
		u.ID = string(raw)
	}
	if u.Username, err = d.claimUsername(ctx, u.ID, email); err != nil {
		return User{}, err
	}
	if err := d.put(ctx, u); err != nil {
		return User{}, err
	}
	return u, nil
}

// unlock releases a storage lock even when the request that took it has
// gone: a storage that honours the context would otherwise keep the lock
// until it goes stale, and every login of that address would wait for it.
func (d *Directory) unlock(ctx context.Context, name string) {
	// One that cannot be released at all goes stale and expires.
	_ = d.storage.Unlock(context.WithoutCancel(ctx), name)
}

// SetPassword stores hash (see package password) as the user's password.
func (d *Directory) SetPassword(ctx context.Context, id, hash string) error {
	lock := d.userKey(id) + ".lock"
	if err := d.storage.Lock(ctx, lock); err != nil {
		return fmt.Errorf("directory: locking: %w", err)
	}
	defer d.unlock(ctx, lock)
	u, err := d.ByID(ctx, id)
	if err != nil {
		return err
	}
	u.PasswordHash = hash
	u.PasswordSet = d.now().UTC()
	u.PasswordExpired = false
	return d.put(ctx, u)
}

func (d *Directory) put(ctx context.Context, u User) error {
	raw, err := json.Marshal(u)
	if err != nil {
		return err
	}
	if err := d.storage.Store(ctx, d.userKey(u.ID), raw); err != nil {
		return fmt.Errorf("directory: storing user: %w", err)
	}
	return nil
}

// claimUsername takes the first free slug of the address's local part
// ("alice", "alice-2", ...) for id, under a storage lock per slug so that
// two instances cannot take the same one. A slug id already holds (from a
// creation that failed before its record was written) is id's again.
func (d *Directory) claimUsername(ctx context.Context, id, email string) (string, error) {
	base := slug(email[:strings.LastIndexByte(email, '@')])
	for n := 1; n <= 1000; n++ {
		name := base
		if n > 1 {
			name = fmt.Sprintf("%s-%d", base, n)
		}
		key := d.usernameKey(name)
		if err := d.storage.Lock(ctx, key+".lock"); err != nil {
			return "", fmt.Errorf("directory: locking username: %w", err)
		}
		holder, err := d.storage.Load(ctx, key)
		if errors.Is(err, fs.ErrNotExist) {
			err = d.storage.Store(ctx, key, []byte(id))
			d.unlock(ctx, key+".lock")
			if err != nil {
				return "", fmt.Errorf("directory: indexing username: %w", err)
			}
			return name, nil
		}
		d.unlock(ctx, key+".lock")
		if err != nil {
			return "", fmt.Errorf("directory: %w", err)
		}
		if string(holder) == id {
			return name, nil
		}
	}
	return "", fmt.Errorf("directory: no free username for %q", base)
}

// slug turns an address's local part into a username: lower-case letters
// and digits, runs of anything else as one '-', at most 32 characters.
func slug(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		if ('a' <= r && r <= 'z') || ('0' <= r && r <= '9') {
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			b.WriteRune(r)
			dash = false
		} else {
			dash = true
		}
		if b.Len() >= 32 {
			break
		}
	}
	if b.Len() == 0 {
		return "user"
	}
	return b.String()
}

func validUsername(s string) bool {
	if s == "" || len(s) > 40 {
		return false
	}
	for _, r := range s {
		if !(('a' <= r && r <= 'z') || ('0' <= r && r <= '9') || r == '-') {
			return false
		}
	}
	return true
}

func (d *Directory) userKey(id string) string {
	return path.Join(d.prefix, "users", id+".json")
}

// usernameKey and emailKey hash what they index, so that storage keys (file
// names) hold no personal data and need no escaping.
func (d *Directory) usernameKey(username string) string {
	return d.indexKey("users-by-username", username)
}

func (d *Directory) emailKey(email string) string {
	return d.indexKey("users-by-email", email)
}

func (d *Directory) indexKey(index, value string) string {
	sum := sha256.Sum256([]byte(value))
	return path.Join(d.prefix, index, hex.EncodeToString(sum[:]))
}
