package caddymodule

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gomail "github.com/emersion/go-message/mail"

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
		if err := os.WriteFile(file, htmlPart(t, raw), 0o600); err != nil {
			t.Fatal(err)
		}
		wd.open("file://" + file)
		if w, ok := wd.script(`return document.documentElement.scrollWidth`).(float64); !ok || w > 390 {
			t.Errorf("%s mail (%s) is %v CSS pixels wide on a 390-pixel phone", l.Template, l.Locale, wd.script(`return document.documentElement.scrollWidth`))
		}
	}
}

// htmlPart is the text/html part of a composed message.
func htmlPart(t *testing.T, raw []byte) []byte {
	t.Helper()
	r, err := gomail.CreateReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	for {
		p, err := r.NextPart()
		if err != nil {
			t.Fatalf("no HTML part: %v", err)
		}
		if h, ok := p.Header.(*gomail.InlineHeader); ok {
			if ct, _, _ := h.ContentType(); ct == "text/html" {
				b, err := io.ReadAll(p.Body)
				if err != nil {
					t.Fatal(err)
				}
				return b
			}
		}
	}
}
