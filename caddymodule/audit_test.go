package caddymodule

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mailgate/caddy-mailgate/internal/testdpop"
)

// logLine is one line of Caddy's JSON log.
type logLine map[string]any

// readLog reads the JSON log file name in the test's folder.
func (e *env) readLog(t *testing.T, name string) (raw string, lines []logLine) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(e.dir, name))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		var line logLine
		if json.Unmarshal([]byte(l), &line) == nil {
			lines = append(lines, line)
		}
	}
	return string(b), lines
}

// find returns the lines of logger with message msg whose fields include
// every one of want.
func find(lines []logLine, logger, msg string, want map[string]any) []logLine {
	var found []logLine
next:
	for _, l := range lines {
		if l["logger"] != logger || l["msg"] != msg {
			continue
		}
		for k, v := range want {
			if l[k] != v {
				continue next
			}
		}
		found = append(found, l)
	}
	return found
}

// TestAuditTrailRecordsAJourneyWithoutSecrets: a login by mailed link, a
// wrong then a right mailed code, a wrong then a right password, a request
// for an address outside the allow rules, one over mails_per_address, a
// dead link and a sign-out each leave an audit line
// (http.handlers.mailgate.audit) with the user id, method and client IP,
// and the same as a Caddy event (seen in the events app's debug log); no
// line of Caddy's log at DEBUG holds a secret the journey handled, or the
// address of the account nobody has.
func TestAuditTrailRecordsAJourneyWithoutSecrets(t *testing.T) {
	e := startCaddyWith(t, func(e *env) siteConfig {
		c := kioskConfig(e)
		c.Global = e.logBlock("caddy.log", "DEBUG")
		c.Limits = `limits {
			mails_per_address 3 1m
			requests_per_ip 1000000 1m
			failures_per_ip 1000000 1m
			failed_sign_ins_per_account 10 15m
		}`
		return c
	})
	var secrets []string
	keep := func(what, s string) {
		t.Helper()
		if s == "" {
			t.Fatalf("the journey handled no %s", what)
		}
		secrets = append(secrets, s)
	}

	// By mailed link (alice's first mail), then the link again, dead.
	b := e.browser(t)
	keep("session cookie", b.login("alice@example.com", "/"))
	keep("form token", b.cookie("__Host-mailgate-form"))
	link := e.mailedLink(t, "alice@example.com")
	keep("link ticket", mustURL(link).Query().Get("t"))
	if r := e.browser(t).confirm(link); r.StatusCode != http.StatusGone {
		t.Fatalf("the used link: %s", r.Status)
	}

	// By mailed code (her second), a wrong one first.
	c := e.browser(t)
	c.requestCode("alice@example.com", "/")
	keep("code cookie", c.cookie("__Host-mailgate-code"))
	code := e.mailedCode(t, "alice@example.com")
	wrong := "000000"
	if code == wrong {
		wrong = "111111"
	}
	c.enterCode(wrong, "/")
	if r := c.enterCode(code, "/"); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("the right code: %s", r.Status)
	}
	keep("code session cookie", c.cookie("__Host-mailgate"))

	// By password, a wrong one first.
	const pw = "correct horse battery staple"
	keep("password", pw)
	dana := withPassword(t, "dana@corp.example", pw)
	p := e.browser(t)
	p.signIn(`{"username":"dana","password":"wrong horse battery staple","clientId":"kiosk"}`)
	if r, _ := p.signIn(`{"username":"dana","password":"` + pw + `","clientId":"kiosk"}`); r.StatusCode != http.StatusOK {
		t.Fatalf("the right password: %s", r.Status)
	}
	keep("password session cookie", p.cookie("__Host-mailgate"))

	// An address nobody has, outside the rules; then alice over her limit
	// (her third mail goes, the fourth request mails nothing).
	e.browser(t).requestLink("mallory@evil.example", "/")
	e.browser(t).requestLink("alice@example.com", "/")
	e.browser(t).requestLink("alice@example.com", "/")

	// Alice signs out.
	b.get("/.mailgate/logout")
	if r := b.post("/.mailgate/logout", map[string]string{"form_token": b.cookie("__Host-mailgate-form")}); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-out: %s", r.Status)
	}
	settleDeliveries()

	raw, lines := e.readLog(t, "caddy.log")
	alice := aliceID(t, lines)
	const audit = "http.handlers.mailgate.audit"
	ip := "127.0.0.1"
	for _, w := range []struct {
		msg    string
		fields map[string]any
		n      int
	}{
		{"login_started", map[string]any{"method": "link"}, 2},
		{"login_started", map[string]any{"method": "code"}, 1},
		{"login_completed", map[string]any{"method": "link", "user_id": alice}, 1},
		{"login_completed", map[string]any{"method": "code", "user_id": alice}, 1},
		{"login_completed", map[string]any{"method": "password", "user_id": dana.ID}, 1},
		{"login_failed", map[string]any{"method": "link", "reason": "link_dead"}, 2},
		{"login_failed", map[string]any{"method": "code", "reason": "wrong_code"}, 1},
		{"login_failed", map[string]any{"method": "password", "reason": "bad_credentials"}, 1},
		{"login_refused", map[string]any{"method": "link", "domain": "evil.example"}, 1},
		{"limit_hit", map[string]any{"limit": "mails_per_address"}, 1},
		{"signed_out", map[string]any{"user_id": alice, "everywhere": false}, 1},
	} {
		w.fields["realm"] = "default"
		w.fields["client_ip"] = ip
		if got := find(lines, audit, w.msg, w.fields); len(got) != w.n {
			t.Errorf("%d audit lines %s %v, want %d", len(got), w.msg, w.fields, w.n)
		}
		// The same, emitted as a Caddy event, which the events app logs
		// at debug with its data.
		var events int
		for _, l := range find(lines, "events", "event", map[string]any{"name": "mailgate." + w.msg}) {
			data, _ := l["data"].(map[string]any)
			ok := l["origin"] == "http.handlers.mailgate"
			for k, v := range w.fields {
				ok = ok && data[k] == v
			}
			if ok {
				events++
			}
		}
		if events != w.n {
			t.Errorf("%d Caddy events mailgate.%s %v, want %d", events, w.msg, w.fields, w.n)
		}
	}
	for _, s := range secrets {
		if strings.Contains(raw, s) {
			t.Errorf("Caddy's log holds a secret the journey handled: %q", s)
		}
	}
	// The code is six digits, which a timestamp may hold by chance: it is
	// looked for as a number of its own.
	if regexp.MustCompile(`(^|[^0-9.])` + code + `([^0-9]|$)`).MatchString(raw) {
		t.Errorf("Caddy's log holds the mailed code %s", code)
	}
	if strings.Contains(raw, "mallory") {
		t.Error("Caddy's log names the address nobody has")
	}
}

