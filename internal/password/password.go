// Package password hashes and checks secrets people and apps choose:
// argon2id in the PHC string format, with bcrypt accepted for hashes made
// elsewhere.
package password

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// OWASP's argon2id minimum: 19 MiB, 2 passes, 1 thread.
const (
	argonTime    = 2
	argonMemory  = 19 * 1024
	argonThreads = 1
	argonKeyLen  = 32
)

// Hash is a parsed hash that checks candidates.
type Hash interface {
	Matches(secret string) bool
	// String is the hash in its storable form.
	String() string
}

type argon2id struct {
	time, memory uint32
	threads      uint8
	salt, sum    []byte
}

// New hashes secret with argon2id and a fresh salt.
func New(secret string) Hash {
	salt := make([]byte, 16)
	_, _ = rand.Read(salt)
	h := argon2id{time: argonTime, memory: argonMemory, threads: argonThreads, salt: salt}
	h.sum = h.derive(secret, argonKeyLen)
	return h
}

func (h argon2id) derive(secret string, n uint32) []byte {
	return argon2.IDKey([]byte(secret), h.salt, h.time, h.memory, h.threads, n)
}

func (h argon2id) Matches(secret string) bool {
	return subtle.ConstantTimeCompare(h.derive(secret, uint32(len(h.sum))), h.sum) == 1
}

func (h argon2id) String() string {
	enc := base64.RawStdEncoding.EncodeToString
	return fmt.Sprintf("$argon2id$v=19$m=%d,t=%d,p=%d$%s$%s", h.memory, h.time, h.threads, enc(h.salt), enc(h.sum))
}

type bcryptHash string

func (h bcryptHash) Matches(secret string) bool {
	return bcrypt.CompareHashAndPassword([]byte(h), []byte(secret)) == nil
}

func (h bcryptHash) String() string { return string(h) }

// Parse reads a PHC argon2id string ($argon2id$v=19$m=…,t=…,p=…$salt$hash)
// or a bcrypt hash ($2a$, $2b$, $2y$).
func Parse(s string) (Hash, error) {
	switch {
	case strings.HasPrefix(s, "$2a$"), strings.HasPrefix(s, "$2b$"), strings.HasPrefix(s, "$2y$"):
		if _, err := bcrypt.Cost([]byte(s)); err != nil {
			return nil, fmt.Errorf("not a bcrypt hash: %w", err)
		}
		return bcryptHash(s), nil
	case strings.HasPrefix(s, "$argon2id$"):
		parts := strings.Split(s, "$")
		if len(parts) != 6 || parts[2] != "v=19" {
			return nil, errors.New("want $argon2id$v=19$m=…,t=…,p=…$salt$hash")
		}
		var h argon2id
		if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &h.memory, &h.time, &h.threads); err != nil {
			return nil, fmt.Errorf("argon2id parameters %q: %w", parts[3], err)
		}
		var err error
		if h.salt, err = base64.RawStdEncoding.DecodeString(parts[4]); err != nil {
			return nil, fmt.Errorf("argon2id salt: %w", err)
		}
		if h.sum, err = base64.RawStdEncoding.DecodeString(parts[5]); err != nil || len(h.sum) < 16 {
			return nil, errors.New("argon2id hash: not base64 or shorter than 16 bytes")
		}
		if h.time == 0 || h.memory < 8*1024 || h.threads == 0 {
			return nil, errors.New("argon2id parameters too weak (want m >= 8192, t >= 1, p >= 1)")
		}
		return h, nil
	}
	return nil, errors.New("use an argon2id ($argon2id$…) or bcrypt ($2b$…) hash")
}
