package mail

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	gomail "github.com/emersion/go-message/mail"

	"github.com/mailgate/caddy-mailgate/internal/locale"
	"github.com/mailgate/caddy-mailgate/internal/testsmtp"
)

var fixedNow = func() time.Time { return time.Date(2026, 4, 1, 9, 30, 0, 0, time.UTC) }

func letter() Letter {
	return Letter{
		To: "alice@example.com", Template: "login", SiteName: "Example",
		Link: "https://app.example.com/.mailgate/link?t=abc", Expires: 15 * time.Minute,
	}
}

func mailer(t testing.TB, tr Transport) *Mailer {
	from, err := ParseFrom("Example <login@example.com>")
	if err != nil {
		t.Fatal(err)
	}
	return &Mailer{From: from, Transport: tr, Now: fixedNow}
}

// parsed is a received message taken apart by a MIME parser.
type parsed struct {
	header gomail.Header
	parts  map[string]string // content type -> body
}

func parse(t *testing.T, raw []byte) parsed {
	t.Helper()
	r, err := gomail.CreateReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	p := parsed{header: r.Header, parts: map[string]string{}}
	for {
		part, err := r.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		h, ok := part.Header.(*gomail.InlineHeader)
		if !ok {
			t.Fatalf("unexpected attachment")
		}
		ct, _, _ := h.ContentType()
		b, _ := io.ReadAll(part.Body)
		p.parts[ct] = string(b)
	}
	return p
}

func TestSendOverStartTLSWithAuth(t *testing.T) {
	srv := testsmtp.Start(t, testsmtp.Options{TLS: "starttls", Username: "login@example.com", Password: "s3cret"})
	tr := &SMTP{Addr: srv.Addr, TLS: TLSStartTLS, Username: "login@example.com", Password: "s3cret",
		DialTimeout: 5 * time.Second, Timeout: 10 * time.Second, TLSConfig: &tls.Config{RootCAs: srv.RootCAs}}
	if err := mailer(t, tr).Send(context.Background(), letter()); err != nil {
		t.Fatal(err)
	}
	msgs := srv.Messages()
	if len(msgs) != 1 {
		t.Fatalf("server received %d messages", len(msgs))
	}
	m := msgs[0]
	if m.From != "login@example.com" || len(m.To) != 1 || m.To[0] != "alice@example.com" || m.Auth != "login@example.com" {
		t.Fatalf("envelope = %+v", m)
	}
	p := parse(t, m.Data)
	if s, _ := p.header.Subject(); s != "Your sign-in link for Example" {
		t.Errorf("Subject = %q", s)
	}
	if from, _ := p.header.AddressList("From"); len(from) != 1 || from[0].Name != "Example" || from[0].Address != "login@example.com" {
		t.Errorf("From = %v", from)
	}
	if to, _ := p.header.AddressList("To"); len(to) != 1 || to[0].Address != "alice@example.com" {
		t.Errorf("To = %v", to)
	}
	if d, err := p.header.Date(); err != nil || !d.Equal(fixedNow()) {
		t.Errorf("Date = %v, %v", d, err)
	}
	if id, err := p.header.MessageID(); err != nil || !strings.HasSuffix(id, "@example.com") {
		t.Errorf("Message-ID = %q, %v", id, err)
	}
	if mt, _, _ := p.header.ContentType(); mt != "multipart/alternative" {
		t.Errorf("Content-Type = %q", mt)
	}
	for _, ct := range []string{"text/plain", "text/html"} {
		if !strings.Contains(p.parts[ct], letter().Link) {
			t.Errorf("%s part lacks the link:\n%s", ct, p.parts[ct])
		}
	}
	if !strings.Contains(p.parts["text/plain"], "15 minutes") {
		t.Errorf("text part does not state the expiry")
	}
}

func TestSendOverImplicitTLS(t *testing.T) {
	srv := testsmtp.Start(t, testsmtp.Options{TLS: "tls"})
	tr := &SMTP{Addr: srv.Addr, TLS: TLSImplicit, DialTimeout: 5 * time.Second, Timeout: 10 * time.Second,
		TLSConfig: &tls.Config{RootCAs: srv.RootCAs}}
	if err := mailer(t, tr).Send(context.Background(), letter()); err != nil {
		t.Fatal(err)
	}
	if n := len(srv.Messages()); n != 1 {
		t.Fatalf("received %d messages", n)
	}
}

