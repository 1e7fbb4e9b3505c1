package caddymodule

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailgate/caddy-mailgate/internal/testdpop"
)

// webDriver is a minimal W3C WebDriver client for chromedriver driving
// Debian's headless Chromium: enough to load pages, type, click and read
// cookies, as a person would.
type webDriver struct {
	t       *testing.T
	base    string
	session string
}

// browserMissing says what to install when Chromium or its driver is not
// on this machine, and is empty when both are.
func browserMissing() string {
	for _, bin := range []string{"chromedriver", "chromium"} {
		if _, err := exec.LookPath(bin); err != nil {
			return "the browser tests need Chromium: apt-get install chromium chromium-driver"
		}
	}
	return ""
}

// TestMain says that the browser tests will be skipped where the person
// running go test sees it. A skip inside a passing package shows only with
// -v, and go test ./... keeps a passing package's stderr to itself, so the
// line goes to the terminal when there is one, and to stderr otherwise.
// Under CI the tests fail instead.
func TestMain(m *testing.M) {
	if msg := browserMissing(); msg != "" && os.Getenv("CI") == "" {
		line := "caddymodule: SKIPPING the browser tests: " + msg + "\n"
		if tty, err := os.OpenFile("/dev/tty", os.O_WRONLY, 0); err == nil {
			fmt.Fprint(tty, line)
			tty.Close()
		} else {
			fmt.Fprint(os.Stderr, line)
		}
	}
	os.Exit(m.Run())
}

// startBrowser starts chromedriver and a headless Chromium with a phone-sized
// window. Without chromium and chromium-driver installed it fails under CI
// and skips elsewhere, saying what to install.
func startBrowser(t *testing.T) *webDriver {
	t.Helper()
	if msg := browserMissing(); msg != "" {
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	driver, _ := exec.LookPath("chromedriver")
	port := freePorts(t, 1)[0]
	cmd := exec.Command(driver, fmt.Sprintf("--port=%d", port))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting chromedriver: %v", err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() }) //nolint:errcheck
	// chromedriver announces on stdout that it listens.
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "started successfully") {
				ready <- true
				io.Copy(io.Discard, stdout) //nolint:errcheck
				return
			}
		}
		ready <- false
	}()
	select {
	case ok := <-ready:
		if !ok {
			t.Fatal("chromedriver exited before it was ready")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("chromedriver did not start within 30s")
	}

	wd := &webDriver{t: t, base: fmt.Sprintf("http://127.0.0.1:%d", port)}
	var created struct {
		SessionID string `json:"sessionId"`
	}
	wd.call(http.MethodPost, "/session", map[string]any{
		"capabilities": map[string]any{"alwaysMatch": map[string]any{
			"browserName": "chrome",
			// The site uses the test's own certificate.
			"acceptInsecureCerts": true,
			"goog:chromeOptions": map[string]any{
				"binary": "/usr/bin/chromium",
				"args": []string{
					"--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
					"--disable-background-networking", "--disable-component-update", "--disable-sync",
					"--user-data-dir=" + t.TempDir(), "--window-size=390,844",
				},
			},
		}},
	}, &created)
	wd.session = "/session/" + created.SessionID
	t.Cleanup(func() { wd.call(http.MethodDelete, wd.session, nil, nil) })
	return wd
}

// call sends one WebDriver command and decodes its "value" into out.
func (wd *webDriver) call(method, path string, body, out any) {
	wd.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, wd.base+path, rd)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		wd.t.Fatalf("webdriver %s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		wd.t.Fatalf("webdriver %s %s: %s: %s", method, path, resp.Status, raw)
	}
	if out != nil {
		var env struct{ Value json.RawMessage }
		if err := json.Unmarshal(raw, &env); err != nil {
			wd.t.Fatal(err)
		}
		if err := json.Unmarshal(env.Value, out); err != nil {
			wd.t.Fatalf("webdriver %s %s: decoding %s: %v", method, path, env.Value, err)
		}
	}
}

func (wd *webDriver) open(url string) {
	wd.call(http.MethodPost, wd.session+"/url", map[string]string{"url": url}, nil)
}

func (wd *webDriver) url() string {
	var u string
	wd.call(http.MethodGet, wd.session+"/url", nil, &u)
	return u
}

func (wd *webDriver) source() string {
	var s string
	wd.call(http.MethodGet, wd.session+"/source", nil, &s)
	return s
}

// element finds the element matching a CSS selector.
func (wd *webDriver) element(css string) string {
	var el map[string]string
	wd.call(http.MethodPost, wd.session+"/element", map[string]string{"using": "css selector", "value": css}, &el)
	for _, id := range el {
		return id
	}
	wd.t.Fatalf("no element %s", css)
	return ""
}

func (wd *webDriver) typeInto(css, text string) {
	wd.call(http.MethodPost, wd.session+"/element/"+wd.element(css)+"/value", map[string]string{"text": text}, nil)
}

func (wd *webDriver) click(css string) {
	wd.call(http.MethodPost, wd.session+"/element/"+wd.element(css)+"/click", map[string]string{}, nil)
}

// script runs JavaScript in the page (WebDriver's scripts are not subject to
// the page's CSP) and returns its result.
func (wd *webDriver) script(js string) any {
	var v any
	wd.call(http.MethodPost, wd.session+"/execute/sync", map[string]any{"script": js, "args": []any{}}, &v)
	return v
}

type browserCookie struct {
	Name     string `json:"name"`
	Secure   bool   `json:"secure"`
	HTTPOnly bool   `json:"httpOnly"`
	SameSite string `json:"sameSite"`
	Path     string `json:"path"`
	Domain   string `json:"domain"`
	Expiry   int64  `json:"expiry"`
}

