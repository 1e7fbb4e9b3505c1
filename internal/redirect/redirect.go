// Package redirect holds every rule for where mailgate may send a browser or
// a link: return paths on this site, apps' redirect URIs, and which hosts
// count as loopback (the only ones plain http is allowed for).
package redirect

import (
	"errors"
	"net"
	"net/url"
	"strings"
)

// IsLoopback reports whether host names this machine: "localhost", or any
// loopback address (all of 127.0.0.0/8, and ::1).
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// SafeReturn accepts s as a place to send the browser after login only if it
// is a path on this site: it starts with a single "/", has no scheme, host or
// backslash, and no control characters. Anything else becomes "/", so a login
// link can never be turned into an open redirect.
func SafeReturn(s string) string {
	if s == "" || s[0] != '/' || strings.HasPrefix(s, "//") || strings.ContainsAny(s, "\\") {
		return "/"
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return "/"
		}
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return "/"
	}
	return s
}

// CheckURI accepts an app's redirect URI for its configuration: absolute
// https, or http for a loopback host, with no fragment or user info (RFC
// 6749 section 3.1.2). A request's redirect URI is then compared exactly
// against the configured ones.
func CheckURI(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	if u.Fragment != "" || u.User != nil || u.Host == "" {
		return errors.New("must be an absolute URL without fragment or user info")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if IsLoopback(u.Hostname()) {
			return nil
		}
	}
	return errors.New("must use https (http only for localhost)")
}
