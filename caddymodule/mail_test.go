package caddymodule

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/mailgate/caddy-mailgate/internal/mail"
	"github.com/mailgate/caddy-mailgate/internal/testdpop"
	"github.com/mailgate/caddy-mailgate/internal/testsmtp"
)

// TestSMTPProbeWarnsAtStart: the probe that runs when the config loads warns
// about a mail server that cannot be used, naming it, and stays quiet about
// one that answers.
func TestSMTPProbeWarnsAtStart(t *testing.T) {
	core, logs := observer.New(zap.WarnLevel)
	m := &Mailgate{logger: zap.New(core)}
	srv := testsmtp.Start(t, testsmtp.Options{TLS: "none", Username: "mailer", Password: "smtp-secret"})
	good := &mail.SMTP{Addr: srv.Addr, TLS: mail.TLSNone, Username: "mailer", Password: "smtp-secret", DialTimeout: 5 * time.Second, Timeout: 10 * time.Second}
	m.probeSMTP(context.Background(), good)
	if n := logs.Len(); n != 0 {
		t.Fatalf("%d warnings about a working mail server: %v", n, logs.All())
	}
	bad := &mail.SMTP{Addr: srv.Addr, TLS: mail.TLSNone, Username: "mailer", Password: "wrong", DialTimeout: 5 * time.Second, Timeout: 10 * time.Second}
	m.probeSMTP(context.Background(), bad)
	if entries := logs.All(); len(entries) != 1 || entries[0].ContextMap()["address"] != srv.Addr {
		t.Fatalf("warnings about a wrong password: %v", entries)
	}
}

// TestSMTPConnectionSettings: max_connections and idle_timeout reach the
// transport, their absence means mail's defaults, and values that make no
// sense are refused with the setting's name, from a Caddyfile or JSON.
func TestSMTPConnectionSettings(t *testing.T) {
	parse := func(inner string) (*SMTPConfig, error) {
		m := &Mailgate{}
		err := m.UnmarshalCaddyfile(caddyfile.NewTestDispenser(
			"mailgate {\nbase_url https://app.example.com\nsmtp 127.0.0.1:25 {\ntls none\nfrom login@example.com\n" + inner + "\n}\n}"))
		return m.SMTP, err
	}
	transport := func(c *SMTPConfig) *mail.SMTP {
		t.Helper()
		mm, err := c.mailer(&url.URL{Scheme: "https", Host: "app.example.com"})
		if err != nil {
			t.Fatal(err)
		}
		return mm.Transport.(*mail.SMTP)
	}

	c, err := parse("max_connections 8\nidle_timeout 1m")
	if err != nil {
		t.Fatal(err)
	}
	if s := transport(c); s.MaxConns != 8 || s.IdleTimeout != time.Minute {
		t.Errorf("max_connections 8, idle_timeout 1m gave %d and %s", s.MaxConns, s.IdleTimeout)
	}
	if c, err = parse(""); err != nil {
		t.Fatal(err)
	}
	if s := transport(c); s.MaxConns != 0 || s.IdleTimeout != 0 {
		t.Errorf("without the settings: %d and %s, want mail's defaults", s.MaxConns, s.IdleTimeout)
	}

	for inner, want := range map[string]string{
		"max_connections 0":    `smtp max_connections "0": must be from 1 to 64`,
		"max_connections many": `smtp max_connections "many": must be from 1 to 64`,
		"max_connections 65":   "smtp max_connections 65: must be from 1 to 64",
		"idle_timeout 0s":      "smtp idle_timeout 0s: must be more than 0",
		"idle_timeout -5s":     "smtp idle_timeout -5s: must be more than 0",
		"idle_timeout soon":    `idle_timeout "soon"`,
	} {
		if _, err := parse(inner); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want %q", inner, err, want)
		}
	}
	for _, c := range []SMTPConfig{
		{MaxConnections: -1},
		{MaxConnections: 65},
		{IdleTimeout: caddy.Duration(-time.Second)},
	} {
		c.Address, c.TLS, c.From = "127.0.0.1:25", mail.TLSNone, "login@example.com"
		if err := c.check(); err == nil {
			t.Errorf("JSON %+v accepted", c)
		}
	}
}

