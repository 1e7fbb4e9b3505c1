package caddymodule

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/mailgate/caddy-mailgate/internal/mail"
)

// TestOutboxLogsWhatTheDemoUserNeeds: in the dev outbox, a code mail's log
// line carries the code (not an empty link), a link mail's the link, and
// each names the file written.
func TestOutboxLogsWhatTheDemoUserNeeds(t *testing.T) {
	dir := t.TempDir()
	from, err := mail.ParseFrom("Example <login@example.com>")
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zapcore.InfoLevel)
	o := outboxMailer{
		Mailer: &mail.Mailer{From: from, Transport: &mail.Outbox{Dir: dir, Now: time.Now}, Now: time.Now},
		dir:    dir, logger: zap.New(core),
	}
	ctx := context.Background()
	if err := o.Send(ctx, mail.Letter{To: "alice@example.com", Template: "code", Code: "042917", SiteName: "Example", Expires: 3 * time.Minute, Locale: "en-GB"}); err != nil {
		t.Fatal(err)
	}
	if err := o.Send(ctx, mail.Letter{To: "alice@example.com", Template: "login", Link: "http://localhost:8080/.mailgate/link?t=x", SiteName: "Example", Expires: time.Minute, Locale: "en-GB"}); err != nil {
		t.Fatal(err)
	}
	entries := logs.All()
	if len(entries) != 2 {
		t.Fatalf("%d log lines, want 2", len(entries))
	}
	code, link := entries[0].ContextMap(), entries[1].ContextMap()
	if entries[0].Message != "login code written to the dev outbox (not mailed)" || code["code"] != "042917" || code["link"] != nil || code["outbox"] != dir {
		t.Fatalf("the code mail's line: %q %v", entries[0].Message, code)
	}
	if entries[1].Message != "login link written to the dev outbox (not mailed)" || link["link"] != "http://localhost:8080/.mailgate/link?t=x" || link["code"] != nil {
		t.Fatalf("the link mail's line: %q %v", entries[1].Message, link)
	}
	files, _ := os.ReadDir(dir)
	if len(files) != 2 || !strings.HasSuffix(files[0].Name(), ".eml") {
		t.Fatalf("outbox files: %v", files)
	}
}
