package caddymodule

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"

	"github.com/mailgate/caddy-mailgate/internal/testsmtp"
)

// TestValidateLeavesTheMailServerAlone: `caddy validate` provisions a
// config without starting it, and checking a config needs no network: the
// mail server hears nothing from it, so nothing can warn that it is out of
// reach. Started, the same config probes the server, once.
func TestValidateLeavesTheMailServerAlone(t *testing.T) {
	srv := testsmtp.Start(t, testsmtp.Options{TLS: "none"})
	dir := t.TempDir()
	t.Setenv("XDG_DATA_HOME", filepath.Join(dir, "data"))
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(dir, "config"))
	port := freePorts(t, 1)[0]
	caddyfile := fmt.Sprintf(`{
	admin off
	storage file_system %s
}
http://localhost:%d {
	mailgate {
		base_url http://localhost:%d
		smtp %s {
			tls none
			from login@example.com
		}
	}
	respond ok
}
`, dir, port, port, srv.Addr)
	cfgJSON, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(caddyfile), nil)
	if err != nil {
		t.Fatal(err)
	}
	var cfg caddy.Config
	if err := json.Unmarshal(cfgJSON, &cfg); err != nil {
		t.Fatal(err)
	}
	if err := caddy.Validate(&cfg); err != nil {
		t.Fatalf("validate: %v", err)
	}

	if err := caddy.Load(cfgJSON, true); err != nil {
		t.Fatalf("Caddy did not start: %v", err)
	}
	t.Cleanup(func() {
		if err := caddy.Stop(); err != nil {
			t.Errorf("stopping Caddy: %v", err)
		}
	})
	// The probe of the start says goodbye and hangs up. By then a probe
	// of the validation, which came first, would have come and gone too.
	select {
	case <-srv.Closed():
	case <-time.After(10 * time.Second):
		t.Fatal("Caddy started the config without probing the mail server")
	}
	if n := srv.Connections(); n != 1 {
		t.Fatalf("the mail server had %d connections, want 1: the probe of the start, none of the validation", n)
	}
}
