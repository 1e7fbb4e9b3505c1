// Package mail writes and delivers mailgate's emails: composing a
// multipart/alternative message from one layout and per-locale words, and
// handing it to an SMTP server or, in development, to an outbox folder.
package mail

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"

	loc "github.com/mailgate/caddy-mailgate/internal/locale"

	gomail "github.com/emersion/go-message/mail"
)

// Letter is what a flow asks to send: which letter, to whom, with what.
type Letter struct {
	To       string
	Locale   string
	Template string // the letter: "login", "code", "test" (see catalogue.go)
	SiteName string
	Link     string
	// Code is the one-time code a "code" letter carries.
	Code    string
	Expires time.Duration
	// RequestedAt, RequestIP and RequestAgent say when, from where and with
	// which browser a person asked for the mail, so that someone who did
	// not ask can tell; empty for mails an app asked for.
	RequestedAt  time.Time
	RequestIP    string
	RequestAgent string
	// App names the app that asked for a mail through the API.
	App string
	// NewAccount says the mail's recipient got an account just now.
	NewAccount bool
	// SetPassword says a password is chosen after the link is confirmed.
	SetPassword bool
	// RevokeLink is the "this wasn't me" link of an invitation or a
	// password reset, which ends the link the letter carries.
	RevokeLink string
}

// maxAgentRunes bounds the browser description a mail repeats: the
// User-Agent header is the requester's to choose.
const maxAgentRunes = 120

// Transport hands a composed message to its next hop.
type Transport interface {
	Deliver(ctx context.Context, from, to string, msg []byte) error
}

// Mailer renders letters and delivers them through a Transport.
type Mailer struct {
	From      *mail.Address
	Transport Transport
	Now       func() time.Time
	// Zone is the time zone a mail states times in; nil is UTC.
	Zone *time.Location
}

// ParseFrom parses a From address such as `Example <login@example.com>`.
func ParseFrom(s string) (*mail.Address, error) {
	a, err := mail.ParseAddress(s)
	if err != nil {
		return nil, fmt.Errorf("mail: from address %q: %w", s, err)
	}
	return a, nil
}

// errCompose marks a letter that could not be rendered (an address that
// does not parse, a template that fails): every attempt would fail alike.
var errCompose = errors.New("mail: composing the letter")

// Send renders l and delivers it.
func (m *Mailer) Send(ctx context.Context, l Letter) error {
	msg, err := m.Compose(l)
	if err != nil {
		return fmt.Errorf("%w: %w", errCompose, err)
	}
	return m.Transport.Deliver(ctx, m.From.Address, l.To, msg)
}

