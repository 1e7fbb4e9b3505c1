package mail

import (
	"cmp"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailgate/caddy-mailgate/internal/locale"
)

// update rewrites the golden files from what render produces now: run
// `go test ./internal/mail/ -run Golden -update` only for a change that is
// meant to show in the mails, and read the diff.
var update = flag.Bool("update", false, "rewrite the golden letters in testdata/golden")

// goldenVariants are the ways a flow fills a letter. Each starts from the
// same browser-requested letter so a golden file differs from its
// neighbours only by what the variant says.
var goldenVariants = []struct {
	name  string
	zone  string // IANA name; empty is UTC
	apply func(*Letter)
}{
	{name: "browser"},
	{name: "browser-no-agent", apply: func(l *Letter) { l.RequestAgent = "" }},
	{name: "browser-raw-agent", apply: func(l *Letter) {
		l.RequestAgent = "Mozilla/5.0 (X11; Linux x86_64) " + strings.Repeat("x", 200)
	}},
	{name: "browser-new-account", apply: func(l *Letter) { l.NewAccount = true }},
	{name: "browser-set-password", apply: func(l *Letter) { l.SetPassword = true }},
	{name: "browser-zone", zone: "Europe/Brussels"},
	{name: "app", apply: appRequested},
	{name: "app-new-account-set-password", apply: func(l *Letter) {
		appRequested(l)
		l.NewAccount, l.SetPassword = true, true
	}},
	{name: "app-no-link", apply: func(l *Letter) { appRequested(l); l.Link = "" }},
	{name: "browser-no-link", apply: func(l *Letter) { l.Link = "" }},
	{name: "rounded-minutes", apply: func(l *Letter) { l.Expires = 90 * time.Second }},
	// escaping: what a site, an app, a link and a browser can put in a
	// letter reaches the HTML part escaped for where it stands, and the
	// text part as it is.
	{name: "escaping", apply: func(l *Letter) {
		l.SiteName = `Tom & Jerry's <Club+>`
		l.App = `"Quotes" & <b>bold</b>`
		l.Link = `https://app.example.com/.mailgate/link?t=a&b='c'"d"<e>`
		l.RequestIP = "2001:db8::1"
		l.RequestAgent = `<script>alert("x")</script>`
	}},
}

// linkVariants are the ways the email-link flow fills an invitation or a
// reset (seed 001): asked for by an app or by the operator, with a lifetime
// in days, hours or minutes, escaped as the others are.
var linkVariants = []struct {
	name  string
	zone  string
	apply func(*Letter)
}{
	{name: "app"},
	{name: "operator", apply: func(l *Letter) { l.App = "" }},
	{name: "one-hour", apply: func(l *Letter) { l.Expires = time.Hour }},
	{name: "minutes", apply: func(l *Letter) { l.Expires = 90 * time.Minute }},
	{name: "escaping", apply: func(l *Letter) {
		l.SiteName = `Tom & Jerry's <Club+>`
		l.App = `"Quotes" & <b>bold</b>`
		l.Link = `https://app.example.com/?invitation=a&b='c'"d"<e>`
		l.RevokeLink = `https://app.example.com/.mailgate/account/revoke/?x=a&b=<e>`
	}},
}

// linkLetter is the letter linkVariants start from: an app's, which
// names no browser.
func linkLetter(kind, loc string) Letter {
	return Letter{
		To: "alice@example.com", Locale: loc, Template: kind, SiteName: "Example", App: "The Game",
		Link:       "https://app.example.com/.mailgate/account/invite/?x=abc",
		RevokeLink: "https://app.example.com/.mailgate/account/revoke/?x=abc",
		Expires:    7 * 24 * time.Hour,
	}
}

// appRequested makes l a letter an app asked for through the API: it
// names the app and says nothing of a browser.
func appRequested(l *Letter) {
	l.App = "The Game"
	l.RequestedAt, l.RequestIP, l.RequestAgent = time.Time{}, "", ""
}

