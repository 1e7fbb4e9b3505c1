package directory

import (
	"errors"
	"strings"
	"testing"
)

func TestNormalizeEmail(t *testing.T) {
	good := map[string]string{
		" Alice@Example.COM ": "alice@example.com",
		"bob+tag@example.com": "bob+tag@example.com",
		// 172 bytes as typed, 252 lower-cased: within the bound either way.
		strings.Repeat("Ⱥ", 80) + "@example.com": strings.Repeat("ⱥ", 80) + "@example.com",
	}
	for in, want := range good {
		if got, err := NormalizeEmail(in); err != nil || got != want {
			t.Errorf("NormalizeEmail(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	bad := []string{
		"", "alice", "Alice <alice@example.com>", "a@b.c, d@e.f", "a@example.com\r\nBcc: x@y.z",
		strings.Repeat("a", 250) + "@b.cd",
		// 252 bytes as typed, 372 lower-cased: the bound holds for what is
		// stored and mailed, not for what was typed.
		strings.Repeat("Ⱥ", 120) + "@example.com",
		// Lower-casing would make both of these a\uFFFD@example.com.
		"a\xff@example.com", "a\xfe@example.com",
	}
	for _, in := range bad {
		if got, err := NormalizeEmail(in); !errors.Is(err, ErrInvalidEmail) {
			t.Errorf("NormalizeEmail(%q) = %q, %v; want ErrInvalidEmail", in, got, err)
		}
	}
}

// FuzzNormalizeEmail checks what every caller of NormalizeEmail relies on:
// an accepted address fits the 254-byte bound, and normalizing it again
// accepts it unchanged, so that a stored address is found again by the same
// lookup. The seeds run with every go test; go test -fuzz FuzzNormalizeEmail
// looks further.
func FuzzNormalizeEmail(f *testing.F) {
	for _, seed := range []string{
		"alice@example.com",
		" Alice@Example.COM ",
		strings.Repeat("Ⱥ", 120) + "@example.com",
		strings.Repeat("Ⱥ", 80) + "@example.com",
		"İnci@example.com",        // İ (2 bytes) lower-cases to ASCII i
		"\u212Aelvin@example.com", // the Kelvin sign lower-cases to ASCII k
		"a\xff@example.com",
		`"quoted local"@example.com`,
		"a@[192.0.2.1]",
		"Alice <alice@example.com>",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := NormalizeEmail(in)
		if err != nil {
			if !errors.Is(err, ErrInvalidEmail) {
				t.Fatalf("NormalizeEmail(%q): %v, want ErrInvalidEmail", in, err)
			}
			return
		}
		if len(out) > maxEmailLen {
			t.Fatalf("NormalizeEmail(%q) = %d bytes, over %d", in, len(out), maxEmailLen)
		}
		again, err := NormalizeEmail(out)
		if err != nil || again != out {
			t.Fatalf("NormalizeEmail(%q) = %q, but NormalizeEmail of that = %q, %v", in, out, again, err)
		}
	})
}
