package caddymodule

import (
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/mailgate/caddy-mailgate/internal/directory"
)

// adminsConfig makes alice the dashboard's only admin, and lets the kiosk
// sign people in with passwords (so that the profile offers a change of
// password) with an account locked after three wrong ones.
func adminsConfig(e *env) siteConfig {
	c := kioskConfig(e)
	c.Mailgate += "\n\t\tadmins alice@example.com"
	return c
}

// TestNoAccessCallbackNamesTheAccount: an app that will not have this
// person sends them to the no-access page, which names the account and
// switches it: a post with the page's token ends this session and leads to
// the login page, which brings the person back to the state's path.
func TestNoAccessCallbackNamesTheAccount(t *testing.T) {
	e := startCaddy(t)
	b := e.browser(t)
	if r := b.get("/.mailgate/no-access-callback?state=%2Fapp"); r.StatusCode != http.StatusSeeOther ||
		r.Header.Get("Location") != "/.mailgate/login?return=%2Fapp" {
		t.Fatalf("without a session: %s %s", r.Status, r.Header.Get("Location"))
	}
	cookie := b.login("alice@example.com", "/")
	r := b.get("/.mailgate/no-access-callback?state=" + url.QueryEscape("/app?x=1"))
	if r.StatusCode != http.StatusForbidden || !strings.Contains(r.body, "You are signed in as alice@example.com") ||
		!strings.Contains(r.body, `name="state" value="/app?x=1"`) {
		t.Fatalf("no-access page: %s\n%s", r.Status, r.body)
	}
	if csp := r.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") ||
		r.Header.Get("Cache-Control") != "no-store" || r.Header.Get("Strict-Transport-Security") == "" {
		t.Errorf("headers: %v", r.Header)
	}
	for lang, want := range map[string]string{
		"nl-BE": "U bent aangemeld als alice@example.com", "nl-NL": "Je bent ingelogd als alice@example.com",
	} {
		if r := b.get("/.mailgate/no-access-callback", "Accept-Language", lang); !strings.Contains(r.body, want) {
			t.Errorf("%s: the page lacks %q:\n%s", lang, want, r.body)
		}
	}
	// Another origin's URL is no way back.
	if r := b.get("/.mailgate/no-access-callback?state=" + url.QueryEscape("https://evil.example/x")); strings.Contains(r.body, "evil.example") {
		t.Fatalf("the page offers a way to another origin:\n%s", r.body)
	}
	// Without the page's token, nothing happens.
	if r := b.post("/.mailgate/no-access-callback", map[string]string{"state": "/app"}); r.StatusCode != http.StatusForbidden {
		t.Fatalf("a post without the form token: %s", r.Status)
	}
	if got := e.sessionStatus(t, cookie); got != http.StatusOK {
		t.Fatalf("the session after a refused post: %d", got)
	}
	r = b.post("/.mailgate/no-access-callback", map[string]string{"state": "/app", "form_token": b.cookie("__Host-mailgate-form")})
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/.mailgate/login?return=%2Fapp" {
		t.Fatalf("switching account: %s %s", r.Status, r.Header.Get("Location"))
	}
	if got := e.sessionStatus(t, cookie); got != http.StatusUnauthorized {
		t.Fatalf("the switched-away session still admits: %d", got)
	}
}

// TestDashboardRefusedToOthers: without a session the dashboard sends to
// the login page and back; signed in as someone not in admins, it is 403
// and lists nobody.
func TestDashboardRefusedToOthers(t *testing.T) {
	e := startCaddyWith(t, adminsConfig)
	b := e.browser(t)
	r := b.get("/.mailgate/_/op-dashboard")
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/.mailgate/login?return=%2F.mailgate%2F_%2Fop-dashboard" {
		t.Fatalf("without a session: %s %s", r.Status, r.Header.Get("Location"))
	}
	b.login("bob@corp.example", "/")
	r = b.get("/.mailgate/_/op-dashboard")
	if r.StatusCode != http.StatusForbidden || !strings.Contains(r.body, "Only the site&#39;s administrators") || strings.Contains(r.body, "alice@") {
		t.Fatalf("a non-admin: %s\n%s", r.Status, r.body)
	}
	// Nor can a non-admin act, with a valid form token of their own.
	r = b.post("/.mailgate/_/op-dashboard/status", map[string]string{
		"id": "anyone", "status": "disabled", "form_token": b.cookie("__Host-mailgate-form"),
	})
	if r.StatusCode != http.StatusForbidden {
		t.Fatalf("a non-admin's disable: %s", r.Status)
	}
}

