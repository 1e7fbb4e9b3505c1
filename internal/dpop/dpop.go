// Package dpop checks DPoP proofs (RFC 9449): a client proves that it holds
// the private key an access token is bound to, for one request at a time.
package dpop

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
)

// ErrInvalidProof wraps every reason a proof is refused.
var ErrInvalidProof = errors.New("invalid DPoP proof")

// MaxProofBytes bounds a proof (the DPoP header value), checked before it is
// parsed, so that a client cannot make the server decode and verify
// arbitrarily large input. An honest proof is well under it: one with an
// RSA-4096 jwk is under 2 KiB.
const MaxProofBytes = 8 << 10

// MaxJTI bounds a proof's jti, in bytes. The jti is chosen by the client and
// is part of the replay-store key, and replay markers are never evicted to
// make room (forgetting one would admit a replay), so their size must be
// bounded before anything is written.
const MaxJTI = 256

// Algorithms are the signature algorithms accepted for proofs, as a proof's
// alg names them: asymmetric only, so that a proof can be checked with the
// public key it carries. Ed25519 is RFC 9864's fully specified name for
// EdDSA over Ed25519, which oauth4webapi and the npm dpop package send.
var Algorithms = []string{
	"ES256", "ES384", "ES512", "EdDSA", "Ed25519",
	"PS256", "PS384", "PS512", "RS256", "RS384", "RS512",
}

// algorithm is how a proof of one alg is checked: jwx's verifier, and the
// one kind of key the alg may be used with, so that a proof cannot pick an
// alg its key was not made for (ES256 with a P-384 key, EdDSA with an
// X25519 one).
type algorithm struct {
	verify jwa.SignatureAlgorithm
	key    string
}

var algorithms = map[string]algorithm{
	"ES256":   {jwa.ES256, "EC P-256"},
	"ES384":   {jwa.ES384, "EC P-384"},
	"ES512":   {jwa.ES512, "EC P-521"},
	"EdDSA":   {jwa.EdDSA, "OKP Ed25519"},
	"Ed25519": {jwa.EdDSA, "OKP Ed25519"},
	"PS256":   {jwa.PS256, "RSA"},
	"PS384":   {jwa.PS384, "RSA"},
	"PS512":   {jwa.PS512, "RSA"},
	"RS256":   {jwa.RS256, "RSA"},
	"RS384":   {jwa.RS384, "RSA"},
	"RS512":   {jwa.RS512, "RSA"},
}

// AlgorithmNames lists Algorithms for the `algs` parameter of a
// WWW-Authenticate challenge.
func AlgorithmNames() string {
	return strings.Join(Algorithms, " ")
}

// Replay remembers proof ids as markers: Mark must be atomic, and a marker
// must never be dropped to make room, or a used proof would pass again.
type Replay interface {
	Mark(ctx context.Context, key string, ttl time.Duration) (bool, error)
}

// Verifier checks proofs against the requests they came with.
type Verifier struct {
	Replay Replay
	Now    func() time.Time
	// Window is how far a proof's iat may be from now, either way.
	Window time.Duration
}

// Request is what a proof must match.
type Request struct {
	// Proofs are all values of the request's DPoP header.
	Proofs []string
	Method string
	// URL is the request's URL as the server's configured base URL names
	// it, never as the Host header does.
	URL string
	// AccessToken is the token presented with the proof at a resource, if
	// any; then the proof must carry its hash in ath.
	AccessToken string
}

// Proof is a verified proof.
type Proof struct {
	// JKT is the RFC 7638 SHA-256 thumbprint of the proof's key.
	JKT string
}

// claims are a proof's payload. IAT is kept raw for jsonNumber: decoding it
// into a json.Number would also accept a string such as "1732470000".
type claims struct {
	JTI string          `json:"jti"`
	HTM string          `json:"htm"`
	HTU string          `json:"htu"`
	IAT json.RawMessage `json:"iat"`
	ATH string          `json:"ath"`
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidProof, fmt.Sprintf(format, args...))
}

