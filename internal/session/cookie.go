package session

import (
	"net/http"
	"strings"
	"time"
)

// CookieName returns the session cookie's name. Over HTTPS it carries the
// __Host- prefix, which makes browsers refuse it unless it is Secure, has
// Path=/ and no Domain, so no subdomain can plant or widen it. A plain-HTTP
// base URL (allowed for loopback only) cannot have Secure cookies, and so
// cannot have the prefix either.
func CookieName(secure bool) string {
	if secure {
		return "__Host-mailgate"
	}
	return "mailgate"
}

// Cookie returns the session cookie for token. It is a session cookie
// (deleted when the browser closes) unless persistent is set.
func Cookie(token string, expiry time.Time, secure, persistent bool) *http.Cookie {
	c := &http.Cookie{
		Name:     CookieName(secure),
		Value:    token,
		Path:     "/",
		Secure:   secure,
		HttpOnly: true,
		SameSite: http.SameSiteLaxMode,
	}
	if persistent {
		c.Expires = expiry
	}
	return c
}

// ClearCookie returns a cookie that makes the browser drop the session.
func ClearCookie(secure bool) *http.Cookie {
	c := Cookie("", time.Time{}, secure, false)
	c.MaxAge = -1
	return c
}

// FindCookie returns the value of the cookie called name in the request's
// Cookie headers. Unlike http.Request.Cookie it parses nothing else and
// allocates nothing, because it runs on every proxied request.
func FindCookie(h http.Header, name string) string {
	for _, line := range h["Cookie"] {
		for line != "" {
			var part string
			part, line, _ = strings.Cut(line, ";")
			part = strings.TrimLeft(part, " ")
			if k, v, ok := strings.Cut(part, "="); ok && k == name {
				return strings.Trim(v, `"`)
			}
		}
	}
	return ""
}
