// Package testdpop makes DPoP proofs with go-jose, a different JOSE library
// from the jwx that mailgate verifies them with: for the tests, and for
// scripts/dpop-proof.
package testdpop

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Key is a client's DPoP key pair.
type Key struct{ *ecdsa.PrivateKey }

// NewKey makes a P-256 key.
func NewKey(t testing.TB) Key {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return Key{k}
}

// Thumbprint is the key's RFC 7638 thumbprint, base64url.
func (k Key) Thumbprint(t testing.TB) string {
	t.Helper()
	jkt, err := Thumbprint(k.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	return jkt
}

// Proof makes an ES256 proof for method and htu at iat; with an access
// token, it carries ath.
func (k Key) Proof(t testing.TB, method, htu, accessToken string, iat time.Time) string {
	t.Helper()
	p, err := Sign(k.PrivateKey, method, htu, accessToken, iat)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Thumbprint is the RFC 7638 thumbprint of k's public key, base64url: what
// a token bound to k carries as cnf.jkt.
func Thumbprint(k *ecdsa.PrivateKey) (string, error) {
	b, err := (&jose.JSONWebKey{Key: k.Public()}).Thumbprint(crypto.SHA256)
	return base64.RawURLEncoding.EncodeToString(b), err
}

// ProofJTI is Proof with a chosen jti, for tests of what a jti may be.
func (k Key) ProofJTI(t testing.TB, jti, method, htu, accessToken string, iat time.Time) string {
	t.Helper()
	p, err := SignJTI(k.PrivateKey, jti, method, htu, accessToken, iat)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Sign makes the proof of RFC 9449 section 4.2: ES256, the public key in
// the header, a random jti, and ath when an access token is given.
func Sign(k *ecdsa.PrivateKey, method, htu, accessToken string, iat time.Time) (string, error) {
	var jti [16]byte
	if _, err := rand.Read(jti[:]); err != nil {
		return "", err
	}
	return SignJTI(k, base64.RawURLEncoding.EncodeToString(jti[:]), method, htu, accessToken, iat)
}

// SignJTI is Sign with a chosen jti.
func SignJTI(k *ecdsa.PrivateKey, jti, method, htu, accessToken string, iat time.Time) (string, error) {
	claims := map[string]any{"jti": jti, "htm": method, "htu": htu, "iat": iat.Unix()}
	if accessToken != "" {
		sum := sha256.Sum256([]byte(accessToken))
		claims["ath"] = base64.RawURLEncoding.EncodeToString(sum[:])
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: k},
		(&jose.SignerOptions{EmbedJWK: true}).WithType("dpop+jwt"))
	if err != nil {
		return "", err
	}
	sig, err := s.Sign(payload)
	if err != nil {
		return "", err
	}
	return sig.CompactSerialize()
}
