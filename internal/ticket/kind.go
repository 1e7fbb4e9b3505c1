package ticket

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"
)

// SecretBytes is the entropy of every secret: 256 bits.
const SecretBytes = 32

// NewSecret returns a fresh base64url secret from crypto/rand.
func NewSecret() string {
	b := make([]byte, SecretBytes)
	// crypto/rand.Read never fails on supported platforms (Go 1.24+).
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Kind issues and redeems the one-time secrets of one kind ("link",
// "code", ...), each carrying a T, stored as JSON. Only the SHA-256 of a
// secret, and of an owner, reaches the Store.
type Kind[T any] struct {
	Store Store
	// Name separates the key spaces of different kinds.
	Name string
}

// Issue stores v under a new secret for ttl and returns the secret. When
// owner is not empty, the owner's previous secret of this kind is deleted in
// the same atomic step, so a user has at most one live link at a time.
func (k Kind[T]) Issue(ctx context.Context, owner string, v T, ttl time.Duration) (string, error) {
	secret := NewSecret()
	if err := k.put(ctx, owner, secret, v, ttl); err != nil {
		return "", err
	}
	return secret, nil
}

// PutBack stores v under a secret Redeem took, for ttl, as Issue stored it:
// a confirmation that failed after taking its secret (the storage or the
// store failing) returns it, so that the person can press again rather than
// ask for a new link. With an owner it is the owner's live secret again, so
// one issued in between is superseded: the owner still holds one that works.
func (k Kind[T]) PutBack(ctx context.Context, owner, secret string, v T, ttl time.Duration) error {
	return k.put(ctx, owner, secret, v, ttl)
}

func (k Kind[T]) put(ctx context.Context, owner, secret string, v T, ttl time.Duration) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("ticket: encoding a %s: %w", k.Name, err)
	}
	if owner == "" {
		return k.Store.Put(ctx, k.key(secret), raw, ttl)
	}
	return k.Store.PutOwned(ctx, k.ownerKey(owner), k.key(secret), raw, ttl)
}

// PutNew stores v under name for ttl unless name already holds a live value
// of this kind, and reports whether it did, atomically (see Store.PutNew).
// name is hashed as a secret is; it is for values kept per subject (a
// user's one email link), looked up by the subject rather than by a secret.
func (k Kind[T]) PutNew(ctx context.Context, name string, v T, ttl time.Duration) (bool, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return false, fmt.Errorf("ticket: encoding a %s: %w", k.Name, err)
	}
	return k.Store.PutNew(ctx, k.key(name), raw, ttl)
}

// Redeem consumes the secret and returns what it carries. A secret can be
// redeemed once; afterwards, and after expiry, ErrNotFound.
func (k Kind[T]) Redeem(ctx context.Context, secret string) (T, error) {
	return k.read(ctx, secret, k.Store.Take)
}

// Peek returns what the secret carries without consuming it, for checks that
// must not use a secret up, such as a confirmation page or whose code it is.
func (k Kind[T]) Peek(ctx context.Context, secret string) (T, error) {
	return k.read(ctx, secret, k.Store.Get)
}

// Attempt counts one try at the secret before the caller compares what the
// secret guards (a code): see Store.Attempt.
func (k Kind[T]) Attempt(ctx context.Context, secret string, limit int64) (int64, error) {
	if secret == "" {
		return 0, ErrNotFound
	}
	return k.Store.Attempt(ctx, k.key(secret), limit)
}

// Drop deletes the secret without redeeming it, for a link whose mail could
// not be delivered.
func (k Kind[T]) Drop(ctx context.Context, secret string) error {
	return k.Store.Delete(ctx, k.key(secret))
}

func (k Kind[T]) read(ctx context.Context, secret string, get func(context.Context, string) ([]byte, error)) (T, error) {
	var v T
	if secret == "" {
		return v, ErrNotFound
	}
	raw, err := get(ctx, k.key(secret))
	if err != nil {
		return v, err
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return v, fmt.Errorf("ticket: corrupt %s: %w", k.Name, err)
	}
	return v, nil
}

func (k Kind[T]) key(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return k.Name + ":" + hex.EncodeToString(sum[:])
}

// ownerKey points at the owner's live secret. The owner (an email address) is
// hashed too, so the store holds no personal data in its keys.
func (k Kind[T]) ownerKey(owner string) string {
	sum := sha256.Sum256([]byte(owner))
	return k.Name + "-of:" + hex.EncodeToString(sum[:])
}
