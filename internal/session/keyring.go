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

// KeyRing holds the Ed25519 keys that sign and verify tokens, by key id.
// Keys are only ever looked up by a kid in this ring: a key named or
// embedded in a token is never used. The keys live in storage that every
// instance shares; Refresh picks up what another instance stored, and
// Rotate adds a new key without logging anyone out.
//
// Keys are stored newest first. Each may carry when it starts signing
// (activates, Unix seconds) and when it may be dropped (retires): a new key
// is published at once but signs only from its activation, so that every
// instance, and every app that caches the JWKS, knows it before the first
// token it signs arrives; an old key keeps verifying until every token it
// signed has expired. The signing key is the first whose activation has come.
type KeyRing struct {
	storage Storage
	key     string
	now     func() time.Time
	keys    atomic.Pointer[keySet]

	mu     sync.Mutex // one refresh or rotation at a time
	loaded time.Time  // when storage was last read; guarded by mu
}

// keySet is one reading of the ring, swapped whole so that a token is never
// signed with one reading's key and another's kid.
type keySet struct {
	keys   []ringKey // as stored: newest first
	public map[string]ed25519.PublicKey
	jwks   []byte
	// sessionMACs holds each key's session MAC key, by the exact encoded
	// header a session token MACed with it carries (see sessionmac.go).
	sessionMACs map[string]*macKey
	// derived keeps DeriveKeys' answers by purpose: deriving takes the
	// seed out of its JWK and runs HKDF per key, which every form post
	// would otherwise pay (a fifth of a full login's CPU). A new reading
	// of the ring is a new keySet, so nothing here outlives its keys.
	derived sync.Map // purpose → *derivedKeys
}

// derivedKeys are one purpose's keys, with the key that signed when they
// were derived: a scheduled rotation changes it without a new reading.
type derivedKeys struct {
	signing jwk.Key
	keys    [][]byte
}

// ringKey is a private key with its schedule; zero times mean "always"
// (activates) and "never" (retires), as for a key stored before rotation.
type ringKey struct {
	jwk jwk.Key
	// raw is jwk's private key: signing with the JWK would have jwx
	// rebuild it from its seed (a scalar multiplication) on every
	// signature, a third of what signing an assertion costs.
	raw       ed25519.PrivateKey
	activates int64
	retires   int64
}

// The private JWK parameters that carry a key's schedule.
const (
	activatesParam = "mailgate_activates"
	retiresParam   = "mailgate_retires"
)

// signing is the key that signs at now: the newest one already active. A
// ring whose keys are all still pending (a clock set back) signs with the
// oldest rather than not at all.
func (s *keySet) signing(now time.Time) ringKey {
	for _, k := range s.keys {
		if k.activates <= now.Unix() {
			return k
		}
	}
	return s.keys[len(s.keys)-1]
}

// LoadKeyRing reads the key ring stored under key, generating and storing a
// new Ed25519 key the first time, active at once. A ring that is there is
// only read: no lock, no write, so an instance starts on a read-only
// storage (a replica, a mount the operator locked down) as long as the ring
// exists; rotating it waits until the storage takes writes. Only the first
// start takes the storage lock, so that two instances starting together
// agree on one key. now is the clock of every schedule decision.
func LoadKeyRing(ctx context.Context, st Storage, key string, now func() time.Time) (*KeyRing, error) {
	raw, err := st.Load(ctx, key)
	if errors.Is(err, fs.ErrNotExist) {
		raw, err = createKeyRing(ctx, st, key, now)
	}
	if err != nil {
		return nil, fmt.Errorf("session: loading key ring %s: %w", key, err)
	}
	keys, err := parseKeySet(raw)
	if err != nil {
		return nil, err
	}
	r := &KeyRing{storage: st, key: key, now: now, loaded: now()}
	r.keys.Store(keys)
	return r, nil
}

