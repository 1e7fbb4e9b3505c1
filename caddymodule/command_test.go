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
	run := func(path string) error {
		fs := pflag.NewFlagSet("test-mail", pflag.ContinueOnError)
		fs.String("to", "", "")
		fs.String("config", "", "")
		fs.String("adapter", "", "")
		if err := fs.Parse([]string{"--to", "ops@example.com", "--config", path}); err != nil {
			t.Fatal(err)
		}
		_, err := cmdTestMail(caddycmd.Flags{FlagSet: fs})
		return err
	}

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
