package directory

import (
	"errors"
	"net/mail"
	"strings"
	"unicode/utf8"
)

// ErrInvalidEmail is returned for an address that is not a plain
// local@domain address.
var ErrInvalidEmail = errors.New("directory: invalid email address")

// maxEmailLen is the longest address SMTP can carry (RFC 5321 section
// 4.5.3.1.3: a 256-octet path less its angle brackets).
const maxEmailLen = 254

// NormalizeEmail returns the canonical form of a bare address: trimmed and
// lower-cased. Display names and anything but local@domain are refused, so
// "Alice <alice@example.com>" cannot slip into a lookup or an allowlist check.
//
// The checks run on the lower-cased form, the one that is stored, mailed and
// compared: lower-casing can lengthen a string ("Ⱥ" is 2 bytes, "ⱥ" 3), so a
// bound checked before it would let longer addresses through, and an
// accepted result must be accepted again unchanged. Invalid UTF-8 is refused
// first, because lower-casing would turn each bad byte into U+FFFD, which
// parses, and several different inputs into one address.
func NormalizeEmail(s string) (string, error) {
	if !utf8.ValidString(s) {
		return "", ErrInvalidEmail
	}
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "" || len(s) > maxEmailLen {
		return "", ErrInvalidEmail
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name != "" || a.Address != s || !strings.Contains(s, "@") {
		return "", ErrInvalidEmail
	}
	return s, nil
}

// MaskEmail hides most of an address's local part, keeping its first and
// last character and the domain: "alice@example.com" becomes
// "a•••e@example.com". That is enough for people to recognise their own
// address, and not enough to give it away to whoever holds a forwarded or
// leaked link. It works on runes, so a non-ASCII local part is never cut
// mid-character.
func MaskEmail(email string) string {
	const dots = "•••"
	// The domain follows the last "@": a quoted local part may hold one.
	at := strings.LastIndexByte(email, '@')
	if at < 0 {
		return dots
	}
	local, domain := []rune(email[:at]), email[at:]
	switch len(local) {
	case 0:
		return dots + domain
	case 1:
		return string(local[0]) + dots + domain
	}
	return string(local[0]) + dots + string(local[len(local)-1]) + domain
}
