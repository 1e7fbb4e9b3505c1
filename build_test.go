package mailgate_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestXcaddyBuild runs the README's build command exactly as written, from
// the repository's root, as a builder would paste it, and checks the binary:
// the module is listed and Caddyfile.example is a valid config. It takes
// minutes on a cold module cache; -short leaves it out for quick local runs.
func TestXcaddyBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds Caddy with xcaddy; run without -short")
	}
	line := readmeBuildCommand(t)
	if v := moduleVersion(t, "github.com/caddyserver/caddy/v2"); !strings.Contains(line, " "+v+" ") {
		t.Fatalf("the README builds another Caddy than go.mod's %s:\n%s", v, line)
	}
	bin := "./caddy-mailgate"
	t.Cleanup(func() { os.Remove(bin) })
	start := time.Now()
	if out, err := exec.Command("sh", "-c", line).CombinedOutput(); err != nil {
		t.Fatalf("the README's build command failed: %v\n%s\n%s", err, line, out)
	}
	t.Logf("xcaddy build took %s", time.Since(start).Round(time.Second))

	out, err := exec.Command(bin, "list-modules").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "http.handlers.mailgate") {
		t.Fatalf("list-modules (%v) does not show http.handlers.mailgate:\n%s", err, out)
	}
	tmp := t.TempDir()
	validate := exec.Command(bin, "validate", "--config", "Caddyfile.example")
	validate.Env = append(os.Environ(), "XDG_DATA_HOME="+filepath.Join(tmp, "data"), "XDG_CONFIG_HOME="+filepath.Join(tmp, "config"))
	if out, err := validate.CombinedOutput(); err != nil {
		t.Fatalf("caddy validate --config Caddyfile.example: %v\n%s", err, out)
	}
}

// readmeBuildCommand returns the line of the sh block that follows the
// README's marker for it.
func readmeBuildCommand(t *testing.T) string {
	t.Helper()
	raw, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(raw), "<!-- build_test.go runs the line below exactly as written -->\n```sh\n")
	line, _, closed := strings.Cut(after, "\n```")
	if !ok || !closed || strings.Contains(line, "\n") {
		t.Fatal("the README has no one-line build command after its marker")
	}
	return line
}

func moduleVersion(t *testing.T, mod string) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Version}}", mod).Output()
	if err != nil {
		t.Fatalf("go list -m %s: %v", mod, err)
	}
	return strings.TrimSpace(string(out))
}
