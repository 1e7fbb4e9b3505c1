package caddymodule

import (
	"net/http"
	"net/textproto"
	"sync/atomic"

	"github.com/mailgate/caddy-mailgate/internal/session"
)

// IdentityHeaders names the identity headers. Empty fields get the defaults.
type IdentityHeaders struct {
	// User carries the user's id. Default: `Remote-User`.
	User string `json:"user,omitempty"`
	// Email carries the address. Default: `Remote-Email`.
	Email string `json:"email,omitempty"`
	// Name carries the display name, when known. Default: `Remote-Name`.
	Name string `json:"name,omitempty"`
}

// headerSet is the identity headers: their canonical names, for setting, and
// the match used to delete every incoming copy. assertion is the signed
// assertion's header, stripped like the others even when no assertion is
// sent.
type headerSet struct {
	user, email, name, assertion string
}

func newHeaderSet(c *IdentityHeaders) headerSet {
	h := headerSet{user: "Remote-User", email: "Remote-Email", name: "Remote-Name", assertion: defaultAssertionHeader}
	if c != nil {
		if c.User != "" {
			h.user = canonical(c.User)
		}
		if c.Email != "" {
			h.email = canonical(c.Email)
		}
		if c.Name != "" {
			h.name = canonical(c.Name)
		}
	}
	return h
}

// identity is what the guard adds to a request, built once per session
// token and kept with the verified session.
type identity struct {
	// values are the user's id, address and name (empty when unknown).
	values [3]string
	// userID and userEmail are the placeholders' values, boxed once here
	// rather than on every request.
	userID, userEmail any
	// assertion is the session's signed assertion, once a request asked
	// for it (assertion.go).
	assertion atomic.Pointer[signedAssertion]
}

// prepare is the session manager's Prepare hook.
func (h headerSet) prepare(s *session.Session) any {
	return &identity{
		values:    [3]string{s.UserID, s.Email, s.Name},
		userID:    s.UserID,
		userEmail: s.Email,
	}
}

// strip deletes every header that a client could use to pose as someone:
// the identity headers and the assertion's in any case, with '_' for '-'.
// Some servers and frameworks fold Remote_Email into Remote-Email, so both
// must go.
func (h headerSet) strip(hdr http.Header) {
	for k := range hdr {
		if sameHeader(k, h.user) || sameHeader(k, h.email) || sameHeader(k, h.name) || sameHeader(k, h.assertion) {
			delete(hdr, k)
		}
	}
}

// set adds the identity from the session, and the signed assertion when
// there is one. The values go into one slice of this request's own, its one
// allocation: a handler after the guard may rewrite a header's value in
// place (Caddy's request_header replacements do), and that must change
// this request only, never the session's cached identity, which other
// requests read at the same time. Each header gets its element capped,
// so that an append copies rather than writes into its neighbour.
func (h headerSet) set(hdr http.Header, id *identity, assertion string) {
	v := make([]string, 4)
	copy(v, id.values[:])
	v[3] = assertion
	hdr[h.user] = v[0:1:1]
	hdr[h.email] = v[1:2:2]
	if v[2] != "" {
		hdr[h.name] = v[2:3:3]
	}
	if assertion != "" {
		hdr[h.assertion] = v[3:4:4]
	}
}

// canonical returns the header name as Go's http.Header stores it.
func canonical(name string) string { return textproto.CanonicalMIMEHeaderKey(name) }

// sameHeader compares header names ignoring ASCII case and treating '_' and
// '-' alike.
func sameHeader(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if fold(a[i]) != fold(b[i]) {
			return false
		}
	}
	return true
}

func fold(c byte) byte {
	switch {
	case c == '_':
		return '-'
	case 'A' <= c && c <= 'Z':
		return c + 'a' - 'A'
	}
	return c
}
