// Package session issues and verifies mailgate's signed tokens (sessions
// today; upstream assertions and access tokens later), keeps the signing keys,
// remembers which tokens it has already verified, and builds the cookie that
// carries a session.
package session

import (
	"context"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
)

// Storage is where the key ring is persisted. Caddy's storage modules satisfy
// it, so every instance that shares a storage shares the keys.
type Storage interface {
	Load(ctx context.Context, key string) ([]byte, error)
	Store(ctx context.Context, key string, value []byte) error
	Lock(ctx context.Context, name string) error
	Unlock(ctx context.Context, name string) error
}

// KeyRing holds the Ed25519 signing key and the public keys that verify
// tokens, by key id. Keys are only ever looked up by a kid in this ring: a key
// named or embedded in a token is never used. The keys live in storage that
// every instance shares; Refresh picks up what another instance stored.
type KeyRing struct {
	storage Storage
	key     string
	keys    atomic.Pointer[keySet]

	mu     sync.Mutex // one refresh at a time
	loaded time.Time  // when storage was last read; guarded by mu
}

// keySet is one reading of the ring, swapped whole so that a token is never
// signed with one reading's key and another's kid.
type keySet struct {
	signing jwk.Key
	public  map[string]ed25519.PublicKey
	jwks    []byte
}

// LoadKeyRing reads the key ring stored under key, generating and storing a
// new Ed25519 key the first time. The storage lock makes two instances
// starting together agree on one key.
func LoadKeyRing(ctx context.Context, st Storage, key string) (*KeyRing, error) {
	if err := st.Lock(ctx, key); err != nil {
		return nil, fmt.Errorf("session: locking key ring %s: %w", key, err)
	}
	defer st.Unlock(ctx, key) //nolint:errcheck // an unlock failure leaves a stale lock that expires

	raw, err := st.Load(ctx, key)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		raw, err = newKeySet()
		if err != nil {
			return nil, err
		}
		if err := st.Store(ctx, key, raw); err != nil {
			return nil, fmt.Errorf("session: storing new key ring %s: %w", key, err)
		}
	case err != nil:
		return nil, fmt.Errorf("session: loading key ring %s: %w", key, err)
	}
	keys, err := parseKeySet(raw)
	if err != nil {
		return nil, err
	}
	r := &KeyRing{storage: st, key: key}
	r.keys.Store(keys)
	return r, nil
}

// Refresh reads the ring from storage again when the last reading is older
// than maxAge at now, so that keys another instance or a rotation stored are
// used and published without a config reload. A failed reading keeps the
// keys in hand and is returned for the caller to log.
func (r *KeyRing) Refresh(ctx context.Context, now time.Time, maxAge time.Duration) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now.Sub(r.loaded) < maxAge {
		return nil
	}
	raw, err := r.storage.Load(ctx, r.key)
	if err != nil {
		return fmt.Errorf("session: reloading key ring %s: %w", r.key, err)
	}
	keys, err := parseKeySet(raw)
	if err != nil {
		return err
	}
	r.keys.Store(keys)
	r.loaded = now
	return nil
}

func newKeySet() ([]byte, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	k, err := jwk.FromRaw(priv)
	if err != nil {
		return nil, err
	}
	if err := jwk.AssignKeyID(k); err != nil {
		return nil, err
	}
	_ = k.Set(jwk.AlgorithmKey, jwa.EdDSA)
	_ = k.Set(jwk.KeyUsageKey, jwk.ForSignature)
	set := jwk.NewSet()
	_ = set.AddKey(k)
	return json.Marshal(set)
}

// parseKeySet reads a stored JWK set of private keys; the first key signs.
func parseKeySet(raw []byte) (*keySet, error) {
	set, err := jwk.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("session: parsing key ring: %w", err)
	}
	if set.Len() == 0 {
		return nil, errors.New("session: key ring is empty")
	}
	ring := &keySet{public: make(map[string]ed25519.PublicKey)}
	pubSet := jwk.NewSet()
	for i := 0; i < set.Len(); i++ {
		k, _ := set.Key(i)
		var priv ed25519.PrivateKey
		if err := k.Raw(&priv); err != nil {
			return nil, fmt.Errorf("session: key %d is not an Ed25519 private key: %w", i, err)
		}
		if k.KeyID() == "" {
			return nil, fmt.Errorf("session: key %d has no kid", i)
		}
		if i == 0 {
			ring.signing = k
		}
		ring.public[k.KeyID()] = priv.Public().(ed25519.PublicKey)
		pub, err := k.PublicKey()
		if err != nil {
			return nil, err
		}
		_ = pubSet.AddKey(pub)
	}
	ring.jwks, err = json.Marshal(pubSet)
	if err != nil {
		return nil, err
	}
	return ring, nil
}

// JWKS returns the public keys as a JSON Web Key Set, for apps that verify
// mailgate's tokens.
func (r *KeyRing) JWKS() []byte { return r.keys.Load().jwks }

// KeyID returns the kid of the signing key.
func (r *KeyRing) KeyID() string { return r.keys.Load().signing.KeyID() }

// DeriveKey returns a 32-byte key for purpose, derived with HKDF-SHA-256
// from the signing key. Every instance that shares the ring derives the same
// key, so MACs made on one (form tokens) verify on another, and no second
// secret needs storing.
func (r *KeyRing) DeriveKey(purpose string) []byte {
	var seed ed25519.PrivateKey
	// The ring only holds keys that parsed as Ed25519 private keys.
	_ = r.keys.Load().signing.Raw(&seed)
	// hkdf.Key fails only for lengths over 255 hash sizes.
	key, _ := hkdf.Key(sha256.New, seed.Seed(), nil, "mailgate "+purpose, 32)
	return key
}
