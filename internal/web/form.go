package web

import (
	"crypto/subtle"
	"errors"
	"net/http"

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

// FormToken returns the browser's form token, setting a new one if the
// request has none. The token is a random value in a SameSite=Strict cookie
// that each form repeats in a hidden field: a cross-site page can neither
// read the cookie nor make the browser send it.
func FormToken(w http.ResponseWriter, r *http.Request, secure bool) string {
	if c, err := r.Cookie(formCookieName(secure)); err == nil && len(c.Value) >= 43 {
		return c.Value
	}
	tok := ticket.NewSecret()
	http.SetCookie(w, &http.Cookie{
		Name: formCookieName(secure), Value: tok, Path: "/",
		Secure: secure, HttpOnly: true, SameSite: http.SameSiteStrictMode,
	})
	return tok
}

// CheckForm accepts a POST only from origin (scheme://host[:port]) and only
// with a form token matching the browser's cookie. The request's form must
// be parsed.
func CheckForm(r *http.Request, origin string, secure bool) error {
	switch site := r.Header.Get("Sec-Fetch-Site"); {
	case site != "":
		if site != "same-origin" {
			return ErrForm
		}
	case r.Header.Get("Origin") != origin:
		// Browsers that predate Sec-Fetch-Site still send Origin on POST;
		// a request with neither is not a form from our page.
		return ErrForm
	}
	c, err := r.Cookie(formCookieName(secure))
	if err != nil || c.Value == "" {
		return ErrForm
	}
	if subtle.ConstantTimeCompare([]byte(c.Value), []byte(r.PostFormValue(FormTokenField))) != 1 {
		return ErrForm
	}
	return nil
}