// TestProfileChangePassword: the profile holds a new password to the
// policy and names the rule broken, counts wrong current passwords as
// failed sign-ins (locking the account after three), and a right change
// ends the person's other sessions while this one goes on.
func TestProfileChangePassword(t *testing.T) {
	e := startCaddyWith(t, adminsConfig)
	const pw = "correct horse battery staple"
	withPassword(t, "dana@corp.example", pw)
	other := e.browser(t)
	if r, out := other.signIn(`{"username":"dana","password":"` + pw + `","clientId":"kiosk"}`); out["next"] != "done" {
		t.Fatalf("sign-in: %s %s", r.Status, r.body)
	}
	otherCookie := other.cookie("__Host-mailgate")
	b := e.browser(t)
	b.login("dana@corp.example", "/")
	if r := b.get("/.mailgate/profile"); !strings.Contains(r.body, "Change your password") {
		t.Fatalf("profile without the change of password:\n%s", r.body)
	}
	change := func(current, next string) response {
		return b.post("/.mailgate/profile/password", map[string]string{
			"current": current, "password": next, "confirm": next, "form_token": b.cookie("__Host-mailgate-form"),
		})
	}
	if r := change(pw, "dana@corp.example"); r.StatusCode != http.StatusBadRequest ||
		!strings.Contains(r.body, "Do not use your own username or email address as your password.") {
		t.Fatalf("own address as password: %s\n%s", r.Status, r.body)
	}
	const fresh = "a fresh sentence for a password"
	if r := change("wrong password number one", fresh); r.StatusCode != http.StatusBadRequest ||
		!strings.Contains(r.body, "The current password is wrong.") {
		t.Fatalf("wrong current password: %s\n%s", r.Status, r.body)
	}
	// The change ends the sessions of earlier seconds (tokens carry whole
	// seconds, see session.Manager.RevokeUser): a second passes.
	clockOffset.Add(int64(time.Second))
	r := change(pw, fresh)
	if r.StatusCode != http.StatusSeeOther {
		t.Fatalf("changing the password: %s\n%s", r.Status, r.body)
	}
	if r := b.get(r.Header.Get("Location")); r.StatusCode != http.StatusOK || !strings.Contains(r.body, "Your password is changed.") {
		t.Fatalf("after the change: %s\n%s", r.Status, r.body)
	}
	if got := e.sessionStatus(t, otherCookie); got != http.StatusUnauthorized {
		t.Errorf("the other session after the change: %d", got)
	}
	if got := e.sessionStatus(t, b.cookie("__Host-mailgate")); got != http.StatusOK {
		t.Errorf("this browser's new session: %d", got)
	}
	// Wrong current passwords lock the account like wrong sign-ins
	// (failed_sign_ins_per_account 3; the right one above forgave the
	// first).
	for i := range 3 {
		if r := change("wrong again", fresh); r.StatusCode != http.StatusBadRequest {
			t.Fatalf("wrong password %d: %s", i+1, r.Status)
		}
	}
	if r := change(fresh, "yet another good sentence"); r.StatusCode != http.StatusTooManyRequests || r.Header.Get("Retry-After") == "" {
		t.Fatalf("after three wrong passwords: %s %v", r.Status, r.Header)
	}
	if _, out := other.signIn(`{"username":"dana","password":"` + fresh + `","clientId":"kiosk"}`); out["next"] == "done" {
		t.Fatal("the sign-in API let a locked account in")
	}
}

