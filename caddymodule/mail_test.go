package caddymodule

import (
	"context"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/mailgate/caddy-mailgate/internal/mail"
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
	bad := *good
	bad.Password = "wrong"
	m.probeSMTP(context.Background(), &bad)
	if entries := logs.All(); len(entries) != 1 || entries[0].ContextMap()["address"] != srv.Addr {
		t.Fatalf("warnings about a wrong password: %v", entries)
	}
}
