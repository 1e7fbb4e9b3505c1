package caddymodule

import (
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/mailgate/caddy-mailgate/internal/admin"
	"github.com/mailgate/caddy-mailgate/internal/api"
	"github.com/mailgate/caddy-mailgate/internal/directory"
	"github.com/mailgate/caddy-mailgate/internal/dpop"
	"github.com/mailgate/caddy-mailgate/internal/flow"
	"github.com/mailgate/caddy-mailgate/internal/session"
	"github.com/mailgate/caddy-mailgate/internal/ticket"
)

// ClientConfig is an app allowed to call the server-to-server API.
type ClientConfig struct {
	// ID is the client_id.
	ID string `json:"id,omitempty"`

	// Name is what mails call the app ("The Shop asked … to send you this
	// sign-in link"); the id when empty.
	Name string `json:"name,omitempty"`

	// Secret is the client secret, at least 16 characters; placeholders
	// such as `{env.SHOP_SECRET}` are replaced, and one that is empty in
	// Caddy's environment is a config error. It is hashed with argon2id at
	// provisioning and not kept. Exactly one of Secret and SecretHash.
	Secret string `json:"secret,omitempty"`

	// SecretHash is an argon2id (`$argon2id$v=19$…`) or bcrypt (`$2b$…`)
	// hash of the secret, for configs that must not hold the secret.
	SecretHash string `json:"secret_hash,omitempty"`

	// RedirectURIs are where the client's logins may end. A redirect_uri
	// in a request must equal one of them exactly.
	RedirectURIs []string `json:"redirect_uris,omitempty"`

	// DPoP is `required` (default: only DPoP-bound tokens) or `allowed`
	// (Bearer tokens too).
	DPoP string `json:"dpop,omitempty"`

	// ForceCreate lets the client create users that do not exist yet.
	ForceCreate bool `json:"force_create,omitempty"`

	// Scopes are the API calls the client may make: `login_email`,
	// `magic_link`, `email_link`, `users:read` (find users) and
	// `users:write` (create, change, disable and delete users; see
	// docs/users.md).
	Scopes []string `json:"scopes,omitempty"`

	// EmailLinkPrefixes are the `urlPrefix` values the client may give
	// when it asks for an invitation or password-reset link (seed 001):
	// the mailed link is the prefix with the ticket appended, so it leads
	// to the app's own page, which verifies the ticket with
	// `{prefix}/api/v1/email-link/verify`. A urlPrefix must equal one of
	// them exactly. Without urlPrefix the links lead to mailgate's own
	// pages, `{base_url}{prefix}/account/invite/?x=` and
	// `{base_url}{prefix}/account/pwreset/?x=`. Absolute https URLs (http
	// only for localhost), without fragment.
	EmailLinkPrefixes []string `json:"email_link_prefixes,omitempty"`

	// SignIn lets the client's page sign people in with a username and
	// password (`{prefix}/api/account/login`, docs/sign-in.md). A client
	// with SignIn and no secret is a browser app: it may have neither
	// scopes nor redirect URIs.
	SignIn bool `json:"sign_in,omitempty"`

	// AskPersist makes the client's sign-ins stop at a "keep me signed
	// in" step (`next: "persist"`) after the password, which the app
	// finishes with `{prefix}/api/account/login-persist`; login's own
	// `persistent` is then not used. Only with SignIn. Default: off.
	AskPersist bool `json:"ask_persist,omitempty"`

	// CORSOrigins are the origins (`https://host[:port]`) whose pages may
	// call the sign-in API for the client, with cookies.
	CORSOrigins []string `json:"cors_origins,omitempty"`

	// SecondFactor is `email_code` to make every sign-in of the client
	// confirm a code mailed to the account's address after the password
	// (`next: "email_code"`, docs/sign-in.md); the confirmation page's
	// "back to the app" link is the first cors_origin. Its new passwords
	// (update-expired-password) then need 8 characters rather than 15
	// (NIST SP 800-63B-4); such a password signs in alone nowhere: a
	// client without a second factor, or the login page, sends its owner
	// to choose a 15-character one first. Only with SignIn. Default:
	// empty, the password alone.
	SecondFactor string `json:"second_factor,omitempty"`
}

// browserOnly reports whether the client is a browser app without a
// secret: it signs people in and calls no server-to-server API.
func (c ClientConfig) browserOnly() bool { return c.Secret == "" && c.SecretHash == "" }

// apiConfig is the client as the API takes it, its secret expanded by the
// caller when it provisions.
func (c ClientConfig) apiConfig(secret string) api.ClientConfig {
	return api.ClientConfig{
		ID: c.ID, Name: c.Name, Secret: secret, SecretHash: c.SecretHash,
		RedirectURIs: c.RedirectURIs, DPoP: c.DPoP, ForceCreate: c.ForceCreate, Scopes: c.Scopes,
		EmailLinkPrefixes: c.EmailLinkPrefixes,
	}
}