// Verify runs every check of RFC 9449 section 4.3 and remembers the proof's
// jti, so that the same proof is refused the second time. An error that
// does not wrap ErrInvalidProof means the replay store failed.
func (v *Verifier) Verify(ctx context.Context, req Request) (Proof, error) {
	if len(req.Proofs) != 1 {
		return Proof{}, invalid("want exactly one DPoP header, got %d", len(req.Proofs))
	}
	raw := req.Proofs[0]
	if len(raw) > MaxProofBytes {
		return Proof{}, invalid("proof is longer than %d bytes", MaxProofBytes)
	}
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return Proof{}, invalid("not a compact JWS")
	}
	hdr, err := parseHeader(parts[0])
	if err != nil {
		return Proof{}, err
	}
	if hdr.typ != "dpop+jwt" {
		return Proof{}, invalid("typ %q, want dpop+jwt", hdr.typ)
	}
	alg, ok := algorithms[hdr.alg]
	if !ok {
		return Proof{}, invalid("alg %q is not one of %s", hdr.alg, AlgorithmNames())
	}
	if len(hdr.jwk) == 0 || string(hdr.jwk) == "null" {
		return Proof{}, invalid("no jwk header")
	}
	key, err := jwk.ParseKey(hdr.jwk)
	if err != nil {
		return Proof{}, invalid("jwk: %v", err)
	}
	if err := publicOnly(key); err != nil {
		return Proof{}, err
	}
	if kind := keyKind(key); kind != alg.key {
		return Proof{}, invalid("alg %s is for %s keys, the jwk is %s", hdr.alg, alg.key, kind)
	}
	payload, err := verifySignature(alg.verify, parts, key)
	if err != nil {
		return Proof{}, invalid("signature does not verify with the jwk for %s", hdr.alg)
	}
	var c claims
	dec := json.NewDecoder(strings.NewReader(string(payload)))
	if err := dec.Decode(&c); err != nil {
		return Proof{}, invalid("claims: %v", err)
	}
	if c.JTI == "" || c.HTM == "" || c.HTU == "" || len(c.IAT) == 0 {
		return Proof{}, invalid("jti, htm, htu and iat are required")
	}
	if len(c.JTI) > MaxJTI {
		return Proof{}, invalid("jti is longer than %d bytes", MaxJTI)
	}
	if c.HTM != req.Method {
		return Proof{}, invalid("htm %q does not match %s", c.HTM, req.Method)
	}
	if !sameURI(c.HTU, req.URL) {
		return Proof{}, invalid("htu %q does not match %s", c.HTU, req.URL)
	}
	iat, ok := jsonNumber(c.IAT)
	if !ok {
		return Proof{}, invalid("iat must be a JSON number")
	}
	now := v.Now()
	issued := time.Unix(int64(iat), 0)
	if issued.Before(now.Add(-v.Window)) || issued.After(now.Add(v.Window)) {
		return Proof{}, invalid("iat %s is outside %s of now", issued.UTC().Format(time.RFC3339), v.Window)
	}
	if req.AccessToken != "" {
		sum := sha256.Sum256([]byte(req.AccessToken))
		if c.ATH != base64.RawURLEncoding.EncodeToString(sum[:]) {
			return Proof{}, invalid("ath does not match the access token")
		}
	}
	thumb, err := key.Thumbprint(crypto.SHA256)
	if err != nil {
		return Proof{}, invalid("thumbprint: %v", err)
	}
	jkt := base64.RawURLEncoding.EncodeToString(thumb)

	// The replay key covers the key too: two clients may pick the same jti.
	// It lives as long as the proof could still pass the iat check.
	fresh, err := v.Replay.Mark(ctx, "dpop-jti:"+jkt+":"+c.JTI, 2*v.Window)
	if err != nil {
		return Proof{}, fmt.Errorf("dpop: replay store: %w", err)
	}
	if !fresh {
		return Proof{}, invalid("jti was used before")
	}
	return Proof{JKT: jkt}, nil
}

// header is what a proof's protected header says, as far as it is read.
type header struct {
	typ, alg string
	jwk      json.RawMessage
}