// TestCleanupClosesSMTPConnections: once a config is unloaded, the
// connection its mails went over is closed, not left for the mail server
// to time out.
func TestCleanupClosesSMTPConnections(t *testing.T) {
	srv := testsmtp.Start(t, testsmtp.Options{TLS: "none", Username: "mailer", Password: "smtp-secret"})
	c := &SMTPConfig{Address: srv.Addr, TLS: mail.TLSNone, Username: "mailer", Password: "smtp-secret", From: "login@example.com"}
	mm, err := c.mailer(&url.URL{Scheme: "https", Host: "app.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	q := &mail.Queue{Sender: mm}
	q.Start(context.Background())
	if err := q.Send(context.Background(), mail.Letter{To: "alice@example.com", Template: "login", SiteName: "Example",
		Link: "https://app.example.com/.mailgate/link?t=abc", Expires: time.Minute}); err != nil {
		t.Fatal(err)
	}
	m := &Mailgate{deliveries: q}
	if err := m.Cleanup(); err != nil {
		t.Fatal(err)
	}
	// Within less than the 10s after which the test server itself would
	// hang up on the idle connection.
	select {
	case <-srv.Closed():
	case <-time.After(5 * time.Second):
		t.Fatal("the SMTP connection outlived the config")
	}
}

// TestMailsTellTheSiteTime: with time_zone, a mail says when it was asked
// for in the site's zone, named.
func TestMailsTellTheSiteTime(t *testing.T) {
	e := startCaddyWith(t, func(*env) siteConfig { return siteConfig{Mailgate: "time_zone Europe/Brussels"} })
	before := now().In(mustZone(t, "Europe/Brussels"))
	e.browser(t).requestLink("alice@example.com", "/")
	after := now().In(mustZone(t, "Europe/Brussels"))
	text := e.mailedText(t, "alice@example.com")
	// The request may straddle a minute.
	if !strings.Contains(text, before.Format("15:04 MST")+" from 127.0.0.1") && !strings.Contains(text, after.Format("15:04 MST")+" from 127.0.0.1") {
		t.Errorf("the mail does not say %s, Brussels time:\n%s", after.Format("15:04 MST"), text)
	}
}

func mustZone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// TestMailsSayWhoAsked: a mail asked for in the browser says when, from
// which address and with which browser; one an app asked for names the app,
// and tells a person the app just made an account for so.
func TestMailsSayWhoAsked(t *testing.T) {
	e := startCaddy(t)
	e.browser(t).requestLink("alice@example.com", "/")
	text := e.mailedText(t, "alice@example.com")
	asked := regexp.MustCompile(`Asked for on \d{1,2} \w{3} \d{4} \d\d:\d\d UTC from 127\.0\.0\.1, with Go-http-client/1\.1\.`)
	if !asked.MatchString(text) || strings.Contains(text, "asked Example to send") {
		t.Errorf("the browser's mail does not say who asked:\n%s", text)
	}

	_, crm := e.clientCredentials(t, "crm", crmSecret, "")
	body := `{"email":"newcomer@example.com","clientId":"crm","redirectUri":"https://crm.example.com/callback",` +
		`"scope":"open_id","responseMode":"fragment","responseType":"token","forceCreate":true,"resetPassword":true}`
	if r, resp := e.callAPI(t, "/.mailgate/api/v1/magic-link", crm.AccessToken, testdpop.Key{}, body); r.StatusCode != http.StatusOK {
		t.Fatalf("magic-link: %s %v", r.Status, resp)
	}
	text = e.mailedText(t, "newcomer@example.com")
	for _, want := range []string{
		"The CRM asked", "An account was created for you", "you will choose a password",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the app's mail lacks %q:\n%s", want, text)
		}
	}
	// The app's server is not the person: no IP or browser of it.
	if strings.Contains(text, "127.0.0.1") || strings.Contains(text, "Go-http-client") {
		t.Errorf("the app's mail names the app server's address or client:\n%s", text)
	}
	// A second link for the same, now existing, person creates nothing.
	if r, _ := e.callAPI(t, "/.mailgate/api/v1/magic-link", crm.AccessToken, testdpop.Key{}, body); r.StatusCode != http.StatusOK {
		t.Fatalf("second magic-link: %s", r.Status)
	}
	if text = e.mailedText(t, "newcomer@example.com"); strings.Contains(text, "account was created") {
		t.Errorf("the second mail says an account was created:\n%s", text)
	}
}
