package mailgate_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	// The build needs Caddy's standard modules. Compiled for this test
	// binary, they are in Go's build cache before the test's clock starts;
	// the build below only links them (see xcaddyBuildFlags).
	_ "github.com/caddyserver/caddy/v2/modules/standard"
)

// readmeOutput is where the README's build line puts the binary, relative to
// the repository's root.
const readmeOutput = "--output ./caddy-mailgate"

// xcaddyBuildFlags are the flags of xcaddy's default build (its
// XCADDY_GO_BUILD_FLAGS when unset) less -trimpath and -ldflags '-w -s'.
// With -trimpath, or with cgo set otherwise than for go test (xcaddy turns
// it off unless CGO_ENABLED=1), nothing that go test compiled is reused:
// every package of Caddy is compiled a second time, which on a loaded
// two-core machine took most of go test's ten minutes. With go test's
// settings the build reuses the packages this test binary and the other
// packages' tests were built from, and costs about a link. Path trimming,
// stripped symbols and cgo are the Go toolchain's business, not mailgate's.
const xcaddyBuildFlags = "-tags nobadger,nomysql,nopgx"

// TestXcaddyBuild runs the README's build command as a builder would paste
// it, from the repository's root, and checks the binary: the module is
// listed and Caddyfile.example is a valid config. The binary goes to a
// temporary folder instead of ./caddy-mailgate, where a builder's own build
// may be: a test never writes to the working tree. -short leaves it out for
// quick local runs.
func TestXcaddyBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds Caddy with xcaddy; run without -short")
	}
	// First, so that its check runs after every other cleanup.
	leftAlone(t, "caddy-mailgate")
	line := readmeBuildCommand(t)
	if v := moduleVersion(t, "github.com/caddyserver/caddy/v2"); !strings.Contains(line, " "+v+" ") {
		t.Fatalf("the README builds another Caddy than go.mod's %s:\n%s", v, line)
	}
	if n := strings.Count(line, readmeOutput); n != 1 {
		t.Fatalf("the README's build line has %d times %q, want once:\n%s", n, readmeOutput, line)
	}
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "caddy-mailgate")
	line = strings.Replace(line, readmeOutput, "--output '"+bin+"'", 1)

	build := exec.Command("sh", "-c", line)
	build.Env = append(os.Environ(), "XCADDY_GO_BUILD_FLAGS="+xcaddyBuildFlags, "CGO_ENABLED="+goEnv(t, "CGO_ENABLED"))
	start := time.Now()
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("the README's build command failed: %v\n%s\n%s", err, line, out)
	}
	t.Logf("xcaddy build took %s", time.Since(start).Round(time.Second))

	out, err := exec.Command(bin, "list-modules").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "http.handlers.mailgate") {
		t.Fatalf("list-modules (%v) does not show http.handlers.mailgate:\n%s", err, out)
	}
	example, err := filepath.Abs("Caddyfile.example")
	if err != nil {
		t.Fatal(err)
	}
	// From the temporary folder: the example's relative paths (its dev
	// outbox) resolve there, not in the working tree.
	validate := exec.Command(bin, "validate", "--config", example)
	validate.Dir = tmp
	validate.Env = append(os.Environ(), "XDG_DATA_HOME="+filepath.Join(tmp, "data"), "XDG_CONFIG_HOME="+filepath.Join(tmp, "config"))
	if out, err := validate.CombinedOutput(); err != nil {
		t.Fatalf("caddy validate --config Caddyfile.example: %v\n%s", err, out)
	}
}

// leftAlone fails t if, by the end of the test, any of paths (in the
// working tree) was created, changed or removed: a builder's own
// ./caddy-mailgate must survive go test.
func leftAlone(t *testing.T, paths ...string) {
	t.Helper()
	before := make([]string, len(paths))
	for i, p := range paths {
		before[i] = describe(p)
	}
	t.Cleanup(func() {
		for i, p := range paths {
			if after := describe(p); after != before[i] {
				t.Errorf("the test touched ./%s in the working tree: before %s, after %s", p, before[i], after)
			}
		}
	})
}

// describe says whether path exists and, if so, its size and time.
func describe(path string) string {
	fi, err := os.Stat(path)
	if err != nil {
		return "absent"
	}
	return fmt.Sprintf("%d bytes of %s", fi.Size(), fi.ModTime().Format(time.RFC3339Nano))
}

// readmeBuildCommand returns the line of the sh block that follows the
// README's marker for it.
func readmeBuildCommand(t *testing.T) string {
	t.Helper()
	raw, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(raw), "<!-- build_test.go runs the line below as written, with --output in a temporary folder -->\n```sh\n")
	line, _, closed := strings.Cut(after, "\n```")
	if !ok || !closed || strings.Contains(line, "\n") {
		t.Fatal("the README has no one-line build command after its marker")
	}
	return line
}

// goEnv is the value of a go env variable, as go test has it.
func goEnv(t *testing.T, name string) string {
	t.Helper()
	out, err := exec.Command("go", "env", name).Output()
	if err != nil {
		t.Fatalf("go env %s: %v", name, err)
	}
	return strings.TrimSpace(string(out))
}

func moduleVersion(t *testing.T, mod string) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Version}}", mod).Output()
	if err != nil {
		t.Fatalf("go list -m %s: %v", mod, err)
	}
	return strings.TrimSpace(string(out))
}