// createKeyRing stores a ring of one new key under key, unless another
// instance stored one first, and returns what is stored.
func createKeyRing(ctx context.Context, st Storage, key string, now func() time.Time) ([]byte, error) {
	if err := st.Lock(ctx, key); err != nil {
		return nil, fmt.Errorf("locking: %w", err)
	}
	defer st.Unlock(ctx, key) //nolint:errcheck // an unlock failure leaves a stale lock that expires

	raw, err := st.Load(ctx, key)
	if !errors.Is(err, fs.ErrNotExist) {
		return raw, err
	}
	k, err := newKey(now().Unix())
	if err != nil {
		return nil, err
	}
	if raw, err = marshalKeys([]ringKey{k}); err != nil {
		return nil, err
	}
	if err := st.Store(ctx, key, raw); err != nil {
		return nil, fmt.Errorf("storing a new ring: %w", err)
	}
	return raw, nil
}

// Rotate stores a new signing key that starts signing after activation, and
// schedules every key in the ring without a retirement to retire once
// activation and then retention have passed: retention must be the longest
// lifetime of any token the ring signs, so that no token outlives its key.
// Keys whose retirement has passed are dropped. It works on what storage
// holds, under the storage's lock, so that it may run beside running
// instances (they pick the result up at their next Refresh), and returns
// the new key's id.
func (r *KeyRing) Rotate(ctx context.Context, activation, retention time.Duration) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.rotateLocked(ctx, activation, retention, 0)
}

// RotateIfDue rotates (see Rotate) when the newest key became, or becomes,
// active longer than every ago, and reports the new key's id, or "" when
// no rotation was due. Instances that check together rotate once: the
// check is repeated under the storage's lock on what storage holds.
func (r *KeyRing) RotateIfDue(ctx context.Context, every, activation, retention time.Duration) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if newest := r.keys.Load().keys[0]; r.now().Unix() < newest.activates+int64(every/time.Second) {
		return "", nil
	}
	return r.rotateLocked(ctx, activation, retention, every)
}

// rotateLocked rotates under the storage lock; with every set, only if the
// stored ring's newest key is due. The caller holds mu.
func (r *KeyRing) rotateLocked(ctx context.Context, activation, retention, every time.Duration) (string, error) {
	if err := r.storage.Lock(ctx, r.key); err != nil {
		return "", fmt.Errorf("session: locking key ring %s: %w", r.key, err)
	}
	defer r.storage.Unlock(ctx, r.key) //nolint:errcheck // an unlock failure leaves a stale lock that expires
	raw, err := r.storage.Load(ctx, r.key)
	if err != nil {
		return "", fmt.Errorf("session: loading key ring %s: %w", r.key, err)
	}
	stored, err := parseKeySet(raw)
	if err != nil {
		return "", err
	}
	now := r.now()
	if every > 0 && now.Unix() < stored.keys[0].activates+int64(every/time.Second) {
		// Another instance rotated first: take its ring.
		r.keys.Store(stored)
		r.loaded = now
		return "", nil
	}
	k, err := newKey(now.Add(activation).Unix())
	if err != nil {
		return "", err
	}
	keys := []ringKey{k}
	for _, old := range stored.keys {
		if old.retires == 0 {
			old.retires = now.Add(activation + retention).Unix()
		}
		if old.retires > now.Unix() {
			keys = append(keys, old)
		}
	}
	if raw, err = marshalKeys(keys); err != nil {
		return "", err
	}
	ks, err := parseKeySet(raw)
	if err != nil {
		return "", err
	}
	if err := r.storage.Store(ctx, r.key, raw); err != nil {
		return "", fmt.Errorf("session: storing rotated key ring %s: %w", r.key, err)
	}
	r.keys.Store(ks)
	r.loaded = now
	return k.jwk.KeyID(), nil
}

// Refresh reads the ring from storage again when the last reading is older
// than maxAge at now, so that keys another instance or a rotation stored are
// used and published without a config reload. A failed reading keeps the
// keys in hand and is returned for the caller to log.
func (r *KeyRing) Refresh(ctx context.Context, maxAge time.Duration) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
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

