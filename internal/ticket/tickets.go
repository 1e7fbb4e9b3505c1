package ticket

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
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

// Tickets issues and redeems one-time secrets of one kind ("link", later
// "code", "invite", ...). Only the SHA-256 of a secret reaches the Store.
type Tickets struct {
	Store Store
	// Kind separates the key spaces of different ticket kinds.
	Kind string
}

// Issue stores value under a new secret for ttl and returns the secret. When
// owner is not empty, the owner's previous ticket of this kind is deleted in
// the same atomic step, so a user has at most one live link at a time.
func (t Tickets) Issue(ctx context.Context, owner string, value []byte, ttl time.Duration) (string, error) {
	secret := NewSecret()
	var err error
	if owner == "" {
		err = t.Store.Put(ctx, t.key(secret), value, ttl)
	} else {
		err = t.Store.PutOwned(ctx, t.ownerKey(owner), t.key(secret), value, ttl)
	}
	if err != nil {
		return "", err
	}
	return secret, nil
}

// Redeem consumes the ticket behind secret and returns its value. A secret
// can be redeemed once; afterwards, and after expiry, ErrNotFound.
func (t Tickets) Redeem(ctx context.Context, secret string) ([]byte, error) {
	if secret == "" {
		return nil, ErrNotFound
	}
	return t.Store.Take(ctx, t.key(secret))
}

// Peek returns the value of the ticket behind secret without consuming it,
// for checks that must not use a ticket up, such as a confirmation page or
// whose code it is.
func (t Tickets) Peek(ctx context.Context, secret string) ([]byte, error) {
	if secret == "" {
		return nil, ErrNotFound
	}
	return t.Store.Get(ctx, t.key(secret))
}

// Drop deletes the ticket behind secret without redeeming it, for a ticket
// whose mail could not be delivered.
func (t Tickets) Drop(ctx context.Context, secret string) error {
	return t.Store.Delete(ctx, t.key(secret))
}

func (t Tickets) key(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return t.Kind + ":" + hex.EncodeToString(sum[:])
}

// ownerKey points at the owner's live ticket. The owner (an email address) is
// hashed too, so the store holds no personal data in its keys.
func (t Tickets) ownerKey(owner string) string {
	sum := sha256.Sum256([]byte(owner))
	return t.Kind + "-of:" + hex.EncodeToString(sum[:])
}
