package api

import (
	"errors"
	"net/url"
)

// checkRedirectURI accepts an absolute https URL, or http for loopback, with
// no fragment (RFC 6749 section 3.1.2).
func checkRedirectURI(s string) error {
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
		if h := u.Hostname(); h == "localhost" || h == "127.0.0.1" || h == "::1" {
			return nil
		}
	}
	return errors.New("must use https (http only for localhost)")
}