// Compose renders l into a complete RFC 5322 message with a text and an HTML
// alternative.
func (m *Mailer) Compose(l Letter) ([]byte, error) {
	subject, text, html, err := render(l, m.Zone)
	if err != nil {
		return nil, err
	}
	to, err := mail.ParseAddress(l.To)
	if err != nil {
		return nil, fmt.Errorf("mail: recipient %q: %w", l.To, err)
	}
	var h gomail.Header
	h.SetDate(m.Now())
	h.SetAddressList("From", []*mail.Address{m.From})
	h.SetAddressList("To", []*mail.Address{to})
	h.SetSubject(subject)
	domain := m.From.Address[strings.LastIndexByte(m.From.Address, '@')+1:]
	if err := h.GenerateMessageIDWithHostname(domain); err != nil {
		return nil, err
	}
	// Login mails must not be answered by vacation responders.
	h.Set("Auto-Submitted", "auto-generated")

	var buf bytes.Buffer
	w, err := gomail.CreateInlineWriter(&buf, h)
	if err != nil {
		return nil, err
	}
	for _, part := range []struct{ typ, body string }{{"text/plain", text}, {"text/html", html}} {
		var ph gomail.InlineHeader
		ph.SetContentType(part.typ, map[string]string{"charset": "utf-8"})
		pw, err := w.CreatePart(ph)
		if err != nil {
			return nil, err
		}
		if _, err := pw.Write([]byte(part.body)); err != nil {
			return nil, err
		}
		if err := pw.Close(); err != nil {
			return nil, err
		}
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// render fills in the letter's parsed templates: the subject and the text
// part from its text template, the HTML part from its HTML template. A
// locale without letters, or none, is the default locale; l.Locale then
// says the locale the letter is written in, which the HTML part's lang
// names. The templates run once per shape of letter; later letters of the
// shape are filled in without them (see compiled.go).
func render(l Letter, zone *time.Location) (subject, text, html string, err error) {
	d, lt, err := prepare(l, zone)
	if err != nil {
		return "", "", "", err
	}
	if subject, text, html, ok := renderCompiled(&d, lt); ok {
		return subject, text, html, nil
	}
	return execute(&d, lt)
}

// renderTemplates is render without the compiled letters: the templates
// run for every letter.
func renderTemplates(l Letter, zone *time.Location) (subject, text, html string, err error) {
	d, lt, err := prepare(l, zone)
	if err != nil {
		return "", "", "", err
	}
	return execute(&d, lt)
}

// letterData is what the templates see.
type letterData struct {
	Letter
	Minutes int
	// Lasts is Expires in words, in the largest whole unit: "7 days".
	Lasts string
	When  string
	Agent string
}

// prepare finds l's parsed letter and the values its templates print.
func prepare(l Letter, zone *time.Location) (letterData, parsedLetter, error) {
	if _, ok := letters[l.Locale]; !ok {
		l.Locale = loc.Default
	}
	lt, ok := letters[l.Locale][l.Template]
	if !ok {
		return letterData{}, parsedLetter{}, fmt.Errorf("mail: no %q letter in %s", l.Template, l.Locale)
	}
	d := letterData{Letter: l, Minutes: int(l.Expires.Round(time.Minute) / time.Minute), Lasts: lasts(l.Expires, l.Locale), Agent: describeAgent(l.RequestAgent, l.Locale)}
	if !l.RequestedAt.IsZero() {
		d.When = loc.When(l.RequestedAt.In(cmp.Or(zone, time.UTC)), l.Locale)
	}
	return d, lt, nil
}

// execute runs lt's templates on d.
func execute(d *letterData, lt parsedLetter) (subject, text, html string, err error) {
	var sb, tb, hb bytes.Buffer
	if err := lt.text.ExecuteTemplate(&sb, "subject", d); err != nil {
		return "", "", "", err
	}
	if err := lt.text.ExecuteTemplate(&tb, "text", d); err != nil {
		return "", "", "", err
	}
	if err := lt.html.Execute(&hb, d); err != nil {
		return "", "", "", err
	}
	return strings.TrimSpace(sb.String()), tb.String(), hb.String(), nil
}

// units name the units lasts counts in, per locale: singular, plural.
var units = map[string][3][2]string{
	"en-GB": {{"day", "days"}, {"hour", "hours"}, {"minute", "minutes"}},
	"nl-BE": {{"dag", "dagen"}, {"uur", "uur"}, {"minuut", "minuten"}},
	"nl-NL": {{"dag", "dagen"}, {"uur", "uur"}, {"minuut", "minuten"}},
}

// lasts says d in words in locale, in days, hours or minutes, whichever is
// the largest unit that counts it whole, so that an invitation says
// "7 days" rather than "10080 minutes".
func lasts(d time.Duration, locale string) string {
	names, ok := units[locale]
	if !ok {
		names = units[loc.Default]
	}
	d = d.Round(time.Minute)
	i, unit := 2, time.Minute
	switch day := 24 * time.Hour; {
	case d >= day && d%day == 0:
		i, unit = 0, day
	case d >= time.Hour && d%time.Hour == 0:
		i, unit = 1, time.Hour
	}
	if n := int(d / unit); n != 1 {
		return fmt.Sprintf("%d %s", n, names[i][1])
	}
	return "1 " + names[i][0]
}