// check is what can be checked of a client before its secret is known.
func (c ClientConfig) check() error {
	if err := c.apiConfig("").Check(); err != nil {
		return fmt.Errorf("mailgate: %w", err)
	}
	if c.browserOnly() && (!c.SignIn || len(c.Scopes) > 0 || len(c.RedirectURIs) > 0) {
		return fmt.Errorf("mailgate: client %q: a secret or secret_hash is required (only a sign_in client without scopes or redirect_uri goes without)", c.ID)
	}
	if c.AskPersist && !c.SignIn {
		return fmt.Errorf("mailgate: client %q: ask_persist needs sign_in", c.ID)
	}
	switch {
	case c.SecondFactor != "" && c.SecondFactor != SecondFactorEmailCode:
		return fmt.Errorf("mailgate: client %q: second_factor %q: must be email_code", c.ID, c.SecondFactor)
	case c.SecondFactor != "" && !c.SignIn:
		return fmt.Errorf("mailgate: client %q: second_factor needs sign_in", c.ID)
	}
	for _, o := range c.CORSOrigins {
		if err := checkOrigin(o); err != nil {
			return fmt.Errorf("mailgate: client %s: cors_origin %q: %w", c.ID, o, err)
		}
	}
	return nil
}

// provisionAPI builds the server-to-server API: clients, access tokens and
// the DPoP checks. Its tokens are signed by the realm's keys with the API's
// URL as audience, so no session token can pass as an access token. It
// returns the token signer, which also signs the tokens of app logins.
func (m *Mailgate) provisionAPI(ring *session.KeyRing, store ticket.Store, users *directory.Directory, links *flow.MagicLink, codes flow.AuthCodes) (*session.AppTokens, error) {
	if m.AccessTokenTTL == 0 {
		m.AccessTokenTTL = caddy.Duration(defaultAccessTTL)
	}
	configs := make([]api.ClientConfig, 0, len(m.Clients))
	for _, c := range m.Clients {
		if c.browserOnly() {
			continue
		}
		secret, err := expandSecret("client "+c.ID+": secret", c.Secret)
		if err != nil {
			return nil, err
		}
		configs = append(configs, c.apiConfig(secret))
	}
	clients, err := api.NewClients(configs)
	if err != nil {
		return nil, fmt.Errorf("mailgate: %w", err)
	}
	tokens := &session.AppTokens{
		// Apps' tokens name {base_url}{prefix} as issuer, where the OIDC
		// discovery document lives.
		Signer: session.Signer{Ring: ring, Issuer: m.origin + m.Prefix, Audience: m.origin + m.Prefix + "/api", Now: now},
		TTL:    time.Duration(m.AccessTokenTTL),
	}
	verifier := &dpop.Verifier{Replay: store, Now: now, Window: dpopWindow}
	auth := &api.Authenticator{Clients: clients, Tokens: tokens, DPoP: verifier}
	m.api = api.Routes(m.Prefix, api.Endpoints{
		Discovery: &api.Discovery{Issuer: m.origin + m.Prefix},
		Token: &api.TokenEndpoint{
			Clients: clients, Tokens: tokens, DPoP: verifier, Codes: codes, Users: users,
			URL:      m.origin + m.Prefix + "/oauth/token",
			Failures: m.Limits.failures(store),
			ClientIP: clientIP,
			Observer: m.observer,
		},
		LoginEmail: &api.LoginEmail{
			Auth: auth, URL: m.origin + m.Prefix + "/api/v1/login-email", Users: users, Links: links,
			Observer: m.observer,
		},
		MagicLink: &api.MagicLink{
			Auth: auth, URL: m.origin + m.Prefix + "/api/v1/magic-link", Users: users, Links: links,
			Observer: m.observer,
		},
		Users: &api.UsersEndpoint{
			Auth: auth, URL: m.origin + m.Prefix + "/api/v1/users",
			Admin:    m.userAdmin(users, store),
			Observer: m.observer,
		},
		EmailLink: &api.EmailLink{
			Auth: auth, Origin: m.origin, Prefix: m.Prefix, Links: m.emailLinks,
			Failures: m.Limits.failures(store), ClientIP: clientIP, Observer: m.observer,
		},
	})
	return tokens, nil
}

// userAdmin is the users' management behind the users API: the
// directory, this config's sessions, and the realm's store for ending
// pending links.
func (m *Mailgate) userAdmin(users *directory.Directory, store ticket.Store) *admin.Users {
	return &admin.Users{Directory: users, Sessions: m.sessions, Pending: store, EmailLinks: m.emailLinks, Now: now, Observer: m.observer}
}