// TestAdminsConfig: admins takes user ids and addresses; one that is
// neither is named with its line.
func TestAdminsConfig(t *testing.T) {
	adapt := func(line string) error {
		site := "http://localhost:8080 {\n\tmailgate {\n" + line + "\nbase_url http://localhost:8080\noutbox ./mailgate-outbox\n\t}\n}\n"
		_, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(site), nil)
		return err
	}
	if err := adapt("admins alice@example.com 5b7c3a1e-6c1d-4d1f-9a51-3c1f0e9a2b77"); err != nil {
		t.Fatal(err)
	}
	err := adapt("admins alice@")
	if err == nil || !strings.Contains(err.Error(), `admins: "alice@" is not an email address`) || !strings.HasSuffix(err.Error(), "at Caddyfile:3") {
		t.Fatalf("a bad admin: %v", err)
	}
	if err := adapt("admins"); err == nil {
		t.Fatal("admins without a value was accepted")
	}
}

// TestPagesDocCaddyfile: the snippet of docs/pages.md parses and validates.
func TestPagesDocCaddyfile(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("XDG_DATA_HOME", filepath.Join(dir, "data"))
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(dir, "config"))
	raw, err := os.ReadFile("../docs/pages.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := strings.Split(string(raw), "```caddyfile\n")[1:]
	if len(blocks) == 0 {
		t.Fatal("docs/pages.md has no Caddyfile snippet")
	}
	for _, b := range blocks {
		snippet, _, _ := strings.Cut(b, "```")
		if formatted := string(caddyfile.Format([]byte(snippet))); formatted != snippet {
			t.Errorf("a snippet is not as caddy fmt prints it:\n%s", snippet)
		}
		cfgJSON, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte("http://localhost:8080 {\n"+snippet+"}\n"), nil)
		if err != nil {
			t.Fatalf("the snippet does not parse: %v", err)
		}
		var cfg caddy.Config
		if err := json.Unmarshal(cfgJSON, &cfg); err != nil {
			t.Fatal(err)
		}
		if err := caddy.Validate(&cfg); err != nil {
			t.Errorf("the snippet does not validate: %v", err)
		}
	}
}

