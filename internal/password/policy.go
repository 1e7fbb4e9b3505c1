package password

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Policy is what a chosen password must be, after NIST SP 800-63B-4
// section 3.1.1.2: long enough, not known to attackers, and nothing more.
// There are no composition rules and no hints; a password only expires
// where the operator asks for it (elsewhere).
type Policy struct {
	// MinLength is the fewest characters: 15 for a password that is the
	// only factor, 8 where a second factor is enforced. Zero: 15.
	MinLength int
	// MaxLength is the most characters accepted: at least 64, as NIST
	// asks, and bounded so that hashing work stays bounded. Zero: 256.
	MaxLength int
}

// The lengths NIST SP 800-63B-4 names.
const (
	MinLengthSingleFactor = 15
	MinLengthWithSecond   = 8
	defaultMaxLength      = 256
)

// Rule names a rule a password broke; each contract says it in its own
// words (the pages have a sentence per rule and locale).
type Rule string

// The rules.
const (
	// RuleTooShort: fewer characters than MinLength.
	RuleTooShort Rule = "too_short"
	// RuleTooLong: more characters than MaxLength.
	RuleTooLong Rule = "too_long"
	// RuleNotText: a control character or invalid UTF-8; every printable
	// character and the space are allowed.
	RuleNotText Rule = "not_text"
	// RuleCommon: on the list of passwords common in breaches.
	RuleCommon Rule = "common"
	// RuleContext: the account's own name, address or the site's name,
	// give or take digits and punctuation.
	RuleContext Rule = "context"
	// RuleRepetitive: one character over and over.
	RuleRepetitive Rule = "repetitive"
)

func (p Policy) minLength() int {
	if p.MinLength == 0 {
		return MinLengthSingleFactor
	}
	return p.MinLength
}

func (p Policy) maxLength() int {
	if p.MaxLength == 0 {
		return defaultMaxLength
	}
	return p.MaxLength
}

// Check returns the rules pw breaks, none for a good one. context holds
// words the password must not be: the username, the address, the site's
// name. Characters are counted after Unicode normalization (NFKC), as NIST
// asks, so that a password typed on another keyboard is the same password.
func (p Policy) Check(pw string, context ...string) []Rule {
	if !utf8.ValidString(pw) || strings.ContainsFunc(pw, unicode.IsControl) {
		return []Rule{RuleNotText}
	}
	pw = norm.NFKC.String(pw)
	var broken []Rule
	switch n := utf8.RuneCountInString(pw); {
	case n < p.minLength():
		broken = append(broken, RuleTooShort)
	case n > p.maxLength():
		return append(broken, RuleTooLong)
	}
	if common(pw) {
		broken = append(broken, RuleCommon)
	}
	if IsAbout(pw, context...) {
		broken = append(broken, RuleContext)
	}
	if first, _ := utf8.DecodeRuneInString(pw); strings.Trim(pw, string(first)) == "" {
		broken = append(broken, RuleRepetitive)
	}
	return broken
}

// IsAbout reports whether pw is one of the words, or one of their parts
// (an address's local part and domain labels), once case, digits and
// punctuation are set aside: "Alice-2026!" for alice@example.com. Check
// runs it with its context; a caller that learns the words only later (a
// page that checks before it uses its link) runs it then.
func IsAbout(pw string, words ...string) bool {
	core := letters(pw)
	if core == "" {
		return false
	}
	for _, w := range words {
		for _, part := range strings.FieldsFunc(strings.ToLower(w), func(r rune) bool { return r == '@' || r == '.' }) {
			if l := letters(part); len(l) >= 3 && (core == l || core == letters(w)) {
				return true
			}
		}
	}
	return false
}

// letters is s in lower case with everything but letters left out.
func letters(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsLetter(r) {
			return unicode.ToLower(r)
		}
		return -1
	}, s)
}
