// Package web renders mailgate's browser pages: embedded templates, one
// stylesheet and one small script, no external assets, served with a strict
// CSP.
package web

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/mailgate/caddy-mailgate/internal/ticket"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static/style.css
var styleCSS []byte

//go:embed static/busy.js
var busyJS []byte

// StyleCSS is the only stylesheet, served from the prefix; the CSP allows no
// inline style.
func StyleCSS() []byte { return styleCSS }

// CSP allows nothing but this origin's stylesheet and forms posting back to
// this origin: no script at all, for every answer that is not a page.
const CSP = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// pageCSP is CSP plus the one script a page loads, by a nonce fresh for
// each answer: no inline script and no other file of this origin (whose
// other paths belong to the protected app) can run.
func pageCSP(nonce string) string { return CSP + "; script-src 'nonce-" + nonce + "'" }

// Page names.
const (
	PageLogin       = "login"
	PageSent        = "sent"
	PageConfirm     = "confirm"
	PageInvalid     = "invalid"
	PageSendFailed  = "send_failed"
	PageTooMany     = "too_many"
	PageLogout      = "logout"
	PageSignedOut   = "signed_out"
	PageSetPassword = "set_password"
	PageCodeLinked  = "code_linked"
	PageCode        = "code"
	// PageCodeLinkInvalid is a code link that no longer works.
	PageCodeLinkInvalid = "code_link_invalid"
	// PageCodeLocked is an address over its wrong codes: no code until
	// Until, and the link form instead.
	PageCodeLocked = "code_locked"
	// PageUnavailable is a 503: the store or the storage cannot be read.
	PageUnavailable = "unavailable"
	// PageLogoutFailed is a sign-out that did not happen.
	PageLogoutFailed = "logout_failed"
	// The pages of seed 001's email links: an invitation to accept, a
	// password to reset, a link to revoke and its revocation, and a link
	// that no longer works.
	PageInvite           = "invite"
	PageReset            = "pwreset"
	PageRevoke           = "revoke"
	PageRevoked          = "revoked"
	PageEmailLinkInvalid = "email_link_invalid"
)

// Data is what a page shows.
type Data struct {
	Locale    string
	SiteName  string
	Prefix    string
	FormToken string
	Return    string
	Email     string
	Secret    string
	Minutes   int
	// Account is the masked address a page names (see MaskEmail), so a
	// person who opened someone else's sign-in link notices before using it.
	Account string
	// Error is a catalogue key of a message to show above the form.
	Error string
	// T is the page's catalogue, filled by Render.
	T map[string]string
	// Title is the page's title, set by the page's own template.
	Title string
	// SignedInAs is the address of the visitor's valid session, if any,
	// for pages that should say so.
	SignedInAs string
	// Nonce lets the page's script tag past the CSP, filled by Render.
	Nonce string
	// Action is where the confirmation page's form posts, under the
	// prefix: "/link" when empty.
	Action string
	// Next is where a page's link leads on, such as the app's status page.
	Next string
	// CodeLogin offers "email me a code" beside the link on the login
	// form.
	CodeLogin bool
	// Project is the project whose code link a page confirms.
	Project string
	// Until is when a pause ends, as a time of day for the page's reader.
	Until string
	// Sender is the app that sent an email link, empty for the operator.
	Sender string
	// LinkType is an email link's type (flow.EmailLinkType), for pages
	// whose words depend on it.
	LinkType string
	// Profile is the profile page's content.
	Profile *ProfileData
	// Dashboard is the operator dashboard's content.
	Dashboard *DashboardData

	// The password sign-in's (passwordlogin.go). PasswordLogin offers
	// "use a password instead" on the login form; KeepCheckbox, "keep me
	// signed in" on the password form. Username is what the person typed,
	// shown again. Rules are the catalogue keys of each password rule a
	// new password broke.
	PasswordLogin bool
	KeepCheckbox  bool
	Username      string
	Rules         []string
}

// withTitle lets a page template pass its title to the shared head.
// The site's name is added unless the title already says it ("Sign in to
// Example" is not followed by "· Example").
func withTitle(d Data, title string) Data {
	d.Title = title
	if !strings.Contains(title, d.SiteName) {
		d.Title += " · " + d.SiteName
	}
	return d
}

// Pages renders the pages of one site.
type Pages struct {
	tmpl *template.Template
}

// New parses the embedded templates.
func New() (*Pages, error) {
	t, err := template.New("").Funcs(template.FuncMap{"page": withTitle}).ParseFS(templateFS, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("web: parsing templates: %w", err)
	}
	return &Pages{tmpl: t}, nil
}

// Render writes page with status. Rendering happens into a buffer first so
// a template error never leaves half a page behind.
func (p *Pages) Render(w http.ResponseWriter, status int, page string, d Data) error {
	d.T = catalogue(d.Locale)
	d.Nonce = ticket.NewSecret()
	var buf bytes.Buffer
	if err := p.tmpl.ExecuteTemplate(&buf, page+".html", d); err != nil {
		return fmt.Errorf("web: rendering %s: %w", page, err)
	}
	h := w.Header()
	SetSecurityHeaders(h)
	h.Set("Content-Security-Policy", pageCSP(d.Nonce))
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	_, err := w.Write(buf.Bytes())
	return err
}

// Field is one hidden field of a form_post answer.
type Field struct{ Name, Value string }

// RenderFormPost answers with a page that posts fields to action at once
// (OAuth 2.0 Form Post Response Mode). Its CSP allows exactly one script,
// by nonce, and form submission to action's origin only.
func (p *Pages) RenderFormPost(w http.ResponseWriter, action, locale string, fields []Field) error {
	u, err := url.Parse(action)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return fmt.Errorf("web: form_post action %q is not an absolute URL", action)
	}
	nonce := ticket.NewSecret()
	var buf bytes.Buffer
	err = p.tmpl.ExecuteTemplate(&buf, "form_post.html", struct {
		T      map[string]string
		Action string
		Fields []Field
		Nonce  string
	}{catalogue(locale), action, fields, nonce})
	if err != nil {
		return fmt.Errorf("web: rendering form_post: %w", err)
	}
	h := w.Header()
	SetSecurityHeaders(h)
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'nonce-"+nonce+"'; form-action "+u.Scheme+"://"+u.Host+"; frame-ancestors 'none'; base-uri 'none'")
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(http.StatusOK)
	_, err = w.Write(buf.Bytes())
	return err
}

// SetSecurityHeaders sets the headers every mailgate response carries: the
// pages hold form tokens and link secrets, so nothing is cached, framed or
// leaked through Referer.
func SetSecurityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", CSP)
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
}
