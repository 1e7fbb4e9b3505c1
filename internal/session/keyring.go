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
// named or embedded in a token is never used.
type KeyRing struct {
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
	return parseKeyRing(raw)
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

// parseKeyRing reads a stored JWK set of private keys; the first key signs.
func parseKeyRing(raw []byte) (*KeyRing, error) {
	set, err := jwk.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("session: parsing key ring: %w", err)
	}
	if set.Len() == 0 {
		return nil, errors.New("session: key ring is empty")
	}
	ring := &KeyRing{public: make(map[string]ed25519.PublicKey)}
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
func (r *KeyRing) JWKS() []byte { return r.jwks }

// KeyID returns the kid of the signing key.
func (r *KeyRing) KeyID() string { return r.signing.KeyID() }

// DeriveKey returns a 32-byte key for purpose, derived with HKDF-SHA-256
// from the signing key. Every instance that shares the ring derives the same
// key, so MACs made on one (form tokens) verify on another, and no second
// secret needs storing.
func (r *KeyRing) DeriveKey(purpose string) []byte {
	var seed ed25519.PrivateKey
	// The ring only holds keys that parsed as Ed25519 private keys.
	_ = r.signing.Raw(&seed)
	// hkdf.Key fails only for lengths over 255 hash sizes.
	key, _ := hkdf.Key(sha256.New, seed.Seed(), nil, "mailgate "+purpose, 32)
	return key
}
