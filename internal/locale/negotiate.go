package locale

import "golang.org/x/text/language"

// matcher knows CLDR's language distances, so that a visitor's "nl" finds
// nl-NL (Dutch is most likely Dutch of the Netherlands), "en-US" or "en"
// finds en-GB, and "nl-BE" finds nl-BE exactly. It is read-only once built.
var matcher = language.NewMatcher(tags())

func tags() []language.Tag {
	t := make([]language.Tag, len(supported))
	for i, l := range supported {
		t[i] = language.MustParse(l)
	}
	return t
}

// Negotiate picks the supported locale that fits an Accept-Language header
// (RFC 9110, 12.5.4) best: languages are taken in the order of their
// q-values, and the first one mailgate writes, or reads close enough
// (High confidence: en-US for en-GB), wins. A header that names none of
// them, or does not parse, gets fallback: the site's default, not
// mailgate's.
func Negotiate(acceptLanguage, fallback string) string {
	desired, _, err := language.ParseAcceptLanguage(acceptLanguage)
	if err != nil || len(desired) == 0 {
		return fallback
	}
	// The index, not the tag: Match returns the tag with the visitor's
	// region as an extension (en-GB-u-rg-uszzzz).
	_, i, confidence := matcher.Match(desired...)
	if confidence < language.High {
		return fallback
	}
	return supported[i]
}