// newKey generates an Ed25519 key that signs from activates on.
func newKey(activates int64) (ringKey, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return ringKey{}, err
	}
	k, err := jwk.FromRaw(priv)
	if err != nil {
		return ringKey{}, err
	}
	if err := jwk.AssignKeyID(k); err != nil {
		return ringKey{}, err
	}
	_ = k.Set(jwk.AlgorithmKey, jwa.EdDSA)
	_ = k.Set(jwk.KeyUsageKey, jwk.ForSignature)
	return ringKey{jwk: k, activates: activates}, nil
}

// marshalKeys stores keys, in order, as a JWK set of private keys with their
// schedules.
func marshalKeys(keys []ringKey) ([]byte, error) {
	set := jwk.NewSet()
	for _, k := range keys {
		c, err := k.jwk.Clone()
		if err != nil {
			return nil, err
		}
		_ = c.Remove(activatesParam)
		_ = c.Remove(retiresParam)
		if k.activates != 0 {
			_ = c.Set(activatesParam, k.activates)
		}
		if k.retires != 0 {
			_ = c.Set(retiresParam, k.retires)
		}
		_ = set.AddKey(c)
	}
	return json.Marshal(set)
}

// parseKeySet reads a stored JWK set of private keys, newest first.
func parseKeySet(raw []byte) (*keySet, error) {
	set, err := jwk.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("session: parsing key ring: %w", err)
	}
	if set.Len() == 0 {
		return nil, errors.New("session: key ring is empty")
	}
	ring := &keySet{public: make(map[string]ed25519.PublicKey), sessionMACs: make(map[string]*macKey)}
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
		rk := ringKey{jwk: k, raw: priv}
		for param, dst := range map[string]*int64{activatesParam: &rk.activates, retiresParam: &rk.retires} {
			if v, ok := k.Get(param); ok {
				f, ok := v.(float64)
				if !ok {
					return nil, fmt.Errorf("session: key %s: %s is not a number", k.KeyID(), param)
				}
				*dst = int64(f)
			}
		}
		ring.keys = append(ring.keys, rk)
		ring.public[k.KeyID()] = priv.Public().(ed25519.PublicKey)
		mk := newMACKey(k)
		ring.sessionMACs[mk.header] = mk
		pub, err := k.PublicKey()
		if err != nil {
			return nil, err
		}
		// The schedule is the ring's own business, not the JWKS's.
		_ = pub.Remove(activatesParam)
		_ = pub.Remove(retiresParam)
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

// KeyID returns the kid of the key that signs now.
func (r *KeyRing) KeyID() string { return r.keys.Load().signing(r.now()).jwk.KeyID() }

// DeriveKeys returns 32-byte keys for purpose, derived with HKDF-SHA-256
// from the ring's keys: first from the key that signs now, then from the
// others. Every instance that shares the ring derives the same keys, so MACs
// made on one (form tokens) verify on another, and no second secret needs
// storing; MACs are made with the first and checked against all, so a
// rotation invalidates none.
//
// The keys are the ring's, shared by every caller: read them, never write.
func (r *KeyRing) DeriveKeys(purpose string) [][]byte {
	ks := r.keys.Load()
	signing := ks.signing(r.now()).jwk
	if d, ok := ks.derived.Load(purpose); ok && d.(*derivedKeys).signing == signing {
		return d.(*derivedKeys).keys
	}
	keys := [][]byte{deriveKey(signing, purpose)}
	for _, k := range ks.keys {
		if k.jwk != signing {
			keys = append(keys, deriveKey(k.jwk, purpose))
		}
	}
	ks.derived.Store(purpose, &derivedKeys{signing: signing, keys: keys})
	return keys
}

func deriveKey(k jwk.Key, purpose string) []byte {
	var seed ed25519.PrivateKey
	// The ring only holds keys that parsed as Ed25519 private keys.
	_ = k.Raw(&seed)
	// hkdf.Key fails only for lengths over 255 hash sizes.
	key, _ := hkdf.Key(sha256.New, seed.Seed(), nil, "mailgate "+purpose, 32)
	return key
}