func TestStartTLSRequiredAndCertificateChecked(t *testing.T) {
	plain := testsmtp.Start(t, testsmtp.Options{TLS: "none"})
	tr := &SMTP{Addr: plain.Addr, TLS: TLSStartTLS, DialTimeout: 5 * time.Second, Timeout: 10 * time.Second}
	if err := mailer(t, tr).Send(context.Background(), letter()); err == nil {
		t.Fatal("sent in the clear to a server without STARTTLS")
	}
	tlsSrv := testsmtp.Start(t, testsmtp.Options{TLS: "starttls"})
	tr = &SMTP{Addr: tlsSrv.Addr, TLS: TLSStartTLS, DialTimeout: 5 * time.Second, Timeout: 10 * time.Second}
	if err := mailer(t, tr).Send(context.Background(), letter()); err == nil {
		t.Fatal("accepted a certificate from an untrusted CA")
	}
	if len(plain.Messages())+len(tlsSrv.Messages()) != 0 {
		t.Fatal("a message was delivered")
	}
}

func TestAuthFailureIsReported(t *testing.T) {
	srv := testsmtp.Start(t, testsmtp.Options{TLS: "none", Username: "u", Password: "right"})
	tr := &SMTP{Addr: srv.Addr, TLS: TLSNone, Username: "u", Password: "wrong", DialTimeout: 5 * time.Second, Timeout: 10 * time.Second}
	err := mailer(t, tr).Send(context.Background(), letter())
	if err == nil || !strings.Contains(err.Error(), "authenticating") {
		t.Fatalf("err = %v", err)
	}
}

func TestStalledServerTimesOut(t *testing.T) {
	// Accepts the connection and never greets.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			defer c.Close()
			io.Copy(io.Discard, c) //nolint:errcheck
		}
	}()
	tr := &SMTP{Addr: ln.Addr().String(), TLS: TLSNone, DialTimeout: time.Second, Timeout: 200 * time.Millisecond}
	start := time.Now()
	if err := mailer(t, tr).Send(context.Background(), letter()); err == nil {
		t.Fatal("send to a silent server succeeded")
	}
	if waited := time.Since(start); waited > 5*time.Second {
		t.Fatalf("timeout not applied: waited %s", waited)
	}
}

// TestCancelCutsOffAStalledExchange: a delivery's context ending closes
// the connection, however long its timeout, so that a queue that stops is
// not held by a hung server.
func TestCancelCutsOffAStalledExchange(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan struct{})
	go func() {
		c, err := ln.Accept()
		if err == nil {
			close(accepted)
			defer c.Close()
			io.Copy(io.Discard, c) //nolint:errcheck
		}
	}()
	tr := &SMTP{Addr: ln.Addr().String(), TLS: TLSNone, DialTimeout: time.Minute, Timeout: time.Hour}
	ctx, cancel := context.WithCancel(context.Background())
	sent := make(chan error, 1)
	go func() { sent <- mailer(t, tr).Send(ctx, letter()) }()
	<-accepted
	cancel()
	select {
	case err := <-sent:
		if err == nil {
			t.Fatal("a cut-off send succeeded")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the send went on after its context ended")
	}
}

func TestOutboxWritesCompleteEML(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "outbox")
	if err := mailer(t, &Outbox{Dir: dir, Now: fixedNow}).Send(context.Background(), letter()); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || !strings.HasSuffix(entries[0].Name(), ".eml") {
		t.Fatalf("outbox holds %v", entries)
	}
	info, _ := entries[0].Info()
	if info.Mode().Perm()&0o077 != 0 {
		t.Errorf("outbox file mode %v is readable by others", info.Mode().Perm())
	}
	raw, _ := os.ReadFile(filepath.Join(dir, entries[0].Name()))
	if p := parse(t, raw); !strings.Contains(p.parts["text/plain"], letter().Link) {
		t.Fatal("outbox message lacks the link")
	}
}

func TestUnknownLocaleFallsBackToEnglish(t *testing.T) {
	l := letter()
	l.Locale = "xx-XX"
	raw, err := mailer(t, nil).Compose(l)
	if err != nil {
		t.Fatal(err)
	}
	p := parse(t, raw)
	if s, _ := p.header.Subject(); !strings.HasPrefix(s, "Your sign-in link") {
		t.Fatalf("Subject = %q", s)
	}
}

func TestDutchLettersUseTheirOwnUsage(t *testing.T) {
	for locale, want := range map[string][]string{
		"nl-NL": {"Je inloglink voor Example", "Hallo,", "verloopt over 15 minuten", "Heb je"},
		"nl-BE": {"Uw aanmeldlink voor Example", "Beste,", "vervalt binnen 15 minuten", "Hebt u"},
	} {
		l := letter()
		l.Locale = locale
		raw, err := mailer(t, nil).Compose(l)
		if err != nil {
			t.Fatal(err)
		}
		p := parse(t, raw)
		subject, _ := p.header.Subject()
		text := subject + "\n" + p.parts["text/plain"] + p.parts["text/html"]
		for _, w := range want {
			if !strings.Contains(text, w) {
				t.Errorf("%s letter lacks %q:\n%s", locale, w, text)
			}
		}
		if !strings.Contains(p.parts["text/html"], `lang="`+locale+`"`) {
			t.Errorf("%s HTML part has the wrong lang", locale)
		}
	}
}

