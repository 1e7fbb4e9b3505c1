package mail

import (
	"bytes"
	htmltemplate "html/template"
	"math/rand/v2"
	"strings"
	"testing"
)

// TestEscapeHrefAsTheTemplate: escapeHref writes what html/template writes
// for a value at the start of a quoted href, for URLs of every scheme and
// for random bytes.
func TestEscapeHrefAsTheTemplate(t *testing.T) {
	tmpl := htmltemplate.Must(htmltemplate.New("href").Parse(`<a href="{{.}}">`))
	inputs := []string{
		"", "https://app.example.com/.mailgate/link?t=abc", `https://x/?t=a&b='c'"d"<e> +%41%zz%4`,
		"javascript:alert(1)", "JavaScript:x", "HTTPS://x", "mailto:a@b", "data:text/html,x", "/rel:ative", "a/b:c",
		"http://é.example/ü?q=\x00\xff", "%", "%4", "%41",
	}
	r := rand.New(rand.NewPCG(3, 4))
	for range 5000 {
		b := make([]byte, r.IntN(24))
		for i := range b {
			b[i] = byte(r.IntN(256))
			if r.IntN(3) == 0 {
				b[i] = ":/%&<'\"+#?hts"[r.IntN(13)]
			}
		}
		inputs = append(inputs, string(b))
	}
	for _, in := range inputs {
		var buf bytes.Buffer
		if err := tmpl.Execute(&buf, in); err != nil {
			t.Fatal(err)
		}
		want := strings.TrimSuffix(strings.TrimPrefix(buf.String(), `<a href="`), `">`)
		if got := escapeHref(in); got != want {
			t.Fatalf("escapeHref(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestHTMLTextAsTheTemplate: htmlText escapes a value in HTML text as
// html/template does.
func TestHTMLTextAsTheTemplate(t *testing.T) {
	tmpl := htmltemplate.Must(htmltemplate.New("text").Parse(`<p>{{.}}</p>`))
	r := rand.New(rand.NewPCG(5, 6))
	for range 5000 {
		b := make([]byte, r.IntN(24))
		for i := range b {
			b[i] = byte(r.IntN(256))
			if r.IntN(3) == 0 {
				b[i] = "<>&'\"+\x00"[r.IntN(7)]
			}
		}
		var buf bytes.Buffer
		if err := tmpl.Execute(&buf, string(b)); err != nil {
			t.Fatal(err)
		}
		want := strings.TrimSuffix(strings.TrimPrefix(buf.String(), `<p>`), `</p>`)
		if got := htmlText.Replace(string(b)); got != want {
			t.Fatalf("htmlText(%q) = %q, want %q", b, got, want)
		}
	}
}

// TestSplitKeepsToTextAndHrefs: a value the HTML part prints inside a tag
// anywhere but at the start of an href is not compiled (its escaping would
// differ), so that shape keeps using its templates.
func TestSplitKeepsToTextAndHrefs(t *testing.T) {
	for in, want := range map[string]bool{
		"<p>" + slotMarker(slotSiteName) + "</p>":                   true,
		`<a href="` + slotMarker(slotLink) + `">x</a>`:              true,
		`<a title="` + slotMarker(slotSiteName) + `">x</a>`:         false,
		`<a href="https://x/?` + slotMarker(slotLink) + `">x</a>`:   false,
		"<p>" + slotMarkerPrefix + "Z" + "</p>":                     false,
		"<title>" + slotMarker(slotSiteName) + "</title>":           true,
		"<p style=\"color: red;\">" + slotMarker(slotWhen) + "</p>": true,
	} {
		if _, ok := split(in, true); ok != want {
			t.Errorf("split(%q) compiles: %v, want %v", in, ok, want)
		}
	}
}