// aliceID is the user id the log's login line gives alice's first login.
func aliceID(t *testing.T, lines []logLine) string {
	t.Helper()
	got := find(lines, "http.handlers.mailgate.audit", "login_completed", map[string]any{"method": "link"})
	if len(got) == 0 {
		t.Fatal("no audit line for the login by link")
	}
	id, _ := got[0]["user_id"].(string)
	return id
}

// TestAuditTrailNamesTheAppOfAnAPICall: a login mail an app asked for by
// the magic-link API is recorded with the app's client id beside the
// caller's IP, and one asked for on the login page with neither client.
func TestAuditTrailNamesTheAppOfAnAPICall(t *testing.T) {
	e := startCaddyWith(t, func(e *env) siteConfig {
		return siteConfig{Global: e.logBlock("caddy.log", "")}
	})
	e.browser(t).login("alice@example.com", "/")
	e.magicLink(t, testdpop.NewKey(t), "query", "code", "https://shop.example.com/callback")
	settleDeliveries()

	_, lines := e.readLog(t, "caddy.log")
	const audit = "http.handlers.mailgate.audit"
	started := map[string]any{"method": "link", "client_ip": "127.0.0.1"}
	byApp := find(lines, audit, "login_started", map[string]any{"method": "link", "client_ip": "127.0.0.1", "client": "shop"})
	if len(byApp) != 1 {
		t.Fatalf("%d audit lines of the magic-link call naming shop, want 1", len(byApp))
	}
	var byPage int
	for _, l := range find(lines, audit, "login_started", started) {
		if _, ok := l["client"]; !ok {
			byPage++
		}
	}
	if byPage != 1 {
		t.Fatalf("%d audit lines of the login page's request without a client, want 1", byPage)
	}
}

