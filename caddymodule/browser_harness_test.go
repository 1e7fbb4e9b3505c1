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
