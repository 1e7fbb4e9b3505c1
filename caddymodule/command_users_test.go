package caddymodule

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/mailgate/caddy-mailgate/internal/redistest"
)

// runCLI runs `caddy mailgate <args> --config <the site's Caddyfile>`
// through the cobra commands and returns what it printed.
func (e *env) runCLI(t *testing.T, site siteConfig, args ...string) (string, error) {
	t.Helper()
	path := filepath.Join(e.dir, "Caddyfile")
	if err := os.WriteFile(path, e.caddyfile(t, site), 0o600); err != nil {
		t.Fatal(err)
	}
	root := &cobra.Command{Use: "mailgate", SilenceUsage: true, SilenceErrors: true}
	root.AddCommand(usersCommand(), sessionsCommand())
	root.SetArgs(append(args, "--config", path))

	// The commands print to standard output, as an operator sees them.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout := os.Stdout
	os.Stdout = w
	printed := make(chan string)
	go func() {
		var buf bytes.Buffer
		_, _ = io.Copy(&buf, r)
		printed <- buf.String()
	}()
	err = root.Execute()
	os.Stdout = stdout
	w.Close()
	return <-printed, err
}

// TestUsersCommandsAgainstRunningCaddy: the users and sessions commands work
// on the storage and the Redis store of a running Caddy: a user added on
// the command line is the one the site signs in, disable ends the
// running server's session within 5 seconds, enable lets the user back in,
// sessions revoke ends a session without disabling, and delete removes the
// user.
func TestUsersCommandsAgainstRunningCaddy(t *testing.T) {
	srv := redistest.Start(t)
	site := siteConfig{Mailgate: redisStore(srv.Addr())}
	e := startCaddyWith(t, func(*env) siteConfig { return site })
	const alice = "alice@example.com"
	run := func(args ...string) string {
		t.Helper()
		out, err := e.runCLI(t, site, args...)
		if err != nil {
			t.Fatalf("%s: %v", strings.Join(args, " "), err)
		}
		return out
	}
	var shown struct {
		ID, Email, Username, Name, Status, Locale string
		SignedUp                                  *time.Time `json:"signed_up"`
	}
	show := func(ref string) {
		t.Helper()
		shown.SignedUp = nil
		if err := json.Unmarshal([]byte(run("users", "show", ref, "--json")), &shown); err != nil {
			t.Fatal(err)
		}
	}

	run("users", "add", alice, "--name", "Alice A", "--locale", "nl-nl")
	show(alice)
	if shown.Email != alice || shown.Name != "Alice A" || shown.Locale != "nl-NL" || shown.Status != "invited" || shown.SignedUp != nil {
		t.Fatalf("the added user: %+v", shown)
	}
	if _, err := e.runCLI(t, site, "users", "add", alice); err == nil || !strings.Contains(err.Error(), "another user has this email address") {
		t.Fatalf("adding the address again: %v", err)
	}
	cookie := e.browser(t).login(alice, "/")
	show(shown.ID)
	if shown.Status != "active" || shown.SignedUp == nil {
		t.Fatalf("after signing in: %+v", shown)
	}
	table := run("users", "list")
	if lines := strings.Split(strings.TrimSpace(table), "\n"); len(lines) != 2 || !strings.HasPrefix(lines[0], "ID ") ||
		!strings.Contains(lines[1], alice) || !strings.Contains(lines[1], "Alice A") || !strings.Contains(lines[1], "active") {
		t.Fatalf("users list:\n%s", table)
	}

	since := time.Now()
	run("users", "disable", alice)
	awaitStatus(t, "the session after `users disable`", http.StatusUnauthorized, since, map[string]*env{"the running Caddy": e},
		func(inst *env) int { return inst.sessionStatus(t, cookie) })
	fresh := e.browser(t)
	fresh.requestLink(alice, "/")
	if r := fresh.confirm(e.mailedLink(t, alice)); r.StatusCode != http.StatusGone {
		t.Fatalf("signing in while disabled: %s", r.Status)
	}

	if out := run("users", "enable", shown.ID); !strings.Contains(out, "active") {
		t.Fatalf("users enable printed:\n%s", out)
	}
	// The disable's cut-off covers its second; the next session is of a
	// later one.
	clockOffset.Add(int64(time.Second))
	cookie = e.browser(t).login(alice, "/")
	if got := e.sessionStatus(t, cookie); got != http.StatusOK {
		t.Fatalf("the enabled user's session: %d", got)
	}

	clockOffset.Add(int64(time.Second))
	since = time.Now()
	run("sessions", "revoke", "--user", alice)
	awaitStatus(t, "the session after `sessions revoke`", http.StatusUnauthorized, since, map[string]*env{"the running Caddy": e},
		func(inst *env) int { return inst.sessionStatus(t, cookie) })
	if show(alice); shown.Status != "active" {
		t.Fatalf("sessions revoke changed the status to %s", shown.Status)
	}

	run("users", "delete", alice)
	if _, err := e.runCLI(t, site, "users", "show", alice); err == nil || !strings.Contains(err.Error(), "no user has this id or address") {
		t.Fatalf("show after delete: %v", err)
	}
}

// TestUsersCommandsRefuseTheMemoryStore: with the memory store, the
// sessions live inside the running Caddy, out of a command's reach: disable,
// delete and sessions revoke refuse, say why, and change nothing.
func TestUsersCommandsRefuseTheMemoryStore(t *testing.T) {
	e := startCaddy(t)
	cookie := e.browser(t).login("alice@example.com", "/")
	for _, args := range [][]string{
		{"users", "disable", "alice@example.com"},
		{"users", "delete", "alice@example.com"},
		{"sessions", "revoke", "--user", "alice@example.com"},
	} {
		_, err := e.runCLI(t, siteConfig{}, args...)
		var mem errMemoryStore
		if !errors.As(err, &mem) || !strings.Contains(err.Error(), "store redis") {
			t.Errorf("%s: %v, want the memory store's refusal", strings.Join(args, " "), err)
		}
	}
	out, err := e.runCLI(t, siteConfig{}, "users", "show", "alice@example.com")
	if err != nil || !strings.Contains(out, "active") {
		t.Fatalf("the user after the refusals: %v\n%s", err, out)
	}
	if got := e.sessionStatus(t, cookie); got != http.StatusOK {
		t.Fatalf("the session after the refusals: %d", got)
	}
}
