package password

import (
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

func TestArgon2idRoundTrip(t *testing.T) {
	h := New("correct horse battery staple")
	s := h.String()
	if !strings.HasPrefix(s, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("hash %q is not PHC argon2id with the OWASP parameters", s)
	}
	parsed, err := Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	if !parsed.Matches("correct horse battery staple") || parsed.Matches("correct horse battery stapl") {
		t.Fatal("parsed hash does not check its secret")
	}
	if New("x").String() == New("x").String() {
		t.Fatal("two hashes of one secret are equal: no salt")
	}
}

func TestBcryptAccepted(t *testing.T) {
	b, _ := bcrypt.GenerateFromPassword([]byte("s3cret-s3cret"), bcrypt.MinCost)
	h, err := Parse(string(b))
	if err != nil || !h.Matches("s3cret-s3cret") || h.Matches("nope") {
		t.Fatalf("bcrypt: %v", err)
	}
}

func TestParseRefuses(t *testing.T) {
	for _, s := range []string{"", "plaintext", "$argon2i$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA",
		"$argon2id$v=19$m=16,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", "$argon2id$v=19$m=19456,t=2,p=1$!!$aGFzaA", "$2b$99$x"} {
		if _, err := Parse(s); err == nil {
			t.Errorf("Parse(%q) accepted", s)
		}
	}
}

// docs/api.md tells operators to make secret_hash with caddy hash-password;
// these are its outputs (Caddy v2.11.9) for the same secret.
func TestAcceptsCaddyHashPassword(t *testing.T) {
	for _, s := range []string{
		`$argon2id$v=19$m=47104,t=1,p=1$dw/2jRl0d4VSDFfaojOlsQ$ktMTr4F1gME5sb/qHPhEQqa0z8imldQjAeEh/2+tzBo`,
		`$2a$14$qK5R2/PIKHzhWyGR2Dnla.WsgxdnjPonAo7RW7JPy6IPeFjB3NrgO`,
	} {
		h, err := Parse(s)
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		if !h.Matches("shop-secret-0123456789abcd") || h.Matches("shop-secret-0123456789abce") {
			t.Errorf("%s does not tell the secret from another", s)
		}
	}
}
