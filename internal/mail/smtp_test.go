package mail

import (
	"context"
	"crypto/tls"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailgate/caddy-mailgate/internal/testsmtp"
)

// TestTLSFailureIsReportedAsTLS: a server whose certificate is not trusted
// fails the delivery with an error that names the TLS handshake and why it
// failed, not the EHLO or AUTH that came after it, in both TLS modes.
func TestTLSFailureIsReportedAsTLS(t *testing.T) {
	for _, mode := range []string{TLSStartTLS, TLSImplicit} {
		t.Run(mode, func(t *testing.T) {
			srv := testsmtp.Start(t, testsmtp.Options{TLS: mode, Username: "u", Password: "p"})
			tr := &SMTP{Addr: srv.Addr, TLS: mode, Username: "u", Password: "p", DialTimeout: 5 * time.Second, Timeout: 10 * time.Second}
			err := mailer(t, tr).Send(context.Background(), letter())
			if err == nil {
				t.Fatal("delivered to a server whose certificate nothing trusts")
			}
			if msg := err.Error(); !strings.Contains(msg, "TLS handshake with "+srv.Addr+": ") || !strings.Contains(msg, "x509: ") ||
				strings.Contains(msg, "authenticating") || strings.Contains(msg, "greeting") {
				t.Fatalf("error %q does not say that the TLS handshake failed, and why", msg)
			}
			if n := len(srv.Messages()); n != 0 {
				t.Fatalf("%d messages delivered", n)
			}
		})
	}
}

// TestLocalNameIsTheEHLOName: the server is greeted with LocalName in every
// TLS mode, before STARTTLS too, and with localhost when it is not set.
func TestLocalNameIsTheEHLOName(t *testing.T) {
	for _, c := range []struct {
		mode, name string
		want       []string
	}{
		{TLSStartTLS, "mail.example.net", []string{"mail.example.net", "mail.example.net"}},
		{TLSImplicit, "mail.example.net", []string{"mail.example.net"}},
		{TLSNone, "mail.example.net", []string{"mail.example.net"}},
		{TLSStartTLS, "", []string{"localhost", "localhost"}},
	} {
		t.Run(c.mode+" "+c.name, func(t *testing.T) {
			srv := testsmtp.Start(t, testsmtp.Options{TLS: c.mode})
			tr := &SMTP{Addr: srv.Addr, TLS: c.mode, LocalName: c.name, DialTimeout: 5 * time.Second, Timeout: 10 * time.Second,
				TLSConfig: &tls.Config{RootCAs: srv.RootCAs}}
			if err := mailer(t, tr).Send(context.Background(), letter()); err != nil {
				t.Fatal(err)
			}
			if got := srv.Hellos(); !slices.Equal(got, c.want) {
				t.Fatalf("the server was greeted as %q, want %q", got, c.want)
			}
			if n := len(srv.Messages()); n != 1 {
				t.Fatalf("%d messages delivered", n)
			}
		})
	}
}