// TestCodeLettersShowTheCode: in every locale, the code stands on its own
// in both parts (large in the HTML, on a line of its own in the text), the
// letter says it expires in 3 minutes and names the requesting IP and time,
// and the link is there only when one was asked for.
func TestCodeLettersShowTheCode(t *testing.T) {
	for _, loc := range locale.All() {
		for _, link := range []string{"", "https://app.example.com/.mailgate/code-link?t=abc"} {
			l := Letter{
				To: "alice@example.com", Locale: loc, Template: "code", SiteName: "Example", App: "The Game",
				Code: "042917", Link: link, Expires: 3 * time.Minute,
				RequestedAt: fixedNow(), RequestIP: "192.0.2.7", RequestAgent: "Firefox",
			}
			raw, err := mailer(t, nil).Compose(l)
			if err != nil {
				t.Fatal(err)
			}
			p := parse(t, raw)
			subject, _ := p.header.Subject()
			text, html := p.parts["text/plain"], p.parts["text/html"]
			if !strings.HasPrefix(subject, "042917 ") {
				t.Errorf("%s: subject %q does not lead with the code", loc, subject)
			}
			if !regexp.MustCompile(`(?m)^    042917\r?$`).MatchString(text) {
				t.Errorf("%s: the text part does not show the code on a line of its own:\n%s", loc, text)
			}
			if !strings.Contains(html, "font-size: 32px") || !strings.Contains(html, "user-select: all") || !strings.Contains(html, ">042917</p>") {
				t.Errorf("%s: the HTML part does not show the code large and selectable:\n%s", loc, html)
			}
			for _, part := range []string{text, html} {
				for _, want := range []string{" 3 ", "192.0.2.7", map[string]string{"en-GB": "1 Apr 2026 09:30 UTC", "nl-BE": "1 apr. 2026 09:30 UTC", "nl-NL": "1 apr. 2026 09:30 UTC"}[loc], "The Game"} {
					if !strings.Contains(part, want) {
						t.Errorf("%s: a part lacks %q:\n%s", loc, want, part)
					}
				}
				if strings.Contains(part, "code-link") != (link != "") {
					t.Errorf("%s: link %q, part:\n%s", loc, link, part)
				}
			}
		}
	}
}

// TestEverySupportedLocaleHasItsLetters: the one list of locales and the
// catalogues agree, every locale has the default locale's sign-in letters
// with the same parts, and every part is one the layout shows.
func TestEverySupportedLocaleHasItsLetters(t *testing.T) {
	if len(catalogues) != len(locale.All()) {
		t.Errorf("%d catalogues for %d locales", len(catalogues), len(locale.All()))
	}
	def := catalogues[locale.Default]
	for _, l := range locale.All() {
		cat, ok := catalogues[l]
		if !ok {
			t.Errorf("%s: no catalogue", l)
			continue
		}
		for _, letter := range []string{"login", "code"} {
			if _, ok := letters[l][letter]; !ok {
				t.Errorf("%s: no %s letter", l, letter)
			}
		}
		for key, e := range cat {
			if _, ok := def[key]; !ok {
				t.Errorf("%s has %q, which %s has not", l, key, locale.Default)
			}
			part := `"` + key[strings.IndexByte(key, '.')+1:] + `"`
			if !strings.Contains(textLayout, part) && !strings.Contains(htmlLayout, part) && part != `"subject"` {
				t.Errorf("%s: no layout shows %s", l, key)
			}
			// The text part drops <strong> and nothing else: other markup
			// would show there as written.
			if rest := plain.Replace(e); strings.ContainsAny(rest, "<>&") {
				t.Errorf("%s %s: markup other than <strong>: %q", l, key, e)
			}
		}
		for key := range def {
			if _, ok := cat[key]; !ok && !strings.HasPrefix(key, "test.") {
				t.Errorf("%s lacks %q", l, key)
			}
		}
	}
}

