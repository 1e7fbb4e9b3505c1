package caddymodule

import (
	"cmp"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/google/uuid"

	"github.com/mailgate/caddy-mailgate/internal/clientapi"
	"github.com/mailgate/caddy-mailgate/internal/directory"
	"github.com/mailgate/caddy-mailgate/internal/flow"
	"github.com/mailgate/caddy-mailgate/internal/redirect"
	"github.com/mailgate/caddy-mailgate/internal/session"
	"github.com/mailgate/caddy-mailgate/internal/ticket"
)

// ProjectConfig is an app that logs people in with mailed codes through the
// client-side "auth by email" API (`{prefix}/login/email/…`, see
// docs/api.md): a single-page app or a game client calling from the
// browser. Unlike a client, a project has no secret; what keeps its logins
// safe is that they end only at its own callback URLs.
type ProjectConfig struct {
	// ID is the project's UUID, the `projectId` apps send.
	ID string `json:"id,omitempty"`

	// Name is what mails call the app; the id when empty.
	Name string `json:"name,omitempty"`

	// CallbackURLs are where a completed login may send the person, with
	// the user JWT in `?token=`. A request's `login_url` and `link_url`
	// must equal one of them exactly; `login_url` may be left out only when
	// there is one. Absolute `https` URLs (`http` for loopback hosts).
	// At least one.
	CallbackURLs []string `json:"callback_urls,omitempty"`

	// ErrorCallbackURL is where the person is sent when a login fails
	// after it left the app (an expired or used link).
	ErrorCallbackURL string `json:"error_callback_url,omitempty"`

	// CORSOrigins are the origins (`https://host[:port]`) whose pages may
	// call the API from the browser. Preflights from any other origin are
	// refused and its answers carry no CORS headers.
	CORSOrigins []string `json:"cors_origins,omitempty"`

	// CustomPayload accepts the `payload` parameter and returns it in the
	// user JWT's `payload` claim. Without it, a request with a payload is
	// refused.
	CustomPayload bool `json:"custom_payload,omitempty"`

	// TokenTTL is how long a user JWT lasts, 1m to 30 days. Default: 1h.
	TokenTTL caddy.Duration `json:"token_ttl,omitempty"`
}

const defaultProjectTokenTTL = time.Hour

// check validates the project's own settings; the Caddyfile parser runs it
// too, so errors carry a line.
func (p *ProjectConfig) check() error {
	if _, err := parseProjectID(p.ID); err != nil {
		return fmt.Errorf("mailgate: project %q: %w", p.ID, err)
	}
	if len(p.CallbackURLs) == 0 {
		return fmt.Errorf("mailgate: project %s: needs at least one callback_url", p.ID)
	}
	for _, u := range append(append([]string{}, p.CallbackURLs...), p.ErrorCallbackURL) {
		if u == "" {
			continue
		}
		if err := redirect.CheckURI(u); err != nil {
			return fmt.Errorf("mailgate: project %s: callback URL %q: %w", p.ID, u, err)
		}
	}
	for _, o := range p.CORSOrigins {
		if err := checkOrigin(o); err != nil {
			return fmt.Errorf("mailgate: project %s: cors_origin %q: %w", p.ID, o, err)
		}
	}
	if p.TokenTTL != 0 && (p.TokenTTL < caddy.Duration(time.Minute) || p.TokenTTL > caddy.Duration(maxSessionTTL)) {
		return fmt.Errorf("mailgate: project %s: token_ttl %s: must be between 1m and 720h (30 days)", p.ID, time.Duration(p.TokenTTL))
	}
	return nil
}

// parseProjectID reads a project id as a UUID in its canonical form, so
// that one project has one spelling.
func parseProjectID(s string) (string, error) {
	id, err := uuid.Parse(s)
	if err != nil || len(s) != 36 {
		return "", fmt.Errorf("must be a UUID such as 5b7c3a1e-6c1d-4d1f-9a51-3c1f0e9a2b77")
	}
	return id.String(), nil
}

// checkOrigin accepts scheme://host[:port] and nothing more: browsers send
// the Origin header in exactly that form.
func checkOrigin(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") ||
		u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil || strings.HasSuffix(s, "/") {
		return fmt.Errorf("must be an origin such as https://game.example.com")
	}
	if u.Scheme == "http" && !redirect.IsLoopback(u.Hostname()) {
		return fmt.Errorf("must use https (http only for localhost)")
	}
	return nil
}

// checkProjects checks every project, as JSON configs reach provisioning
// without the Caddyfile's checks, and writes each id in its canonical form.
func (m *Mailgate) checkProjects() error {
	seen := map[string]bool{}
	for i := range m.Projects {
		p := &m.Projects[i]
		if err := p.check(); err != nil {
			return err
		}
		p.ID, _ = parseProjectID(p.ID)
		if seen[p.ID] {
			return fmt.Errorf("mailgate: project %s is configured twice", p.ID)
		}
		seen[p.ID] = true
		if p.TokenTTL == 0 {
			p.TokenTTL = caddy.Duration(defaultProjectTokenTTL)
		}
	}
	return nil
}

// provisionCodes builds the mailed-code flow and the client-side API that
// drives it (with signIn, seed 004's, when a client may sign people in);
// the pages confirm its links.
func (m *Mailgate) provisionCodes(store ticket.Store, mailer flow.Mailer, allow flow.Allowlist, users *directory.Directory, tokens *session.AppTokens, signIn *clientapi.SignIn) *flow.EmailCode {
	codes := &flow.EmailCode{
		Store:     store,
		Users:     users,
		Mailer:    mailer,
		Allowlist: allow,
		LinkURL:   m.urls().CodeLinkURL,
		SiteName:  m.SiteName,
		Now:       now,
		Limits:    m.Limits.codeLimits(),
		Observer:  m.observer,
	}
	projects := make(clientapi.Projects, len(m.Projects))
	for _, p := range m.Projects {
		projects[p.ID] = &clientapi.Project{
			Project:      flow.Project{ID: p.ID, CustomPayload: p.CustomPayload, TokenTTL: time.Duration(p.TokenTTL)},
			Name:         cmp.Or(p.Name, p.ID),
			CallbackURLs: p.CallbackURLs,
			CORSOrigins:  p.CORSOrigins,
		}
	}
	m.clientAPI = clientapi.Routes(m.Prefix, &clientapi.EmailCode{
		Projects: projects,
		Flow:     codes,
		Logins:   &flow.ProjectLogin{Tokens: tokens, Sessions: m.sessions, Users: users, Now: now, Observer: m.observer},
		Failures: m.Limits.failures(store),
		ClientIP: clientIP,
		Observer: m.observer,
	}, signIn)
	return codes
}

// longestProjectTokenTTL is the longest lifetime of any project's user JWTs.
func (m *Mailgate) longestProjectTokenTTL() time.Duration {
	var longest time.Duration
	for _, p := range m.Projects {
		longest = max(longest, time.Duration(p.TokenTTL))
	}
	return longest
}

// errorCallbacks are the projects' error pages, by project id.
func (m *Mailgate) errorCallbacks() map[string]string {
	urls := make(map[string]string, len(m.Projects))
	for _, p := range m.Projects {
		if p.ErrorCallbackURL != "" {
			urls[p.ID] = p.ErrorCallbackURL
		}
	}
	return urls
}
