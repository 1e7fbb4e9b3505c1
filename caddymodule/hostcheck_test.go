package caddymodule

import (
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// TestForeignHostIsWarnedOnce: a page asked for by another name than
// base_url's is logged once, with both names; base_url's own host, with or
// without a port and in any case, is not.
func TestForeignHostIsWarnedOnce(t *testing.T) {
	core, logs := observer.New(zap.WarnLevel)
	m := &Mailgate{logger: zap.New(core), origin: "https://app.example.com", baseHost: "app.example.com", hostWarned: new(atomic.Bool)}
	for _, host := range []string{"app.example.com", "APP.example.com:443", "www.example.com", "10.0.0.5:8443"} {
		r := httptest.NewRequest("GET", "https://"+host+"/.mailgate/login", nil)
		m.warnForeignHost(r)
	}
	entries := logs.All()
	if len(entries) != 1 {
		t.Fatalf("%d warnings, want 1: %v", len(entries), entries)
	}
	if f := entries[0].ContextMap(); f["host"] != "www.example.com" || f["base_url"] != "https://app.example.com" {
		t.Fatalf("the warning names %v", f)
	}
}
