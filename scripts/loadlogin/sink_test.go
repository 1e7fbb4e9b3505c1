package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"strings"
	"testing"
	"time"

	"github.com/mailgate/caddy-mailgate/internal/mail"
)

// TestSinkHandsOverTheMailedLink delivers a login mail as mailgate does
// (composed by internal/mail, over STARTTLS with AUTH) and expects the sink
// to hand over the link exactly as it was written: long enough that its
// quoted-printable line is broken, with '=' and '-' in its token.
func TestSinkHandsOverTheMailedLink(t *testing.T) {
	prefix := "http://localhost:8080/.mailgate/link?"
	s, err := startSink(prefix, "mailer", "pw")
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(s.caPEM) {
		t.Fatal("the sink's certificate does not parse")
	}
	from, err := mail.ParseFrom("Load <login@load.example>")
	if err != nil {
		t.Fatal(err)
	}
	transport := &mail.SMTP{
		Addr: s.addr, TLS: mail.TLSStartTLS, Username: "mailer", Password: "pw",
		DialTimeout: 5 * time.Second, Timeout: 5 * time.Second, TLSConfig: &tls.Config{RootCAs: roots},
	}
	defer transport.Close()
	m := &mail.Mailer{From: from, Transport: transport, Now: time.Now}
	link := prefix + "t=" + strings.Repeat("Ab-_9", 20) + "=&l=en-GB"
	got := make(chan string, 1)
	s.expect("u1@load.example", got)
	err = m.Send(context.Background(), mail.Letter{
		To: "u1@load.example", Template: "login", SiteName: "loadlogin", Link: link, Expires: 10 * time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case l := <-got:
		if l != link {
			t.Errorf("link = %q, want %q", l, link)
		}
	default:
		t.Fatal("the sink took the mail but handed over no link")
	}
	if n := s.mails.Load(); n != 1 {
		t.Errorf("mails = %d, want 1", n)
	}
}
