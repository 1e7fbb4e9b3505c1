package mailgate_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestXcaddyBuild builds Caddy with mailgate the way plugin users do, with
// the xcaddy pinned in tools/go.mod, and checks the binary: the module is
// listed and Caddyfile.example is a valid config. It takes minutes on a cold
// module cache; -short leaves it out for quick local runs.
func TestXcaddyBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds Caddy with xcaddy; run without -short")
	}
	root, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "caddy")
	caddyVersion := moduleVersion(t, "github.com/caddyserver/caddy/v2")

	build := exec.Command("go", "tool", "-modfile=tools/go.mod", "xcaddy", "build", caddyVersion,
		"--with", "github.com/mailgate/caddy-mailgate="+root, "--output", bin)
	// The proxy, then nothing: `direct` would fetch this module from its
	// (unpublished) origin instead of using the local replacement.
	build.Env = append(os.Environ(), "GOPROXY="+proxyOrOff())
	start := time.Now()
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("xcaddy build: %v\n%s", err, out)
	}
	t.Logf("xcaddy build took %s", time.Since(start).Round(time.Second))

	out, err := exec.Command(bin, "list-modules").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "http.handlers.mailgate") {
		t.Fatalf("list-modules (%v) does not show http.handlers.mailgate:\n%s", err, out)
	}
	validate := exec.Command(bin, "validate", "--config", "Caddyfile.example")
	validate.Env = append(os.Environ(), "XDG_DATA_HOME="+filepath.Join(tmp, "data"), "XDG_CONFIG_HOME="+filepath.Join(tmp, "config"))
	if out, err := validate.CombinedOutput(); err != nil {
		t.Fatalf("caddy validate --config Caddyfile.example: %v\n%s", err, out)
	}
}

func moduleVersion(t *testing.T, mod string) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Version}}", mod).Output()
	if err != nil {
		t.Fatalf("go list -m %s: %v", mod, err)
	}
	return strings.TrimSpace(string(out))
}

// proxyOrOff keeps the configured module proxy but replaces a `direct`
// fallback with `off`.
func proxyOrOff() string {
	out, err := exec.Command("go", "env", "GOPROXY").Output()
	proxy := strings.TrimSpace(string(out))
	if err != nil || proxy == "" || proxy == "off" {
		proxy = "https://proxy.golang.org"
	}
	var kept []string
	for _, p := range strings.FieldsFunc(proxy, func(r rune) bool { return r == ',' || r == '|' }) {
		if p != "direct" && p != "off" {
			kept = append(kept, p)
		}
	}
	return strings.Join(kept, "|") + "|off"
}
