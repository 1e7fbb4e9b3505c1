package caddymodule

import (
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/mailgate/caddy-mailgate/internal/session"
)

func init() {
	caddy.RegisterModule(Strip{})
}

// Strip removes from a request that does not cross mailgate's guard
// everything an upstream could take for mailgate's word: the identity
// headers and the assertion header (in any case, with `_` for `-`), and
// mailgate's cookies. An app behind both a guarded route and a public one
// otherwise trusts `Remote-Email` from anyone who sends it to the public
// one. In a Caddyfile it is `mailgate strip`.
type Strip struct {
	// IdentityHeaders names the identity headers to remove, as the
	// guarded site names them. Default: `Remote-User`, `Remote-Email`,
	// `Remote-Name`.
	IdentityHeaders *IdentityHeaders `json:"identity_headers,omitempty"`

	// AssertionHeader names the assertion header to remove. Default:
	// `Mailgate-Assertion`.
	AssertionHeader string `json:"assertion_header,omitempty"`

	headers headerSet
}

// CaddyModule returns the Caddy module information.
func (Strip) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.mailgate_strip",
		New: func() caddy.Module { return new(Strip) },
	}
}

// Provision names the headers to remove.
func (s *Strip) Provision(caddy.Context) error {
	if err := (&AssertionConfig{Header: s.AssertionHeader}).check(); err != nil {
		return err
	}
	s.headers = newHeaderSet(s.IdentityHeaders)
	s.headers.assertion = (&AssertionConfig{Header: s.AssertionHeader}).headerName()
	return nil
}

// ServeHTTP removes the headers and mailgate's cookies, over HTTPS and
// plain HTTP alike, and passes the request on.
func (s *Strip) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	s.headers.strip(r.Header)
	session.StripOwnCookies(r.Header, true)
	session.StripOwnCookies(r.Header, false)
	return next.ServeHTTP(w, r)
}

// UnmarshalCaddyfile reads `mailgate strip`:
//
//	mailgate [<matcher>] strip {
//	    identity_headers {
//	        user  <header>
//	        email <header>
//	        name  <header>
//	    }
//	    assertion_header <header>
//	}
//
// The block is needed only where the guarded site renames the headers.
func (s *Strip) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the directive name
	if !d.NextArg() || d.Val() != "strip" || d.NextArg() {
		return d.ArgErr()
	}
	return eachSubdirective(d, "strip", func(name string) error {
		switch name {
		case "identity_headers":
			var m Mailgate
			err := m.parseIdentityHeaders(d)
			s.IdentityHeaders = m.IdentityHeaders
			return err
		case "assertion_header":
			return checked(d, oneArg(d, &s.AssertionHeader), func() error {
				return (&AssertionConfig{Header: s.AssertionHeader}).check()
			})
		}
		return d.Errf("strip: unknown subdirective %q", name)
	})
}

// isStrip reports whether the directive d holds is `mailgate strip`,
// leaving d as it found it.
func isStrip(d *caddyfile.Dispenser) bool {
	d.Next()
	strip := d.NextArg() && d.Val() == "strip"
	d.Reset()
	return strip
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Strip)(nil)
	_ caddyhttp.MiddlewareHandler = (*Strip)(nil)
	_ caddyfile.Unmarshaler       = (*Strip)(nil)
)