// TestKeyRotationReachesTheAuditTrailAndMetrics: a round of the key upkeep
// once key_rotation has passed rotates the ring, which the audit trail
// records with the new key's id, /metrics counts, and the key age gauge
// shows as a ring just written.
func TestKeyRotationReachesTheAuditTrailAndMetrics(t *testing.T) {
	e := startCaddyWith(t, func(e *env) siteConfig {
		return siteConfig{Global: e.logBlock("caddy.log", ""), Mailgate: "key_rotation 1h"}
	})
	// The ring was last written two days ago, as its storage says.
	ringFile := filepath.Join(e.dir, "storage", "mailgate", "default", "keys.json")
	old := time.Now().Add(-48 * time.Hour)
	if err := os.Chtimes(ringFile, old, old); err != nil {
		t.Fatal(err)
	}
	before := e.scrape(t)
	label := `realm="default"`
	if age, _ := metricValue(before, "mailgate_signing_key_age_seconds", label); age < (48 * time.Hour).Seconds() {
		t.Fatalf("key age %vs of a ring written two days ago", age)
	}
	var r *realm
	realms.Range(func(key, v any) bool {
		if key == "mailgate/default" {
			r = v.(*realm)
		}
		return r == nil
	})
	if r == nil {
		t.Fatal("no running realm default")
	}
	// Within key_rotation nothing rotates; past it, the next round does.
	r.keepKeys(context.Background())
	if n := metricDelta(before, e.scrape(t), "mailgate_key_rotations_total", label); n != 0 {
		t.Fatalf("%v rotations within key_rotation", n)
	}
	const ahead = 2 * time.Hour
	clockOffset.Store(int64(ahead))
	defer clockOffset.Store(0)
	r.keepKeys(context.Background())

	after := e.scrape(t)
	if n := metricDelta(before, after, "mailgate_key_rotations_total", label); n != 1 {
		t.Errorf("mailgate_key_rotations_total went up by %v, want 1", n)
	}
	// Mailgate's clock runs ahead by the offset: a ring written just now
	// is that old by it.
	if age, _ := metricValue(after, "mailgate_signing_key_age_seconds", label); age > (ahead + time.Minute).Seconds() {
		t.Errorf("key age %vs after the rotation, want at most %v", age, ahead+time.Minute)
	}
	_, lines := e.readLog(t, "caddy.log")
	rotated := find(lines, "http.handlers.mailgate.audit", "key_rotated", map[string]any{"realm": "default"})
	if len(rotated) != 1 {
		t.Fatalf("%d audit lines key_rotated, want 1", len(rotated))
	}
	if kid, _ := rotated[0]["kid"].(string); kid == "" || !strings.Contains(e.browser(t).get("/.mailgate/jwks.json").body, kid) {
		t.Errorf("the audit line's kid %q is not published in the JWKS", kid)
	}
}

// metricDelta is how much the series name with labels went up between two
// scrapes.
func metricDelta(before, after, name string, labels ...string) float64 {
	was, _ := metricValue(before, name, labels...)
	now, _ := metricValue(after, name, labels...)
	return now - was
}
