package dpop

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/mailgate/caddy-mailgate/internal/ticket"
)

// Proofs here are made with go-jose, not with the jwx the server uses, so a
// shared misreading of the RFC cannot hide in both sides.

const tokenURL = "https://app.example.com/.mailgate/oauth/token"

var now = time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC)

func verifier(t *testing.T) *Verifier {
	t.Helper()
	store, err := ticket.NewMemory(ticket.MinMemory, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return &Verifier{Replay: store, Now: func() time.Time { return now }, Window: time.Minute}
}

func goodClaims() map[string]any {
	return map[string]any{"jti": "j-" + ticket.NewSecret(), "htm": "POST", "htu": tokenURL, "iat": now.Unix()}
}

// sign makes a proof with go-jose, embedding the public key as jwk.
func sign(t *testing.T, key crypto.Signer, alg jose.SignatureAlgorithm, claims map[string]any, typ string) string {
	t.Helper()
	opts := (&jose.SignerOptions{EmbedJWK: true}).WithType(jose.ContentType(typ))
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(claims)
	jws, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// handmade builds a compact JWS from any header, for proofs no library
// would produce.
func handmade(header, claims map[string]any, sign func([]byte) []byte) string {
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	enc := base64.RawURLEncoding.EncodeToString
	input := enc(h) + "." + enc(c)
	return input + "." + enc(sign([]byte(input)))
}

func jwkOf(t *testing.T, key any) map[string]any {
	t.Helper()
	b, err := jose.JSONWebKey{Key: key}.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return m
}

func ecKey(t *testing.T) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func tokenRequest(proofs ...string) Request {
	return Request{Proofs: proofs, Method: "POST", URL: tokenURL}
}

func TestAcceptsProofsOfEveryKind(t *testing.T) {
	v := verifier(t)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	for _, c := range []struct {
		alg jose.SignatureAlgorithm
		key crypto.Signer
	}{{jose.ES256, ecKey(t)}, {jose.EdDSA, ed}, {jose.PS256, rsaKey}, {jose.RS256, rsaKey}} {
		proof := sign(t, c.key, c.alg, goodClaims(), "dpop+jwt")
		got, err := v.Verify(context.Background(), tokenRequest(proof))
		if err != nil {
			t.Fatalf("%s: %v", c.alg, err)
		}
		// RFC 7638 thumbprint, as go-jose computes it.
		jwk := jose.JSONWebKey{Key: c.key.Public()}
		want, _ := jwk.Thumbprint(crypto.SHA256)
		if got.JKT != base64.RawURLEncoding.EncodeToString(want) {
			t.Fatalf("%s: jkt %s, want %s", c.alg, got.JKT, base64.RawURLEncoding.EncodeToString(want))
		}
	}
}

// RFC 9864 names EdDSA over Ed25519 "Ed25519"; oauth4webapi and the npm
// dpop package put that name in the proofs of Ed25519 keys. go-jose knows
// only EdDSA, so the proof is made by hand.
func TestAcceptsEd25519ByItsFullySpecifiedName(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	header := map[string]any{"typ": "dpop+jwt", "alg": "Ed25519", "jwk": jwkOf(t, pub)}
	proof := handmade(header, goodClaims(), func(in []byte) []byte { return ed25519.Sign(priv, in) })
	got, err := verifier(t).Verify(context.Background(), tokenRequest(proof))
	if err != nil {
		t.Fatal(err)
	}
	want, _ := (&jose.JSONWebKey{Key: pub}).Thumbprint(crypto.SHA256)
	if got.JKT != base64.RawURLEncoding.EncodeToString(want) {
		t.Fatalf("jkt %s, want %s", got.JKT, base64.RawURLEncoding.EncodeToString(want))
	}
}

func TestHTUIgnoresQueryFragmentCaseAndDefaultPort(t *testing.T) {
	v := verifier(t)
	c := goodClaims()
	c["htu"] = "HTTPS://APP.example.com:443/.mailgate/oauth/token?x=1#f"
	if _, err := v.Verify(context.Background(), tokenRequest(sign(t, ecKey(t), jose.ES256, c, "dpop+jwt"))); err != nil {
		t.Fatal(err)
	}
}

func TestResourceProofWithATH(t *testing.T) {
	v := verifier(t)
	key := ecKey(t)
	token := "the.access.token"
	sum := sha256.Sum256([]byte(token))
	c := goodClaims()
	c["ath"] = base64.RawURLEncoding.EncodeToString(sum[:])
	req := Request{Proofs: []string{sign(t, key, jose.ES256, c, "dpop+jwt")}, Method: "POST", URL: tokenURL, AccessToken: token}
	if _, err := v.Verify(context.Background(), req); err != nil {
		t.Fatal(err)
	}
}

// TestRefusals has one case per check of RFC 9449 section 4.3 (and ours);
// each expects its own reason, so dropping any one check fails its case even
// where a later check would still refuse the proof.
func TestRefusals(t *testing.T) {
	key := ecKey(t)
	other := ecKey(t)
	smallRSA, _ := rsa.GenerateKey(rand.Reader, 1024)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	with := func(k string, v any) map[string]any {
		c := goodClaims()
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	es256 := func(input []byte) []byte {
		sum := sha256.Sum256(input)
		r, s, _ := ecdsa.Sign(rand.Reader, key, sum[:])
		return append(r.FillBytes(make([]byte, 32)), s.FillBytes(make([]byte, 32))...)
	}
	es256over384 := func(input []byte) []byte {
		sum := sha512.Sum384(input)
		r, s, _ := ecdsa.Sign(rand.Reader, key, sum[:])
		return append(r.FillBytes(make([]byte, 32)), s.FillBytes(make([]byte, 32))...)
	}
	x25519JWK := map[string]any{"kty": "OKP", "crv": "X25519", "x": base64.RawURLEncoding.EncodeToString(make([]byte, 32))}
	hdr := func(extra map[string]any) map[string]any {
		h := map[string]any{"typ": "dpop+jwt", "alg": "ES256", "jwk": jwkOf(t, key.Public())}
		for k, v := range extra {
			if v == nil {
				delete(h, k)
			} else {
				h[k] = v
			}
		}
		return h
	}
	good := sign(t, key, jose.ES256, goodClaims(), "dpop+jwt")

	cases := []struct {
		name   string
		req    Request
		reason string
	}{
		{"no header", tokenRequest(), "exactly one"},
		{"two headers", tokenRequest(good, sign(t, key, jose.ES256, goodClaims(), "dpop+jwt")), "exactly one"},
		{"JSON serialization", tokenRequest(`{"payload":"e30","signatures":[]}`), "compact"},
		{"typ JWT", tokenRequest(sign(t, key, jose.ES256, goodClaims(), "JWT")), "typ"},
		{"alg none", tokenRequest(handmade(hdr(map[string]any{"alg": "none"}), goodClaims(), func([]byte) []byte { return nil })), "alg"},
		{"alg HS256", tokenRequest(handmade(hdr(map[string]any{"alg": "HS256"}), goodClaims(), es256)), "alg"},
		{"no jwk", tokenRequest(handmade(hdr(map[string]any{"jwk": nil}), goodClaims(), es256)), "no jwk"},
		{"symmetric jwk", tokenRequest(handmade(hdr(map[string]any{"jwk": map[string]any{"kty": "oct", "k": "c2VjcmV0"}}), goodClaims(), es256)), "symmetric"},
		{"private jwk", tokenRequest(handmade(hdr(map[string]any{"jwk": jwkOf(t, key)}), goodClaims(), es256)), "private"},
		{"short RSA key", tokenRequest(sign(t, smallRSA, jose.RS256, goodClaims(), "dpop+jwt")), "2048"},
		{"signed by another key", tokenRequest(handmade(hdr(map[string]any{"jwk": jwkOf(t, other.Public())}), goodClaims(), es256)), "signature"},
		{"EdDSA with an EC key", tokenRequest(handmade(hdr(map[string]any{"alg": "EdDSA"}), goodClaims(), func(in []byte) []byte { return ed25519.Sign(ed, in) })), "is for OKP Ed25519 keys"},
		{"Ed25519 with an EC key", tokenRequest(handmade(hdr(map[string]any{"alg": "Ed25519"}), goodClaims(), func(in []byte) []byte { return ed25519.Sign(ed, in) })), "is for OKP Ed25519 keys"},
		{"Ed25519 with an X25519 key", tokenRequest(handmade(hdr(map[string]any{"alg": "Ed25519", "jwk": x25519JWK}), goodClaims(), func(in []byte) []byte { return ed25519.Sign(ed, in) })), "is for OKP Ed25519 keys"},
		{"ES256 with an Ed25519 key", tokenRequest(handmade(hdr(map[string]any{"jwk": jwkOf(t, ed.Public())}), goodClaims(), es256)), "is for EC P-256 keys"},
		// A P-256 signature over the SHA-384 hash verifies under the key;
		// only the pin says ES384 is not for P-256 keys.
		{"ES384 with a P-256 key", tokenRequest(handmade(hdr(map[string]any{"alg": "ES384"}), goodClaims(), es256over384)), "is for EC P-384 keys"},
		{"RS256 with an EC key", tokenRequest(handmade(hdr(map[string]any{"alg": "RS256"}), goodClaims(), es256)), "is for RSA keys"},
		{"a crit header", tokenRequest(handmade(hdr(map[string]any{"b64": false, "crit": []string{"b64"}}), goodClaims(), es256)), "crit"},
		{"no jti", tokenRequest(sign(t, key, jose.ES256, with("jti", nil), "dpop+jwt")), "required"},
		{"no iat", tokenRequest(sign(t, key, jose.ES256, with("iat", nil), "dpop+jwt")), "required"},
		{"wrong htm", tokenRequest(sign(t, key, jose.ES256, with("htm", "GET"), "dpop+jwt")), "htm"},
		{"wrong htu host", tokenRequest(sign(t, key, jose.ES256, with("htu", "https://evil.example/.mailgate/oauth/token"), "dpop+jwt")), "htu"},
		{"wrong htu path", tokenRequest(sign(t, key, jose.ES256, with("htu", "https://app.example.com/.mailgate/api/v1/login-email"), "dpop+jwt")), "htu"},
		{"htu over http", tokenRequest(sign(t, key, jose.ES256, with("htu", "http://app.example.com/.mailgate/oauth/token"), "dpop+jwt")), "htu"},
		{"iat too old", tokenRequest(sign(t, key, jose.ES256, with("iat", now.Add(-2*time.Minute).Unix()), "dpop+jwt")), "iat"},
		{"iat in the future", tokenRequest(sign(t, key, jose.ES256, with("iat", now.Add(2*time.Minute).Unix()), "dpop+jwt")), "iat"},
		{"no ath with a token", Request{Proofs: []string{sign(t, key, jose.ES256, goodClaims(), "dpop+jwt")}, Method: "POST", URL: tokenURL, AccessToken: "tok"}, "ath"},
		{"ath of another token", Request{Proofs: []string{sign(t, key, jose.ES256, with("ath", "AAAA"), "dpop+jwt")}, Method: "POST", URL: tokenURL, AccessToken: "tok"}, "ath"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := verifier(t).Verify(context.Background(), c.req)
			if !errors.Is(err, ErrInvalidProof) || !strings.Contains(err.Error(), c.reason) {
				t.Fatalf("err = %v, want ErrInvalidProof mentioning %q", err, c.reason)
			}
		})
	}
}

func TestReplayedProofIsRefused(t *testing.T) {
	v := verifier(t)
	proof := sign(t, ecKey(t), jose.ES256, goodClaims(), "dpop+jwt")
	if _, err := v.Verify(context.Background(), tokenRequest(proof)); err != nil {
		t.Fatal(err)
	}
	_, err := v.Verify(context.Background(), tokenRequest(proof))
	if !errors.Is(err, ErrInvalidProof) || !strings.Contains(err.Error(), "jti") {
		t.Fatalf("replay: err = %v", err)
	}
}

// Two clients may pick the same jti; only the same key repeating it is a
// replay.
func TestSameJTIFromAnotherKeyIsNoReplay(t *testing.T) {
	v := verifier(t)
	c := goodClaims()
	for _, key := range []*ecdsa.PrivateKey{ecKey(t), ecKey(t)} {
		if _, err := v.Verify(context.Background(), tokenRequest(sign(t, key, jose.ES256, c, "dpop+jwt"))); err != nil {
			t.Fatal(err)
		}
	}
}

// countingReplay counts the writes that reach the replay store, to show that
// a refused proof leaves nothing there.
type countingReplay struct {
	Replay
	puts int
}

func (r *countingReplay) Mark(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	r.puts++
	return r.Replay.Mark(ctx, key, ttl)
}

func countingVerifier(t *testing.T) (*Verifier, *countingReplay) {
	t.Helper()
	v := verifier(t)
	r := &countingReplay{Replay: v.Replay}
	v.Replay = r
	return v, r
}

// encoding/json decodes a string of digits into a json.Number too, so the
// type of iat has to be checked on its own. Before the fix the two strings
// were accepted; the other values were refused, but for other reasons.
func TestIATMustBeAJSONNumber(t *testing.T) {
	key := ecKey(t)
	for name, iat := range map[string]any{
		"string of digits": strconv.FormatInt(now.Unix(), 10),
		"string fraction":  strconv.FormatInt(now.Unix(), 10) + ".5",
		"bool":             true,
		"null":             nil,
		"object":           map[string]any{"iat": now.Unix()},
		"array":            []any{now.Unix()},
	} {
		t.Run(name, func(t *testing.T) {
			c := goodClaims()
			c["iat"] = iat
			_, err := verifier(t).Verify(context.Background(), tokenRequest(sign(t, key, jose.ES256, c, "dpop+jwt")))
			if !errors.Is(err, ErrInvalidProof) || !strings.Contains(err.Error(), "iat must be a JSON number") {
				t.Fatalf("iat %v: err = %v, want ErrInvalidProof: iat must be a JSON number", iat, err)
			}
		})
	}
}

// RFC 7519 NumericDate may have a fraction.
func TestFractionalIATIsAccepted(t *testing.T) {
	c := goodClaims()
	c["iat"] = float64(now.Unix()) + 0.5
	if _, err := verifier(t).Verify(context.Background(), tokenRequest(sign(t, ecKey(t), jose.ES256, c, "dpop+jwt"))); err != nil {
		t.Fatal(err)
	}
}

// The jti ends up in a replay marker that is never evicted, so a long one
// is refused before the replay store sees it. The limit is in bytes, not
// characters.
func TestJTILongerThanMaxJTIIsRefusedBeforeTheReplayStore(t *testing.T) {
	key := ecKey(t)
	for _, c := range []struct {
		name string
		jti  string
		ok   bool
	}{
		{"MaxJTI bytes", strings.Repeat("j", MaxJTI), true},
		{"MaxJTI bytes of two-byte runes", strings.Repeat("é", MaxJTI/2), true},
		{"one byte more", strings.Repeat("j", MaxJTI+1), false},
		{"few runes, too many bytes", strings.Repeat("€", MaxJTI/3+1), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			v, replay := countingVerifier(t)
			claims := goodClaims()
			claims["jti"] = c.jti
			_, err := v.Verify(context.Background(), tokenRequest(sign(t, key, jose.ES256, claims, "dpop+jwt")))
			switch {
			case c.ok && (err != nil || replay.puts != 1):
				t.Fatalf("%d-byte jti: err = %v, %d replay writes; want it accepted and remembered", len(c.jti), err, replay.puts)
			case !c.ok && (!errors.Is(err, ErrInvalidProof) || !strings.Contains(err.Error(), "jti is longer than") || replay.puts != 0):
				t.Fatalf("%d-byte jti: err = %v, %d replay writes; want ErrInvalidProof: jti is longer than, and none", len(c.jti), err, replay.puts)
			}
		})
	}
}

// A proof is refused for its size alone, before it is parsed: the largest
// proof within MaxProofBytes passes, the next larger one does not, and
// neither does an oversized one that is not even a JWS.
func TestProofLongerThanMaxProofBytesIsRefused(t *testing.T) {
	key := ecKey(t)
	padded := func(n int) string {
		c := goodClaims()
		c["pad"] = strings.Repeat("p", n)
		return sign(t, key, jose.ES256, c, "dpop+jwt")
	}
	// The proof grows by one or two characters per byte of pad; start from
	// an estimate and step to the last pad that fits.
	n := (MaxProofBytes - len(padded(0))) * 3 / 4
	for len(padded(n)) > MaxProofBytes {
		n--
	}
	for len(padded(n+1)) <= MaxProofBytes {
		n++
	}
	fits, over := padded(n), padded(n+1)
	if len(fits) > MaxProofBytes || len(over) <= MaxProofBytes {
		t.Fatalf("padding: proofs of %d and %d bytes do not straddle %d", len(fits), len(over), MaxProofBytes)
	}

	v, replay := countingVerifier(t)
	if _, err := v.Verify(context.Background(), tokenRequest(fits)); err != nil {
		t.Fatalf("%d-byte proof: %v", len(fits), err)
	}
	for name, proof := range map[string]string{
		"signed":    over,
		"not a JWS": strings.Repeat("x", MaxProofBytes) + "..",
	} {
		replay.puts = 0
		_, err := v.Verify(context.Background(), tokenRequest(proof))
		if !errors.Is(err, ErrInvalidProof) || !strings.Contains(err.Error(), "proof is longer than") || replay.puts != 0 {
			t.Fatalf("%s %d-byte proof: err = %v, %d replay writes; want ErrInvalidProof: proof is longer than, and none", name, len(proof), err, replay.puts)
		}
	}
}
