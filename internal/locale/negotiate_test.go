package locale

import "testing"

func TestNegotiate(t *testing.T) {
	for _, c := range []struct{ header, fallback, want string }{
		{"nl-BE,nl;q=0.9,en;q=0.5", "en-GB", "nl-BE"},
		{"nl", "en-GB", "nl-NL"},
		{"nl", "nl-BE", "nl-NL"},
		{"NL-be", "en-GB", "nl-BE"},
		{"en", "nl-NL", "en-GB"},
		{"en-US", "nl-NL", "en-GB"},
		{"en-US,en;q=0.9,nl;q=0.8", "nl-NL", "en-GB"},
		// q-values, not the order written, rank the languages.
		{"en;q=0.1, nl-NL", "en-GB", "nl-NL"},
		{"nl-BE;q=0.5, en-GB", "nl-NL", "en-GB"},
		// A language mailgate does not write is passed over for the next.
		{"fr, nl;q=0.5", "en-GB", "nl-NL"},
		{"de-CH, en;q=0.3", "nl-BE", "en-GB"},
		// Nothing that fits: the site's default.
		{"fr", "nl-BE", "nl-BE"},
		{"fr", "en-GB", "en-GB"},
		{"", "nl-NL", "nl-NL"},
		{"*", "nl-NL", "nl-NL"},
		{"nl-NL;q=0", "en-GB", "en-GB"},
		{"not a header;;", "nl-BE", "nl-BE"},
	} {
		if got := Negotiate(c.header, c.fallback); got != c.want {
			t.Errorf("Negotiate(%q, %q) = %q, want %q", c.header, c.fallback, got, c.want)
		}
	}
}