// TestCheckFindsWhatWouldFailALogin: the check passes against a working
// server and reports a wrong password, a missing STARTTLS and a closed port,
// and delivers nothing.
func TestCheckFindsWhatWouldFailALogin(t *testing.T) {
	ctx := context.Background()
	srv := testsmtp.Start(t, testsmtp.Options{TLS: "none", Username: "u", Password: "right"})
	good := &SMTP{Addr: srv.Addr, TLS: TLSNone, Username: "u", Password: "right", DialTimeout: 5 * time.Second, Timeout: 10 * time.Second}
	if err := good.Check(ctx); err != nil {
		t.Fatalf("check against a working server: %v", err)
	}
	for name, tr := range map[string]*SMTP{
		"wrong password":   {Addr: srv.Addr, TLS: TLSNone, Username: "u", Password: "wrong"},
		"missing STARTTLS": {Addr: srv.Addr, TLS: TLSStartTLS},
		"closed port":      {Addr: closedPort(t), TLS: TLSNone},
	} {
		tr.DialTimeout, tr.Timeout = 5*time.Second, 10*time.Second
		if err := tr.Check(ctx); err == nil {
			t.Errorf("%s: the check passed", name)
		}
	}
	if n := len(srv.Messages()); n != 0 {
		t.Fatalf("the check delivered %d messages", n)
	}
}

// closedPort is a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// TestLoginMailSaysWhoAskedAndWhatComes renders the login mail in every
// locale, as a browser's request and as an app's, and checks what the person
// reads: when, from where and with which browser; which app; that an account
// was created; that a password comes next; a viewport and a linked fallback
// address in the HTML part.
func TestLoginMailSaysWhoAskedAndWhatComes(t *testing.T) {
	for _, l := range locale.All() {
		browser := letter()
		browser.Locale = l
		browser.RequestedAt = time.Date(2026, 11, 24, 9, 30, 0, 0, time.UTC)
		browser.RequestIP = "203.0.113.7"
		browser.RequestAgent = "Mozilla/5.0 (X11; Linux x86_64) " + strings.Repeat("x", 200)
		_, text, html, err := render(browser, nil)
		if err != nil {
			t.Fatal(err)
		}
		for name, part := range map[string]string{"text": text, "html": html} {
			date := map[string]string{"en-GB": "24 Nov 2026 09:30 UTC", "nl-BE": "24 nov. 2026 09:30 UTC", "nl-NL": "24 nov. 2026 09:30 UTC"}[l]
			if !strings.Contains(part, date) || !strings.Contains(part, "203.0.113.7") || !strings.Contains(part, "Mozilla/5.0") {
				t.Errorf("%s %s part does not say when, from where and with what:\n%s", l, name, part)
			}
			if strings.Contains(part, strings.Repeat("x", maxAgentRunes)) {
				t.Errorf("%s %s part repeats an endless User-Agent", l, name)
			}
		}
		if !strings.Contains(html, `name="viewport"`) || !strings.Contains(html, `<a href="https://app.example.com/.mailgate/link?t=abc" style="word-break: break-all; overflow-wrap: anywhere;">https://app.example.com/.mailgate/link?t=abc</a>`) {
			t.Errorf("%s HTML part lacks the viewport or the linked fallback address:\n%s", l, html)
		}

		app := letter()
		app.Locale, app.App, app.NewAccount, app.SetPassword = l, "shop", true, true
		_, appText, _, err := render(app, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(appText, "shop") || strings.Contains(appText, "203.0.113.7") {
			t.Errorf("%s app mail does not name the app, or names an IP:\n%s", l, appText)
		}
		said := map[string][2]string{
			"en-GB": {"An account was created for you", "you will choose a password"},
			"nl-NL": {"een account voor je aangemaakt", "kies je een wachtwoord"},
			"nl-BE": {"een account voor u aangemaakt", "kiest u een wachtwoord"},
		}[l]
		if !strings.Contains(appText, said[0]) || !strings.Contains(appText, said[1]) {
			t.Errorf("%s app mail does not say %q and %q:\n%s", l, said[0], said[1], appText)
		}
	}
}

// TestMailsTellTimeInTheSiteZone: with a zone set, the time a mail was
// asked for is the site's local time, named by its zone.
func TestMailsTellTimeInTheSiteZone(t *testing.T) {
	brussels, err := time.LoadLocation("Europe/Brussels")
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 4, 1, 9, 30, 0, 0, time.UTC)
	for locale, want := range map[string]string{"en-GB": "1 Apr 2026 11:30 CEST", "nl-BE": "1 apr. 2026 11:30 CEST"} {
		l := Letter{To: "alice@example.com", Template: "login", Locale: locale, Link: "https://app.example.com/l", SiteName: "Example",
			Expires: time.Minute, RequestedAt: at, RequestIP: "192.0.2.7"}
		_, text, _, err := render(l, brussels)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(text, want) {
			t.Errorf("%s: the mail does not say %q:\n%s", locale, want, text)
		}
		if _, text, _, _ := render(l, nil); !strings.Contains(text, "09:30 UTC") {
			t.Errorf("%s: without a zone, not UTC:\n%s", locale, text)
		}
	}
}