// parseHeader decodes a proof's header itself rather than through
// jws.Parse: jwx v2 knows no alg named Ed25519, and teaching it one is a
// process-wide registration that every other user of jwx in the Caddy
// binary would see. Member names match exactly (encoding/json would also
// take "ALG" for alg), and a crit header is refused: no extension is
// understood here (RFC 7515 section 4.1.11), b64 among them (RFC 7797).
func parseHeader(segment string) (header, error) {
	raw, err := base64.RawURLEncoding.DecodeString(segment)
	if err != nil {
		return header{}, invalid("not a JWS: header is not base64url")
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return header{}, invalid("not a JWS: header is not a JSON object")
	}
	if _, ok := fields["crit"]; ok {
		return header{}, invalid("crit names extensions this server does not understand")
	}
	var h header
	for name, dst := range map[string]*string{"typ": &h.typ, "alg": &h.alg} {
		if v, ok := fields[name]; ok && json.Unmarshal(v, dst) != nil {
			return header{}, invalid("%s is not a string", name)
		}
	}
	h.jwk = fields["jwk"]
	return h, nil
}

// keyKind names a public key the way algorithms pins them: "RSA", or the
// key type and its curve.
func keyKind(key jwk.Key) string {
	switch k := key.(type) {
	case jwk.ECDSAPublicKey:
		return "EC " + k.Crv().String()
	case jwk.OKPPublicKey:
		return "OKP " + k.Crv().String()
	}
	return key.KeyType().String()
}

// verifySignature checks the compact JWS in parts with key under alg and
// returns its decoded payload.
func verifySignature(alg jwa.SignatureAlgorithm, parts []string, key jwk.Key) ([]byte, error) {
	v, err := jws.NewVerifier(alg)
	if err != nil {
		return nil, err
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return nil, err
	}
	var pub any
	if err := key.Raw(&pub); err != nil {
		return nil, err
	}
	if err := v.Verify([]byte(parts[0]+"."+parts[1]), sig, pub); err != nil {
		return nil, err
	}
	return base64.RawURLEncoding.DecodeString(parts[1])
}

// jsonNumber reads raw as a JSON number and as nothing else: a string, bool,
// null, object or array is refused, where json.Number would take a string
// holding digits. Fractions are kept.
func jsonNumber(raw json.RawMessage) (float64, bool) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) != nil {
		return 0, false
	}
	n, ok := v.(json.Number)
	if !ok {
		return 0, false
	}
	f, err := n.Float64()
	return f, err == nil
}

// publicOnly refuses a symmetric key (IsPrivateKey errs on one), a private
// key (the client leaked it), and an RSA key too short to mean anything.
func publicOnly(key jwk.Key) error {
	private, err := jwk.IsPrivateKey(key)
	if err != nil {
		return invalid("jwk: %v", err)
	}
	if private {
		return invalid("jwk contains a private key")
	}
	var rsaKey rsa.PublicKey
	if key.KeyType() == jwa.RSA {
		if err := key.Raw(&rsaKey); err != nil || rsaKey.N.BitLen() < 2048 {
			return invalid("RSA jwk is shorter than 2048 bits")
		}
	}
	return nil
}

// sameURI compares htu with the request URL without query and fragment, the
// scheme and host case-insensitively and default ports ignored (RFC 9449
// section 4.3, RFC 3986 section 6.2.3).
func sameURI(htu, want string) bool {
	a, err1 := url.Parse(htu)
	b, err2 := url.Parse(want)
	if err1 != nil || err2 != nil || a.Opaque != "" || a.User != nil {
		return false
	}
	return strings.EqualFold(a.Scheme, b.Scheme) &&
		hostPort(a) == hostPort(b) &&
		pathOrSlash(a.EscapedPath()) == pathOrSlash(b.EscapedPath())
}

func hostPort(u *url.URL) string {
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if (u.Scheme == "https" && port == "443") || (u.Scheme == "http" && port == "80") {
		port = ""
	}
	return host + ":" + port
}

func pathOrSlash(p string) string {
	if p == "" {
		return "/"
	}
	return p
}
