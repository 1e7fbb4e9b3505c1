package web

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"

	"github.com/mailgate/caddy-mailgate/internal/ticket"
)

// ErrForm is returned for a POST that is cross-site or lacks a valid form
// token.
var ErrForm = errors.New("web: cross-site or expired form")

// FormTokenField is the name of the hidden form field.
const FormTokenField = "form_token"

// formCookieName is the double-submit cookie. Like the session cookie, it has
// the __Host- prefix over HTTPS so no subdomain can plant one.
func formCookieName(secure bool) string {
	if secure {
		return "__Host-mailgate-form"
	}
	return "mailgate-form"
}

const (
	// formTokenContext separates form-token tags from anything else a
	// realm's key might ever be used to MAC.
	formTokenContext = "mailgate form token v1|"
	// formTagBytes is the tag length: 128 bits cannot be guessed, and a
	// forgery gets one try per request.
	formTagBytes = 16
	// minFormKeyBytes is the shortest key Forms accepts; a short or empty
	// key would let anyone compute valid tags.
	minFormKeyBytes = 32
)

// Forms issues and checks the double-submit form tokens of one site.
//
// A token is a random nonce with an HMAC tag, nonce "." tag, kept in a
// SameSite=Strict cookie that each form repeats in a hidden field: a
// cross-site page can neither read the cookie nor make the browser send it.
// The tag is there because a cookie can sometimes be planted, from a sibling
// subdomain or by rewriting a plain-HTTP answer; an attacker who knew the
// victim's token could then fill it in. Only tokens mailgate minted verify,
// so a made-up value is never adopted. A genuine token the attacker fetched
// for themselves still verifies: against planting that, the __Host- prefix
// and the origin check are the defence, not the tag.
type Forms struct {
	// Keys returns the HMAC keys, each at least 32 bytes: tokens are
	// minted with the first and verify under any, so that a key rotation
	// refuses no form in flight. Every instance serving a realm must share
	// them, or a token minted by one is refused by another.
	Keys func() [][]byte
	// Origin is scheme://host[:port], the only origin posts may come from.
	Origin string
	// Secure selects the __Host- cookie name and the Secure flag; true
	// whenever the site is served over HTTPS.
	Secure bool
}

// Token returns the browser's form token if its tag verifies (or the one
// Renew gave this request), and otherwise mints a new one and sets it as the
// cookie.
func (f Forms) Token(w http.ResponseWriter, r *http.Request) string {
	if tok, ok := r.Context().Value(renewedKey{}).(string); ok {
		return tok
	}
	if c, err := r.Cookie(formCookieName(f.Secure)); err == nil && f.verify(c.Value) {
		return c.Value
	}
	return f.mint(w)
}

// Renew makes a checked post's token single-use: it sets a fresh token, so
// the same form sent again (a double click, a resubmitted page, a replayed
// request) is refused, and returns the request that pages of this answer
// should render with, so they carry the fresh token.
func (f Forms) Renew(w http.ResponseWriter, r *http.Request) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), renewedKey{}, f.mint(w)))
}

type renewedKey struct{}

// mint sets a new token as the cookie and returns it.
func (f Forms) mint(w http.ResponseWriter) string {
	key := f.Keys()[0]
	if len(key) < minFormKeyBytes {
		// A misconfiguration, not a visitor's doing: every form would be
		// refused, or every token forgeable, so stop loudly.
		panic("web: the form key is shorter than 32 bytes")
	}
	nonce := ticket.NewSecret()
	tok := nonce + "." + tag(key, nonce)
	http.SetCookie(w, &http.Cookie{
		Name: formCookieName(f.Secure), Value: tok, Path: "/",
		Secure: f.Secure, HttpOnly: true, SameSite: http.SameSiteStrictMode,
	})
	return tok
}

// Check accepts a POST only from f.Origin and only with a form token that
// mailgate minted and that matches the browser's cookie. The request's form
// must be parsed.
func (f Forms) Check(r *http.Request) error {
	if err := f.SameOrigin(r); err != nil {
		return err
	}
	c, err := r.Cookie(formCookieName(f.Secure))
	if err != nil || !f.verify(c.Value) {
		return ErrForm
	}
	if !hmac.Equal([]byte(c.Value), []byte(r.PostFormValue(FormTokenField))) {
		return ErrForm
	}
	return nil
}

// SameOrigin accepts a POST only from a page of f.Origin, by what the
// browser says of it: Sec-Fetch-Site, or Origin from browsers that predate
// it. A request with neither is not a form from this site.
func (f Forms) SameOrigin(r *http.Request) error {
	switch site := r.Header.Get("Sec-Fetch-Site"); {
	case site != "":
		if site != "same-origin" {
			return ErrForm
		}
	case r.Header.Get("Origin") != f.Origin:
		return ErrForm
	}
	return nil
}

// tag is the encoded, truncated HMAC of an encoded nonce. MACing the encoded
// form, and comparing encoded tags, leaves exactly one valid spelling of each
// token: base64 decoding would accept other trailing bits.
func tag(key []byte, nonce string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(formTokenContext + nonce))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:formTagBytes])
}

// verify reports whether tok is a token minted under one of f's keys. A key
// too short to trust verifies nothing.
func (f Forms) verify(tok string) bool {
	nonce, got, ok := strings.Cut(tok, ".")
	if !ok || nonce == "" {
		return false
	}
	for _, key := range f.Keys() {
		if len(key) >= minFormKeyBytes && hmac.Equal([]byte(got), []byte(tag(key, nonce))) {
			return true
		}
	}
	return false
}
