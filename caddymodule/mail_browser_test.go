package caddymodule

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailgate/caddy-mailgate/internal/mail"
)

// TestMailFitsAPhone opens the HTML part of each sign-in mail in Chromium at
// a phone's 390 CSS pixels: nothing may be wider than the screen, the long
// fallback address included, or the reader must scroll sideways to copy it.
func TestMailFitsAPhone(t *testing.T) {
	wd := startBrowser(t)
	wd.emulatePhone()
	from, err := mail.ParseFrom("Example <login@example.com>")
	if err != nil {
		t.Fatal(err)
	}
	m := &mail.Mailer{From: from, Now: time.Now}
	link := "https://app.example.com/.mailgate/link?t=" + strings.Repeat("Zx9_Qk", 8) + "&l=nl-BE"
	for _, l := range []mail.Letter{
		{To: "alice@example.com", Template: "login", Locale: "en-GB", Link: link, SiteName: "Example", Expires: 15 * time.Minute,
			RequestedAt: time.Now(), RequestIP: "2001:db8:1234:5678:9abc:def0:1234:5678", RequestAgent: "Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0 Safari/537.36"},
		{To: "alice@example.com", Template: "code", Locale: "nl-BE", Code: "042917", Link: link, SiteName: "Example", Expires: 3 * time.Minute},
	} {
		raw, err := m.Compose(l)
		if err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(t.TempDir(), l.Template+".html")
		_, html := mailPart(t, raw, "text/html")
		if err := os.WriteFile(file, html, 0o600); err != nil {
			t.Fatal(err)
		}
		wd.open("file://" + file)
		if w, ok := wd.script(`return document.documentElement.scrollWidth`).(float64); !ok || w > 390 {
			t.Errorf("%s mail (%s) is %v CSS pixels wide on a 390-pixel phone", l.Template, l.Locale, wd.script(`return document.documentElement.scrollWidth`))
		}
	}
}
