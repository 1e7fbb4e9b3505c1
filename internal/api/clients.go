// Package api serves the server-to-server contracts: client authentication,
// DPoP-bound access tokens, and the seed APIs (login email, magic link). It
// knows HTTP and the contracts' shapes, not Caddy.
package api

import (
	"cmp"
	"crypto/rand"
	"fmt"
	"slices"
	"strings"

	"github.com/mailgate/caddy-mailgate/internal/password"
	"github.com/mailgate/caddy-mailgate/internal/redirect"
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
	ScopeUsersRead  = "users:read"
	ScopeUsersWrite = "users:write"
	// ScopeEmailLink is seed 001: create, show, withdraw and verify
	// invitation and password-reset links.
	ScopeEmailLink = "email_link"
)

// KnownScopes are all scopes mailgate defines.
var KnownScopes = []string{ScopeLoginEmail, ScopeMagicLink, ScopeEmailLink, ScopeUsersRead, ScopeUsersWrite}

// Client is an app allowed to call the API.
type Client struct {
	ID string
	// Name is what mails call the app; the id when none is configured.
	Name         string
	RedirectURIs []string
	DPoP         string
	ForceCreate  bool
	Scopes       []string
	// EmailLinkPrefixes are the urlPrefix values the client may ask email
	// links to start with (seed 001).
	EmailLinkPrefixes []string
	secret            password.Hash
}

// HasScope reports whether the client was granted scope.
func (c *Client) HasScope(scope string) bool { return slices.Contains(c.Scopes, scope) }

// AllowsRedirect compares uri exactly against the client's list: no prefix,
// case or trailing-slash leniency, so that no other page can receive codes.
func (c *Client) AllowsRedirect(uri string) bool { return slices.Contains(c.RedirectURIs, uri) }

// AllowsEmailLinkPrefix compares prefix exactly against the client's list,
// as AllowsRedirect does: a mailed link never leads anywhere the operator
// did not name.
func (c *Client) AllowsEmailLinkPrefix(prefix string) bool {
	return slices.Contains(c.EmailLinkPrefixes, prefix)
}

// ClientConfig is how a client is configured. Exactly one of Secret and
// SecretHash is set.
type ClientConfig struct {
	ID           string
	Name         string
	Secret       string
	SecretHash   string
	RedirectURIs []string
	DPoP         string
	ForceCreate  bool
	Scopes       []string
	// EmailLinkPrefixes: see Client.
	EmailLinkPrefixes []string
}

// Clients is the set of configured clients.
type Clients struct {
	byID map[string]*Client
	// dummy is checked for an unknown client id, so that it costs what a
	// wrong secret costs.
	dummy password.Hash
}

// Check checks what needs neither the secret nor the other clients: the id,
// the dpop mode, the scopes and the redirect URIs. NewClients runs it; a
// config parser may run it earlier, to point at the line at fault.
func (cfg ClientConfig) Check() error {
	if cfg.ID == "" || strings.ContainsAny(cfg.ID, ": \t") {
		return fmt.Errorf("client %q: the id must be non-empty, without spaces or ':'", cfg.ID)
	}
	if cfg.DPoP != "" && cfg.DPoP != DPoPRequired && cfg.DPoP != DPoPAllowed {
		return fmt.Errorf("client %q: dpop %q: use required or allowed", cfg.ID, cfg.DPoP)
	}
	for _, s := range cfg.Scopes {
		if !slices.Contains(KnownScopes, s) {
			return fmt.Errorf("client %q: unknown scope %q (known: %s)", cfg.ID, s, strings.Join(KnownScopes, ", "))
		}
	}
	for _, u := range cfg.RedirectURIs {
		if err := redirect.CheckURI(u); err != nil {
			return fmt.Errorf("client %q: redirect_uri %q: %w", cfg.ID, u, err)
		}
	}
	for _, u := range cfg.EmailLinkPrefixes {
		if err := redirect.CheckURI(u); err != nil {
			return fmt.Errorf("client %q: email_link_prefix %q: %w", cfg.ID, u, err)
		}
	}
	return nil
}

// NewClients checks and hashes the configuration. A plain secret is hashed
// here and not kept.
func NewClients(configs []ClientConfig) (*Clients, error) {
	cs := &Clients{byID: map[string]*Client{}, dummy: password.New(rand.Text())}
	for _, cfg := range configs {
		if err := cfg.Check(); err != nil {
			return nil, err
		}
		if _, dup := cs.byID[cfg.ID]; dup {
			return nil, fmt.Errorf("client %q is configured twice", cfg.ID)
		}
		c := &Client{ID: cfg.ID, Name: cmp.Or(cfg.Name, cfg.ID), RedirectURIs: cfg.RedirectURIs, DPoP: cfg.DPoP, ForceCreate: cfg.ForceCreate, Scopes: cfg.Scopes, EmailLinkPrefixes: cfg.EmailLinkPrefixes}
		switch {
		case cfg.Secret != "" && cfg.SecretHash != "":
			return nil, fmt.Errorf("client %q: set secret or secret_hash, not both", cfg.ID)
		case cfg.Secret != "":
			if len(cfg.Secret) < 16 {
				return nil, fmt.Errorf("client %q: the secret is shorter than 16 characters", cfg.ID)
			}
			c.secret = password.New(cfg.Secret)
		case cfg.SecretHash != "":
			h, err := password.Parse(cfg.SecretHash)
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
		cs.byID[c.ID] = c
	}
	return cs, nil
}

// Authenticate returns the client whose id and secret these are. An unknown
// id and a wrong secret take the same time and give the same answer.
func (cs *Clients) Authenticate(id, secret string) (*Client, bool) {
	c, ok := cs.byID[id]
	if !ok {
		cs.dummy.Matches(secret)
		return nil, false
	}
	if !c.secret.Matches(secret) {
		return nil, false
	}
	return c, true
}

// Get returns a client by id, for tokens that name one.
func (cs *Clients) Get(id string) (*Client, bool) {
	c, ok := cs.byID[id]
	return c, ok
}
