package caddymodule

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	gomail "github.com/emersion/go-message/mail"
	"github.com/spf13/pflag"

	"github.com/mailgate/caddy-mailgate/internal/testsmtp"
)

// TestTestMailCommand runs `caddy mailgate test-mail` on a Caddyfile whose
// SMTP settings point at a real SMTP server: the mail arrives, from the
// configured sender, with AUTH; a wrong password is an error that says so.
func TestTestMailCommand(t *testing.T) {
	srv := testsmtp.Start(t, testsmtp.Options{TLS: "none", Username: "mailer", Password: "smtp-secret"})
	dir := t.TempDir()
	write := func(password string) string {
		path := filepath.Join(dir, "Caddyfile")
		caddyfile := "https://app.example.com {\n\tmailgate {\n\t\tbase_url https://app.example.com\n" +
			"\t\tsmtp " + srv.Addr + " {\n\t\t\ttls none\n\t\t\tusername mailer\n\t\t\tpassword " + password +
			"\n\t\t\tfrom \"Example <login@example.com>\"\n\t\t}\n\t}\n}\n"
		if err := os.WriteFile(path, []byte(caddyfile), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	run := func(path string) error { return testMail(t, path, "ops@example.com") }

	if err := run(write("smtp-secret")); err != nil {
		t.Fatalf("test-mail: %v", err)
	}
	msgs := srv.Messages()
	if len(msgs) != 1 || len(msgs[0].To) != 1 || msgs[0].To[0] != "ops@example.com" || msgs[0].Auth != "mailer" {
		t.Fatalf("messages received: %+v", msgs)
	}
	r, err := gomail.CreateReader(bytes.NewReader(msgs[0].Data))
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := r.Header.Subject(); !strings.Contains(s, "Test mail") || !strings.Contains(s, "app.example.com") {
		t.Errorf("Subject %q", s)
	}
	if from, _ := r.Header.AddressList("From"); len(from) != 1 || from[0].Address != "login@example.com" {
		t.Errorf("From %v", from)
	}

	if err := run(write("wrong")); err == nil || !strings.Contains(err.Error(), "authenticating") {
		t.Fatalf("test-mail with a wrong password: %v", err)
	}
}

// testMail runs `caddy mailgate test-mail --to to --config path`.
func testMail(t *testing.T, path, to string) error {
	t.Helper()
	fs := pflag.NewFlagSet("test-mail", pflag.ContinueOnError)
	fs.String("to", "", "")
	fs.String("config", "", "")
	fs.String("adapter", "", "")
	if err := fs.Parse([]string{"--to", to, "--config", path}); err != nil {
		t.Fatal(err)
	}
	_, err := cmdTestMail(caddycmd.Flags{FlagSet: fs})
	return err
}

// TestSMTPCAFileAndLocalName: a mail server whose certificate a private CA
// issued is refused with an error that names the TLS handshake, and
// trusted with ca_file, in both TLS modes; the server is greeted with
// base_url's host, or with local_name when it is set.
func TestSMTPCAFileAndLocalName(t *testing.T) {
	for _, mode := range []string{"starttls", "tls"} {
		t.Run(mode, func(t *testing.T) {
			srv := testsmtp.Start(t, testsmtp.Options{TLS: mode, Username: "mailer", Password: "smtp-secret"})
			dir := t.TempDir()
			ca := filepath.Join(dir, "smtp-ca.pem")
			if err := os.WriteFile(ca, srv.CertPEM, 0o600); err != nil {
				t.Fatal(err)
			}
			write := func(extra string) string {
				path := filepath.Join(dir, "Caddyfile")
				caddyfile := "https://app.example.com {\n\tmailgate {\n\t\tbase_url https://app.example.com\n" +
					"\t\tsmtp " + srv.Addr + " {\n\t\t\ttls " + mode + "\n\t\t\tusername mailer\n\t\t\tpassword smtp-secret" +
					"\n\t\t\tfrom \"Example <login@example.com>\"\n" + extra + "\t\t}\n\t}\n}\n"
				if err := os.WriteFile(path, []byte(caddyfile), 0o600); err != nil {
					t.Fatal(err)
				}
				return path
			}

			err := testMail(t, write(""), "ops@example.com")
			if err == nil || !strings.Contains(err.Error(), "TLS handshake with "+srv.Addr+": ") || !strings.Contains(err.Error(), "x509: ") {
				t.Fatalf("without ca_file: %v; want a failed TLS handshake, and why", err)
			}
			if n := len(srv.Messages()); n != 0 {
				t.Fatalf("without ca_file, %d mails were delivered", n)
			}

			if err := testMail(t, write("\t\t\tca_file "+ca+"\n"), "ops@example.com"); err != nil {
				t.Fatalf("with ca_file: %v", err)
			}
			if n := len(srv.Messages()); n != 1 {
				t.Fatalf("with ca_file, %d mails were delivered, want 1", n)
			}
			hellos := srv.Hellos()
			if last := hellos[len(hellos)-1]; last != "app.example.com" {
				t.Errorf("the server was greeted as %q, want base_url's host app.example.com (all: %q)", last, hellos)
			}

			if err := testMail(t, write("\t\t\tca_file "+ca+"\n\t\t\tlocal_name mail.example.net\n"), "ops@example.com"); err != nil {
				t.Fatalf("with local_name: %v", err)
			}
			if hellos := srv.Hellos(); hellos[len(hellos)-1] != "mail.example.net" {
				t.Errorf("the server was greeted as %q, want local_name mail.example.net", hellos)
			}
		})
	}
}