// goldenLetter is the browser-requested letter the variants start from.
func goldenLetter(kind, loc string) Letter {
	l := Letter{
		To: "alice@example.com", Locale: loc, Template: kind, SiteName: "Example",
		Link:         "https://app.example.com/.mailgate/link?t=abc",
		Code:         "042917",
		Expires:      15 * time.Minute,
		RequestedAt:  time.Date(2026, 11, 24, 9, 30, 0, 0, time.UTC),
		RequestIP:    "203.0.113.7",
		RequestAgent: "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
	}
	if kind == "code" {
		l.Link = "https://app.example.com/.mailgate/code-link?t=abc"
		l.Expires = 3 * time.Minute
	}
	return l
}

// TestGoldenLetters renders every letter in every locale and variant, both
// compiled (render) and from the templates (renderTemplates), and
// compares subject, text and HTML byte for byte with testdata/golden.
// The test letter exists in en-GB only; a locale that is not supported
// (or none) gets the default locale's letter.
func TestGoldenLetters(t *testing.T) {
	kinds := map[string][]string{
		"login": append(locale.All(), "", "xx-XX"),
		"code":  append(locale.All(), "", "xx-XX"),
		"test":  {locale.Default},
		// Seed 001's letters, with their own variants (linkVariants).
		"invitation": append(locale.All(), "", "xx-XX"),
		"reset":      append(locale.All(), "", "xx-XX"),
	}
	seen := map[string]bool{}
	for kind, locales := range kinds {
		variants, letter := goldenVariants, goldenLetter
		if kind == "invitation" || kind == "reset" {
			variants, letter = linkVariants, linkLetter
		}
		for _, loc := range locales {
			for _, v := range variants {
				l := letter(kind, loc)
				if v.apply != nil {
					v.apply(&l)
				}
				var zone *time.Location
				if v.zone != "" {
					z, err := time.LoadLocation(v.zone)
					if err != nil {
						t.Fatal(err)
					}
					zone = z
				}
				subject, text, html, err := render(l, zone)
				if err != nil {
					t.Fatalf("%s %q %s: %v", kind, loc, v.name, err)
				}
				got := "-- subject --\n" + subject + "\n-- text --\n" + text + "-- html --\n" + html
				name := kind + "." + cmp.Or(loc, "none") + "." + v.name + ".golden"
				seen[name] = true
				path := filepath.Join("testdata", "golden", name)
				if *update {
					if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
						t.Fatal(err)
					}
					continue
				}
				want, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				if got != string(want) {
					t.Errorf("%s differs from the golden letter:\n%s", name, firstDifference(string(want), got))
				}
				if d, lt, err := prepare(l, zone); err != nil {
					t.Fatal(err)
				} else if _, _, _, ok := renderCompiled(&d, lt); !ok {
					t.Errorf("%s is rendered by its templates every time: its shape did not compile", name)
				}
				// The templates alone, as every letter's first of its
				// shape renders them, give the same bytes.
				subject, text, html, err = renderTemplates(l, zone)
				if err != nil {
					t.Fatal(err)
				}
				if tg := "-- subject --\n" + subject + "\n-- text --\n" + text + "-- html --\n" + html; tg != string(want) {
					t.Errorf("%s from the templates differs from the golden letter:\n%s", name, firstDifference(string(want), tg))
				}
			}
		}
	}
	// A golden file no case writes is a letter that is no longer checked.
	files, err := os.ReadDir(filepath.Join("testdata", "golden"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if !seen[f.Name()] {
			t.Errorf("testdata/golden/%s is not rendered by any case", f.Name())
		}
	}
}

// firstDifference shows the first line where want and got part, with the
// bytes quoted so that whitespace shows.
func firstDifference(want, got string) string {
	w, g := strings.SplitAfter(want, "\n"), strings.SplitAfter(got, "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			return fmt.Sprintf("line %d:\nwant %q\ngot  %q", i+1, wl, gl)
		}
	}
	return "(no line differs)"
}
