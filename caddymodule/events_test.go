package caddymodule

import (
	"errors"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/mailgate/caddy-mailgate/internal/flow"
)

// The operator's log keeps the lines it had before the observer: the same
// messages and fields, at the same levels.
func TestEventsWriteTheOperatorsLogLines(t *testing.T) {
	want := []struct {
		level      zapcore.Level
		msg        string
		key, value string
	}{
		{zapcore.DebugLevel, "login mail handed on for delivery", "method", "link"},
		{zapcore.InfoLevel, "login", "user_id", "u1"},
		{zapcore.InfoLevel, "a login request matched no allow rule; no mail was sent", "domain", "example.org"},
		{zapcore.InfoLevel, "a code request matched no allow rule; no mail was sent", "domain", "example.net"},
		{zapcore.InfoLevel, "a login request was over a limit; no mail was sent", "limit", "mails_per_address"},
		{zapcore.InfoLevel, "logout", "user_id", "u1"},
		{zapcore.InfoLevel, "logout everywhere (with_logout)", "user_id", "u2"},
		{zapcore.InfoLevel, "password set", "user_id", "u1"},
		{zapcore.ErrorLevel, "reading a pending link", "error", "store down"},
	}
	core, logs := observer.New(zapcore.DebugLevel)
	e := events{logger: zap.New(core)}
	e.LoginStarted(flow.MethodLink)
	e.LoginDone("u1", flow.MethodCode)
	e.Refused(flow.MethodLink, "example.org")
	e.Refused(flow.MethodCode, "example.net")
	e.Limited("mails_per_address")
	e.MailGivenUp(flow.MethodLink)
	e.SignedOut("u1", false)
	e.SignedOut("u2", true)
	e.PasswordSet("u1")
	e.Failed("reading a pending link", errors.New("store down"))
	got := logs.All()
	if len(got) != len(want) {
		t.Fatalf("%d lines, want %d: %v", len(got), len(want), got)
	}
	for i, w := range want {
		g := got[i]
		if g.Level != w.level || g.Message != w.msg || g.ContextMap()[w.key] != w.value {
			t.Errorf("line %d: %s %q %v; want %s %q %s=%s", i, g.Level, g.Message, g.ContextMap(), w.level, w.msg, w.key, w.value)
		}
	}
}
