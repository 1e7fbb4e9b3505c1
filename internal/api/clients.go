// Package api serves the server-to-server contracts: client authentication,
// DPoP-bound access tokens, and the seed APIs (login email, magic link). It
// knows HTTP and the contracts' shapes, not Caddy.
package api

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// DPoP policies of a client.
const (
	DPoPRequired = "required" // only DPoP-bound tokens; the default
	DPoPAllowed  = "allowed"  // Bearer tokens too
)

// Scopes a client may be given.
const (
	ScopeLoginEmail = "login_email"
	ScopeMagicLink  = "magic_link"
)

// KnownScopes are all scopes mailgate defines.
var KnownScopes = []string{ScopeLoginEmail, ScopeMagicLink}

// Client is an app allowed to call the API.
type Client struct {
	ID           string
	RedirectURIs []string
	DPoP         string
	ForceCreate  bool
	Scopes       []string
	secret       secretHash
}

// HasScope reports whether the client was granted scope.
func (c *Client) HasScope(scope string) bool { return slices.Contains(c.Scopes, scope) }

// AllowsRedirect compares uri exactly against the client's list: no prefix,
// case or trailing-slash leniency, so that no other page can receive codes.
func (c *Client) AllowsRedirect(uri string) bool { return slices.Contains(c.RedirectURIs, uri) }

// ClientConfig is how a client is configured. Exactly one of Secret and
// SecretHash is set.
type ClientConfig struct {
	ID           string
	Secret       string
	SecretHash   string
	RedirectURIs []string
	DPoP         string
	ForceCreate  bool
	Scopes       []string
}

// Clients is the set of configured clients.
type Clients struct {
	byID map[string]*Client
	// dummy is checked for an unknown client id, so that it costs what a
	// wrong secret costs.
	dummy secretHash
}

// NewClients checks and hashes the configuration. A plain secret is hashed
// here and not kept.
func NewClients(configs []ClientConfig) (*Clients, error) {
	cs := &Clients{byID: map[string]*Client{}, dummy: hashArgon2id(rand.Text())}
	for _, cfg := range configs {
		if cfg.ID == "" || strings.ContainsAny(cfg.ID, ": \t") {
			return nil, fmt.Errorf("client %q: the id must be non-empty, without spaces or ':'", cfg.ID)
		}
		if _, dup := cs.byID[cfg.ID]; dup {
			return nil, fmt.Errorf("client %q is configured twice", cfg.ID)
		}
		c := &Client{ID: cfg.ID, RedirectURIs: cfg.RedirectURIs, DPoP: cfg.DPoP, ForceCreate: cfg.ForceCreate, Scopes: cfg.Scopes}
		switch {
		case cfg.Secret != "" && cfg.SecretHash != "":
			return nil, fmt.Errorf("client %q: set secret or secret_hash, not both", cfg.ID)
		case cfg.Secret != "":
			if len(cfg.Secret) < 16 {
				return nil, fmt.Errorf("client %q: the secret is shorter than 16 characters", cfg.ID)
			}
			c.secret = hashArgon2id(cfg.Secret)
		case cfg.SecretHash != "":
			h, err := parseSecretHash(cfg.SecretHash)
			if err != nil {
				return nil, fmt.Errorf("client %q: secret_hash: %w", cfg.ID, err)
			}
			c.secret = h
		default:
			return nil, fmt.Errorf("client %q: a secret or secret_hash is required", cfg.ID)
		}
		if c.DPoP == "" {
			c.DPoP = DPoPRequired
		}
		if c.DPoP != DPoPRequired && c.DPoP != DPoPAllowed {
			return nil, fmt.Errorf("client %q: dpop %q: use required or allowed", cfg.ID, c.DPoP)
		}
		for _, s := range c.Scopes {
			if !slices.Contains(KnownScopes, s) {
				return nil, fmt.Errorf("client %q: unknown scope %q (known: %s)", cfg.ID, s, strings.Join(KnownScopes, ", "))
			}
		}
		for _, u := range c.RedirectURIs {
			if err := checkRedirectURI(u); err != nil {
				return nil, fmt.Errorf("client %q: redirect_uri %q: %w", cfg.ID, u, err)
			}
		}
		cs.byID[c.ID] = c
	}
	return cs, nil
}

// Authenticate returns the client whose id and secret these are. An unknown
// id and a wrong secret take the same time and give the same answer.
func (cs *Clients) Authenticate(id, secret string) (*Client, bool) {
	c, ok := cs.byID[id]
	if !ok {
		cs.dummy.matches(secret)
		return nil, false
	}
	if !c.secret.matches(secret) {
		return nil, false
	}
	return c, true
}

// Get returns a client by id, for tokens that name one.
func (cs *Clients) Get(id string) (*Client, bool) {
	c, ok := cs.byID[id]
	return c, ok
}

// secretHash verifies a secret against a stored hash.
type secretHash interface {
	matches(secret string) bool
}

// argon2idHash is an argon2id hash with its parameters.
type argon2idHash struct {
	time, memory uint32
	threads      uint8
	salt, sum    []byte
}

// OWASP's argon2id minimum: 19 MiB, 2 passes, 1 thread.
const (
	argonTime    = 2
	argonMemory  = 19 * 1024
	argonThreads = 1
)

func hashArgon2id(secret string) argon2idHash {
	salt := make([]byte, 16)
	_, _ = rand.Read(salt)
	return argon2idHash{
		time: argonTime, memory: argonMemory, threads: argonThreads, salt: salt,
		sum: argon2.IDKey([]byte(secret), salt, argonTime, argonMemory, argonThreads, 32),
	}
}

func (h argon2idHash) derive(secret string) []byte {
	return argon2.IDKey([]byte(secret), h.salt, h.time, h.memory, h.threads, uint32(len(h.sum)))
}

func (h argon2idHash) matches(secret string) bool {
	return subtle.ConstantTimeCompare(h.derive(secret), h.sum) == 1
}

type bcryptHash []byte

func (h bcryptHash) matches(secret string) bool {
	return bcrypt.CompareHashAndPassword(h, []byte(secret)) == nil
}

// parseSecretHash reads a PHC argon2id string
// ($argon2id$v=19$m=19456,t=2,p=1$salt$hash) or a bcrypt hash ($2a$, $2b$,
// $2y$).
func parseSecretHash(s string) (secretHash, error) {
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
		var h argon2idHash
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