// TestProfileWrongPasswordsAtOnce: 50 wrong current passwords posted at
// once from one signed-in browser are counted before any is hashed: as
// many are checked as the account's lock allows (3), and the rest are
// refused 429, on the memory store and on Redis.
func TestProfileWrongPasswordsAtOnce(t *testing.T) {
	eachStore(t, func(t *testing.T, _, storeLines string) {
		e := startCaddyWith(t, func(e *env) siteConfig {
			c := adminsConfig(e)
			c.Mailgate += "\n\t\t" + storeLines
			return c
		})
		withPassword(t, "dana@corp.example", "correct horse battery staple")
		b := e.browser(t)
		b.login("dana@corp.example", "/")
		b.get("/.mailgate/profile")
		// Every post carries the same cookies, as a page submitted from
		// many tabs at once would: not the jar's, which each answer
		// renews.
		token, sessionCookie := b.cookie("__Host-mailgate-form"), b.cookie("__Host-mailgate")
		body := url.Values{
			"current": {"not the password at all"}, "password": {"a fresh sentence for a password"},
			"confirm": {"a fresh sentence for a password"}, "form_token": {token},
		}.Encode()
		client := &http.Client{Transport: b.client.Transport}
		statuses := make([]int, 50)
		atOnce(len(statuses), func(i int) {
			req, _ := http.NewRequest(http.MethodPost, e.base+"/.mailgate/profile/password", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Origin", e.base)
			req.AddCookie(&http.Cookie{Name: "__Host-mailgate", Value: sessionCookie})
			req.AddCookie(&http.Cookie{Name: "__Host-mailgate-form", Value: token})
			resp, err := client.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			statuses[i] = resp.StatusCode
		})
		counts := map[int]int{}
		for _, s := range statuses {
			counts[s]++
		}
		if counts[http.StatusBadRequest] != 3 || counts[http.StatusTooManyRequests] != len(statuses)-3 {
			t.Fatalf("answers to %d wrong passwords at once: %v; want 3 checked, the rest 429", len(statuses), counts)
		}
	})
}

// TestDashboardSendsLinks: an admin sends an invited user their invitation
// again and an active user a password reset, through the email-link flow;
// a second link while one works is refused and not mailed.
func TestDashboardSendsLinks(t *testing.T) {
	e := startCaddyWith(t, adminsConfig)
	ctx := caddy.ActiveContext()
	invited, err := directory.New(ctx.Storage(), "mailgate/default", now).Create(ctx, directory.NewUser{Email: "erin@corp.example"})
	if err != nil {
		t.Fatal(err)
	}
	dana := withPassword(t, "dana@corp.example", "correct horse battery staple")
	admin := e.browser(t)
	admin.login("alice@example.com", "/")
	send := func(id, typ string) string {
		t.Helper()
		admin.get("/.mailgate/_/op-dashboard")
		r := admin.post("/.mailgate/_/op-dashboard/link", map[string]string{
			"id": id, "type": typ, "q": "corp", "form_token": admin.cookie("__Host-mailgate-form"),
		})
		loc, _ := url.Parse(r.Header.Get("Location"))
		if r.StatusCode != http.StatusSeeOther || loc.Path != "/.mailgate/_/op-dashboard" || loc.Query().Get("q") != "corp" {
			t.Fatalf("sending a %s: %s %s", typ, r.Status, r.Header.Get("Location"))
		}
		return loc.Query().Get("note")
	}
	if note := send(invited.ID, "invitation"); note != "dash_sent" || e.mailsTo("erin@corp.example") != 1 ||
		!strings.Contains(e.mailedText(t, "erin@corp.example"), "/.mailgate/account/invite/") {
		t.Fatalf("the invitation: note %q, %d mails", note, e.mailsTo("erin@corp.example"))
	}
	if note := send(dana.ID, "passwordReset"); note != "dash_sent" || e.mailsTo("dana@corp.example") != 1 {
		t.Fatalf("the reset: note %q, %d mails", note, e.mailsTo("dana@corp.example"))
	}
	if note := send(dana.ID, "passwordReset"); note != "dash_link_exists" || e.mailsTo("dana@corp.example") != 1 {
		t.Fatalf("a second reset: note %q, %d mails", note, e.mailsTo("dana@corp.example"))
	}
	if note := send(dana.ID, "invitation"); note != "dash_link_exists" && note != "dash_signed_up" {
		t.Fatalf("an invitation to a signed-up user: note %q", note)
	}
	if r := admin.get("/.mailgate/_/op-dashboard?note=dash_link_exists&q=corp"); !strings.Contains(r.body, "already has a link that works") {
		t.Fatalf("the dashboard does not show the note:\n%s", r.body)
	}
	if r := admin.get("/.mailgate/_/op-dashboard?note=made+up+words"); strings.Contains(r.body, "made up words") {
		t.Fatal("the dashboard shows words from its URL")
	}
}

// TestDashboardShowsRecentSignIns: the dashboard lists the newest
// sign-ins, newest first, with how each person signed in; a search narrows
// them to the users it matches.
func TestDashboardShowsRecentSignIns(t *testing.T) {
	e := startCaddyWith(t, adminsConfig)
	e.browser(t).login("bob@corp.example", "/")
	clockOffset.Add(int64(2 * time.Second))
	admin := e.browser(t)
	admin.login("alice@example.com", "/")
	r := admin.get("/.mailgate/_/op-dashboard")
	recent := r.body[strings.Index(r.body, `id="recent"`):]
	alice, bob := strings.Index(recent, "alice@example.com"), strings.Index(recent, "bob@corp.example")
	if r.StatusCode != http.StatusOK || alice < 0 || bob < 0 || alice > bob ||
		strings.Count(recent[:strings.Index(recent, "</ul>")], "With an emailed link on") != 2 {
		t.Fatalf("recent sign-ins, newest first: %s\n%s", r.Status, r.body)
	}
	r = admin.get("/.mailgate/_/op-dashboard?q=bob")
	recent = r.body[strings.Index(r.body, `id="recent"`):strings.Index(r.body, "</ul>")]
	if strings.Contains(recent, "alice@example.com") || !strings.Contains(recent, "bob@corp.example") {
		t.Fatalf("a search for bob lists others' sign-ins:\n%s", r.body)
	}
}
