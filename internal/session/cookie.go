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

// ownCookie reports whether name is one of mailgate's cookies: the session
// (CookieName) or a helper of it, "mailgate-…" ("__Host-mailgate-…" over
// HTTPS), as every cookie mailgate sets is named.
func ownCookie(name string, secure bool) bool {
	if secure {
		var ok bool
		if name, ok = strings.CutPrefix(name, "__Host-"); !ok {
			return false
		}
	}
	return name == "mailgate" || strings.HasPrefix(name, "mailgate-")
}

// StripOwnCookies removes mailgate's cookies from the Cookie headers of a
// request about to be proxied: the upstream has no use for them, and a
// session cookie in its hands (or in its logs) could be replayed as the
// person's session. Other cookies pass untouched, in their order. A line
// that holds only mailgate's cookies is dropped without an allocation;
// one that mixes them with others is written anew.
func StripOwnCookies(h http.Header, secure bool) {
	lines := h["Cookie"]
	kept := lines[:0]
	for _, line := range lines {
		if line = stripLine(line, secure); line != "" {
			kept = append(kept, line)
		}
	}
	switch {
	case len(kept) == 0 && lines != nil:
		delete(h, "Cookie")
	case len(kept) > 0:
		h["Cookie"] = kept
	}
}

// stripLine returns line without mailgate's cookies: line itself when it
// has none, "" when it has nothing else, a part of line when the others
// stand together (mailgate's at one end, as cookies set last come last),
// and only otherwise a new string.
func stripLine(line string, secure bool) string {
	start, end := -1, -1 // the span of the other cookies
	// own: a cookie of mailgate's was seen; cut: one stands between two
	// others, so no part of line is the answer.
	own, ownAfterOther, cut := false, false, false
	for at := 0; at < len(line); {
		next := strings.IndexByte(line[at:], ';')
		if next < 0 {
			next = len(line)
		} else {
			next += at
		}
		seg := line[at:next]
		part := strings.TrimSpace(seg)
		name, _, _ := strings.Cut(part, "=")
		switch {
		case part == "":
		case ownCookie(name, secure):
			own = true
			ownAfterOther = start >= 0
		default:
			cut = cut || ownAfterOther
			begin := at + strings.Index(seg, part)
			if start < 0 {
				start = begin
			}
			end = begin + len(part)
		}
		at = next + 1
	}
	switch {
	case !own:
		return line
	case start < 0:
		return ""
	case !cut:
		return line[start:end]
	}
	var b strings.Builder
	b.Grow(len(line))
	for rest := line; rest != ""; {
		var part string
		part, rest, _ = strings.Cut(rest, ";")
		part = strings.TrimSpace(part)
		name, _, _ := strings.Cut(part, "=")
		if part == "" || ownCookie(name, secure) {
			continue
		}
		if b.Len() > 0 {
			b.WriteString("; ")
		}
		b.WriteString(part)
	}
	return b.String()
}