func (wd *webDriver) cookies() map[string]browserCookie {
	var list []browserCookie
	wd.call(http.MethodGet, wd.session+"/cookie", nil, &list)
	m := map[string]browserCookie{}
	for _, c := range list {
		m[c.Name] = c
	}
	return m
}

// waitFor repeats check, each time a round trip to the browser, until it
// holds or 10 seconds pass: a click that submits a form returns before the
// browser has navigated.
func (wd *webDriver) waitFor(what string, check func() bool) {
	wd.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !check() {
		if time.Now().After(deadline) {
			wd.t.Fatalf("waited 10s for %s; the browser is at %s:\n%s", what, wd.url(), wd.source())
		}
	}
}

// screenshot saves the page as PNG into $MAILGATE_SCREENSHOTS, when set, for
// a person to look at.
func (wd *webDriver) screenshot(name string) {
	dir := os.Getenv("MAILGATE_SCREENSHOTS")
	if dir == "" {
		return
	}
	var b64 string
	wd.call(http.MethodGet, wd.session+"/screenshot", nil, &b64)
	png, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		wd.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		wd.t.Fatal(err)
	}
}

// TestBrowserLogin walks the sign-in journey in headless Chromium: the pages
// render under their CSP, the forms pass the browser's own Sec-Fetch-Site,
// and the browser keeps the session cookie with the right flags.
func TestBrowserLogin(t *testing.T) {
	e := startCaddy(t)
	wd := startBrowser(t)

	wd.open(e.base + "/private?x=1")
	if u := wd.url(); !strings.HasPrefix(u, e.base+"/.mailgate/login?return=") {
		t.Fatalf("unauthenticated page load ended at %s", u)
	}
	// The stylesheet loaded despite default-src 'none': the button has the
	// accent colour from style.css.
	if bg := wd.script(`return getComputedStyle(document.querySelector("button")).backgroundColor`); bg != "rgb(29, 78, 216)" {
		t.Errorf("button background %v: the stylesheet did not apply", bg)
	}
	wd.screenshot("1-login")

	wd.typeInto("#email", "alice@example.com")
	wd.click("button[type=submit]")
	wd.waitFor("the check-your-inbox page", func() bool { return strings.Contains(wd.source(), "Check your inbox") })
	wd.screenshot("2-sent")

	wd.open(e.mailedLink(t, "alice@example.com"))
	if src := wd.source(); !strings.Contains(src, "Continue signing in") {
		t.Fatalf("link page:\n%s", src)
	}
	wd.screenshot("3-confirm")
	wd.click("button[type=submit]")
	wd.waitFor("the return to /private?x=1", func() bool { return wd.url() == e.base+"/private?x=1" })
	if src := wd.source(); !strings.Contains(src, "hello alice@example.com") {
		t.Fatalf("protected page:\n%s", src)
	}

	c, ok := wd.cookies()["__Host-mailgate"]
	if !ok {
		t.Fatal("the browser kept no __Host-mailgate cookie")
	}
	if !c.Secure || !c.HTTPOnly || c.SameSite != "Lax" || c.Path != "/" || c.Expiry != 0 {
		t.Errorf("session cookie in the browser: %+v", c)
	}
	if v := wd.script(`return document.cookie`); strings.Contains(fmt.Sprint(v), "__Host-mailgate=") {
		t.Error("page script can read the session cookie")
	}

	wd.open(e.base + "/.mailgate/logout")
	wd.screenshot("4-logout")
	wd.click("button[type=submit]")
	wd.waitFor("the signed-out page", func() bool { return strings.Contains(wd.source(), "You have signed out") })
	wd.open(e.base + "/private")
	if u := wd.url(); !strings.Contains(u, "/.mailgate/login") {
		t.Fatalf("after signing out, /private loaded at %s", u)
	}
}

// TestBrowserFormPost checks that a real browser runs the form_post page
// under its CSP: the nonce'd script submits, and form-action lets the post
// reach the app's redirect URI.
func TestBrowserFormPost(t *testing.T) {
	e := startCaddy(t)
	wd := startBrowser(t)
	e.browser(t).login("alice@example.com", "/") // the account exists
	callback := "http://" + e.upstream.srv.Listener.Addr().String() + "/callback"
	e.magicLink(t, testdpop.NewKey(t), "form_post", "code", callback)

	wd.open(e.mailedLink(t, "alice@example.com"))
	wd.click("button[type=submit]")
	wd.waitFor("the form post at the app", func() bool { return e.upstream.lastPost().Get("code") != "" })
	if got := e.upstream.lastPost(); got.Get("access_token") != "" {
		t.Errorf("responseType code posted a token too: %v", got)
	}
}

// TestBrowserBusyState: a sent form's button says it is busy, and a second
// press sends nothing. The page's script runs under its CSP nonce; the test
// holds the navigation back to look at the page as it is while it waits.
func TestBrowserBusyState(t *testing.T) {
	e := startCaddy(t)
	wd := startBrowser(t)
	wd.open(e.base + "/.mailgate/login")
	// Runs after the page's own listener (window comes after document).
	wd.script(`window.sent = []; window.addEventListener("submit", e => { window.sent.push(!e.defaultPrevented); e.preventDefault(); });`)
	wd.typeInto("#email", "alice@example.com")
	wd.click("button[type=submit]")
	state := wd.script(`const b = document.querySelector("button[type=submit]"); return [b.textContent, b.getAttribute("aria-disabled"), getComputedStyle(b).cursor].join("|")`)
	if state != "Sending…|true|progress" {
		t.Errorf("the button after a press: %v", state)
	}
	wd.click("button[type=submit]")
	if sent := fmt.Sprint(wd.script(`return window.sent`)); sent != "[true false]" {
		t.Errorf("two presses would send %v; want only the first", sent)
	}
}
