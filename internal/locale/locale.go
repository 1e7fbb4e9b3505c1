// Package locale is the one list of the locales mailgate writes pages and
// mails in, and the rule for reading a locale a request names.
package locale

import (
	"errors"
	"regexp"
	"slices"
	"strings"
)

// Default is the locale of a request that names none.
const Default = "en-GB"

// supported are the locales with pages and mails, Default first. Adding one
// means adding its page and mail catalogues; tests in those packages check
// that each locale here has them.
var supported = []string{Default, "nl-BE", "nl-NL"}

// All returns the supported locales, Default first.
func All() []string { return slices.Clone(supported) }

// Has reports whether l is a supported locale, spelled canonically.
func Has(l string) bool { return slices.Contains(supported, l) }

// Errors of Parse.
var (
	ErrMalformed   = errors.New("locale: not shaped like en-GB (language, dash, country)")
	ErrUnsupported = errors.New("locale: not supported")
)

// shape is ISO 639 language, dash, ISO 3166 country.
var shape = regexp.MustCompile(`^[A-Za-z]{2}-[A-Za-z]{2}$`)

// Parse reads a locale a request names, in any case, and returns its
// canonical spelling (nl-BE). Empty means Default.
func Parse(s string) (string, error) {
	if s == "" {
		return Default, nil
	}
	if !shape.MatchString(s) {
		return "", ErrMalformed
	}
	canon := strings.ToLower(s[:2]) + "-" + strings.ToUpper(s[3:])
	if !Has(canon) {
		return "", ErrUnsupported
	}
	return canon, nil
}
