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

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/certmagic"
	"github.com/spf13/cobra"

	"github.com/mailgate/caddy-mailgate/internal/directory"
	"github.com/mailgate/caddy-mailgate/internal/password"
	"github.com/mailgate/caddy-mailgate/internal/redistest"
	"github.com/mailgate/caddy-mailgate/internal/testdpop"
)

// hrSecret is the secret of the test's email-link client "hr".
const hrSecret = "hr-secret-0123456789ab"

// hrPrefix is the one urlPrefix "hr" may ask for: its own page.
const hrPrefix = "https://hr.example.com/welcome?invitation="

// hrClient is a client with the email_link scope and one custom prefix.
const hrClient = `client hr {
			name "The HR Desk"
			secret ` + hrSecret + `
			email_link_prefix ` + hrPrefix + `
			scopes email_link
		}`

// linkEnv is a Caddy with client hr, and the app's side of seed 001.
type linkEnv struct {
	*env
	key   testdpop.Key
	token string
	users *directory.Directory
}

func startLinkCaddy(t *testing.T, extra string) *linkEnv {
	t.Helper()
	e := startCaddyWith(t, func(*env) siteConfig { return siteConfig{Mailgate: strings.TrimSpace(hrClient + "\n\t\t" + extra)} })
	le := &linkEnv{env: e, key: testdpop.NewKey(t)}
	le.token = le.accessToken(t, "hr", hrSecret)
	// The file storage the Caddyfile names: users are made as an app
	// would through the users API, which is not this branch's.
	le.users = directory.New(&certmagic.FileStorage{Path: e.dir + "/storage"}, "mailgate/default", time.Now)
	return le
}

// accessToken is a DPoP-bound token of client.
func (e *linkEnv) accessToken(t *testing.T, client, secret string) string {
	t.Helper()
	r, tok := e.clientCredentials(t, client, secret, "", e.key.Proof(t, "POST", e.base+"/.mailgate/oauth/token", "", now()))
	if r.StatusCode != http.StatusOK {
		t.Fatalf("token for %s: %s %+v", client, r.Status, tok)
	}
	return tok.AccessToken
}

func (e *linkEnv) user(t *testing.T, email, locale string) directory.User {
	t.Helper()
	u, err := e.users.Create(context.Background(), directory.NewUser{Email: email, Locale: locale})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// call sends a seed 001 call with the DPoP-bound token (none when token is
// empty) and returns the answer and its JSON, if any.
func (e *linkEnv) call(t *testing.T, method, path, token, body string) (response, map[string]any) {
	t.Helper()
	u := e.base + path
	req, _ := http.NewRequest(method, u, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "DPoP "+token)
		req.Header.Set("DPoP", e.key.Proof(t, method, u, token, now()))
	}
	r := e.browser(t).do(req)
	var out map[string]any
	if r.body != "" {
		if err := json.Unmarshal([]byte(r.body), &out); err != nil {
			t.Fatalf("%s %s answered %s with %q", method, path, r.Status, r.body)
		}
	}
	return r, out
}

func linkPath(id string) string { return "/.mailgate/api/v1/users/" + id + "/email-link" }

// create asks for a link and requires 201.
func (e *linkEnv) create(t *testing.T, id, body string) {
	t.Helper()
	if r, out := e.call(t, "POST", linkPath(id), e.token, body); r.StatusCode != http.StatusCreated {
		t.Fatalf("creating %s for %s: %s %v", body, id, r.Status, out)
	}
}

// mailedLinks are the links in the text part of the newest mail to to: the
// link, then the revoke link.
func (e *linkEnv) mailedLinks(t *testing.T, to string) (link, revoke string) {
	t.Helper()
	links := regexp.MustCompile(`https://\S+`).FindAllString(e.mailedText(t, to), -1)
	if len(links) != 2 {
		t.Fatalf("the mail to %s has links %q, want the link and the revoke link", to, links)
	}
	return links[0], links[1]
}

// ticketOf is the ticket at the end of a link with the prefix.
func ticketOf(t *testing.T, link, prefix string) string {
	t.Helper()
	x, ok := strings.CutPrefix(link, prefix)
	if !ok || x == "" {
		t.Fatalf("link %q does not start with %q", link, prefix)
	}
	return x
}

// TestEmailLinkContractInCaddy is seed 001 through the real Caddy: every
// status and message, one link per user, a new one after withdrawal and
// after use, and the verify endpoint.
func TestEmailLinkContractInCaddy(t *testing.T) {
	e := startLinkCaddy(t, "")
	ivy := e.user(t, "ivy@corp.example", "nl-BE")
	bob := e.user(t, "bob@corp.example", "")
	if _, err := e.users.SignUp(context.Background(), bob.ID); err != nil {
		t.Fatal(err)
	}
	wantError := func(what string, r response, out map[string]any, status int, msg string) {
		t.Helper()
		if r.StatusCode != status || out["error"] != msg {
			t.Errorf("%s: %s %v, want %d %q", what, r.Status, out, status, msg)
		}
	}
	wantStatus := func(what string, r response, status int, contains string) {
		t.Helper()
		if r.StatusCode != status || !strings.Contains(r.body, contains) {
			t.Errorf("%s: %s %s, want %d with %q", what, r.Status, r.body, status, contains)
		}
	}

	// 401 without or with a bad token, 403 for a client without the scope.
	r, _ := e.call(t, "POST", linkPath(ivy.ID), "", `{"type":"invitation"}`)
	wantStatus("no token", r, 401, `"error":`)
	if !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "DPoP") {
		t.Errorf("401 without a challenge: %v", r.Header)
	}
	r, _ = e.call(t, "POST", linkPath(ivy.ID), "not-a-token", `{"type":"invitation"}`)
	wantStatus("bad token", r, 401, "invalid or expired")
	r, _ = e.call(t, "POST", linkPath(ivy.ID), e.accessToken(t, "shop", shopSecret), `{"type":"invitation"}`)
	wantStatus("no email_link scope", r, 403, "email_link")

	// 404 for an unknown user, in the seed's words.
	r, out := e.call(t, "POST", linkPath("cdc891da-51ea-11ec-bf63-0242ac130002"), e.token, `{"type":"invitation"}`)
	wantError("unknown user", r, out, 404, "User with id: cdc891da-51ea-11ec-bf63-0242ac130002 cannot be found.")

	// 422 for invalid content, never 500.
	for _, c := range []struct{ name, body, contains string }{
		{"not JSON", `type=invitation`, "Invalid request"},
		{"no type", `{}`, "type must be invitation or passwordReset"},
		{"unknown type", `{"type":"magic"}`, "type must be invitation or passwordReset"},
		{"unknown field", `{"type":"invitation","urlprefix":"x"}`, "Invalid request"},
		{"urlPrefix not allowed", `{"type":"invitation","urlPrefix":"https://evil.example/?x="}`, "email_link_prefix"},
		{"urlPrefix almost allowed", `{"type":"invitation","urlPrefix":"` + hrPrefix + `x"}`, "email_link_prefix"},
		{"bad locale", `{"type":"invitation","locale":"xx-XX"}`, "Invalid request"},
	} {
		r, _ := e.call(t, "POST", linkPath(ivy.ID), e.token, c.body)
		wantStatus(c.name, r, 422, c.contains)
	}
	// 422 for a type the user's state does not allow.
	r, _ = e.call(t, "POST", linkPath(bob.ID), e.token, `{"type":"invitation"}`)
	wantStatus("invitation after signup", r, 422, "User with id: "+bob.ID+" has already completed the signup.")
	r, _ = e.call(t, "POST", linkPath(ivy.ID), e.token, `{"type":"passwordReset"}`)
	wantStatus("reset before signup", r, 422, "User with id: "+ivy.ID+" has not completed the signup.")
	if n := e.mailsTo("ivy@corp.example") + e.mailsTo("bob@corp.example"); n != 0 {
		t.Fatalf("%d mails for refused calls", n)
	}

	// 201 with Location; the mail names site and sender, in the user's locale.
	r, _ = e.call(t, "POST", linkPath(ivy.ID), e.token, `{"type":"invitation"}`)
	if r.StatusCode != 201 || r.Header.Get("Location") != e.base+linkPath(ivy.ID) {
		t.Fatalf("create: %s, Location %q", r.Status, r.Header.Get("Location"))
	}
	subject, text := e.mailed(t, "ivy@corp.example")
	if subject != "U bent uitgenodigd voor Example" || !strings.Contains(text, "The HR Desk heeft u") || !strings.Contains(text, "7 dagen") {
		t.Errorf("invitation mail %q:\n%s", subject, text)
	}
	first, _ := e.mailedLinks(t, "ivy@corp.example")
	ticketOf(t, first, e.base+"/.mailgate/account/invite/?x=")

	// 422 while it is live, in the seed's words; GET shows it.
	r, out = e.call(t, "POST", linkPath(ivy.ID), e.token, `{"type":"invitation"}`)
	wantError("second link", r, out, 422, "User with id: "+ivy.ID+" already has an email-link.")
	r, out = e.call(t, "GET", linkPath(ivy.ID), e.token, "")
	if r.StatusCode != 200 || out["type"] != "invitation" || out["userId"] != ivy.ID || out["expiresAt"] == nil {
		t.Errorf("GET: %s %v", r.Status, out)
	}

	// Withdrawn: 204, then 404, the link dead, and a new one may be made,
	// here to the app's own page in another locale.
	if r, _ := e.call(t, "DELETE", linkPath(ivy.ID), e.token, ""); r.StatusCode != 204 {
		t.Fatalf("DELETE: %s", r.Status)
	}
	r, out = e.call(t, "GET", linkPath(ivy.ID), e.token, "")
	wantError("GET after DELETE", r, out, 404, "User with id: "+ivy.ID+" has no email-link.")
	r, out = e.call(t, "DELETE", linkPath(ivy.ID), e.token, "")
	wantError("DELETE twice", r, out, 404, "User with id: "+ivy.ID+" has no email-link.")
	if r := e.browser(t).get(mustURL(first).RequestURI()); r.StatusCode != http.StatusGone {
		t.Errorf("a withdrawn invitation's page: %s", r.Status)
	}
	e.create(t, ivy.ID, `{"type":"invitation","urlPrefix":"`+hrPrefix+`","locale":"en-GB"}`)
	custom, _ := e.mailedLinks(t, "ivy@corp.example")
	ticket := ticketOf(t, custom, hrPrefix)
	if _, text := e.mailed(t, "ivy@corp.example"); !strings.Contains(text, "The HR Desk invited you") {
		t.Errorf("the request's locale was not the mail's:\n%s", text)
	}

	// Verify: 200 once, then 404, one answer for unknown, used and withdrawn.
	verify := "/.mailgate/api/v1/email-link/verify"
	r, out = e.call(t, "POST", verify, e.token, `{"ticket":"`+ticket+`"}`)
	if r.StatusCode != 200 || out["userId"] != ivy.ID || out["type"] != "invitation" {
		t.Fatalf("verify: %s %v", r.Status, out)
	}
	for _, tk := range []string{ticket, "unknown-ticket", ticketOf(t, first, e.base+"/.mailgate/account/invite/?x=")} {
		r, out = e.call(t, "POST", verify, e.token, `{"ticket":"`+tk+`"}`)
		wantError("verify "+tk, r, out, 404, "The ticket cannot be found.")
	}
	r, _ = e.call(t, "POST", verify, e.token, `{}`)
	wantStatus("verify without a ticket", r, 422, "ticket is required")

	// Used: the invitation completed the signup, so now a reset fits.
	if u, _ := e.users.ByID(context.Background(), ivy.ID); u.Status != directory.StatusActive || u.SignedUp.IsZero() {
		t.Errorf("after the verified invitation: %+v", u)
	}
	r, _ = e.call(t, "POST", linkPath(ivy.ID), e.token, `{"type":"invitation"}`)
	wantStatus("invitation after the verified one", r, 422, "has already completed the signup")
	e.create(t, ivy.ID, `{"type":"passwordReset"}`)
	if subject, text := e.mailed(t, "ivy@corp.example"); subject != "Kies een nieuw wachtwoord voor Example" || !strings.Contains(text, "1 uur") {
		t.Errorf("reset mail %q:\n%s", subject, text)
	}

	// 405 in the seed's shape.
	r, out = e.call(t, "PUT", linkPath(ivy.ID), e.token, "")
	if r.StatusCode != 405 || r.Header.Get("Allow") == "" || out["error"] == nil {
		t.Errorf("PUT: %s %v %v", r.Status, r.Header, out)
	}
	r, _ = e.call(t, "GET", verify, e.token, "")
	if r.StatusCode != 405 || r.Header.Get("Allow") != "POST" {
		t.Errorf("GET verify: %s %v", r.Status, r.Header)
	}
}

// TestEmailLinkVerifyLimited: wrong tickets count against the caller's IP
// before they are looked up, and over the limit the answer is the seed's
// shape with 429 and Retry-After.
func TestEmailLinkVerifyLimited(t *testing.T) {
	e := startCaddyWith(t, func(*env) siteConfig {
		return siteConfig{Mailgate: hrClient, Limits: `limits {
			failures_per_ip 3 1m
		}`}
	})
	le := &linkEnv{env: e, key: testdpop.NewKey(t)}
	le.token = le.accessToken(t, "hr", hrSecret)
	for i := range 4 {
		r, out := le.call(t, "POST", "/.mailgate/api/v1/email-link/verify", le.token, `{"ticket":"guess"}`)
		switch {
		case i < 3 && r.StatusCode != 404:
			t.Fatalf("guess %d: %s %v", i, r.Status, out)
		case i == 3 && (r.StatusCode != 429 || r.Header.Get("Retry-After") == "" || !strings.Contains(out["error"].(string), "Too many")):
			t.Fatalf("guess over the limit: %s %v %v", r.Status, r.Header, out)
		}
	}
}

// TestEmailLinkPagesInCaddy: the invitation page consumes nothing on GET
// or HEAD (mail scanners), its button signs the person in on the site; a
// used link says what to do; the revoke link ends a link.
func TestEmailLinkPagesInCaddy(t *testing.T) {
	e := startLinkCaddy(t, "")
	ivy := e.user(t, "ivy@corp.example", "")
	e.create(t, ivy.ID, `{"type":"invitation"}`)
	link, _ := e.mailedLinks(t, "ivy@corp.example")
	x := ticketOf(t, link, e.base+"/.mailgate/account/invite/?x=")

	scanner := e.browser(t)
	for range 2 {
		if r := scanner.get(mustURL(link).RequestURI()); r.StatusCode != 200 ||
			!strings.Contains(r.body, "The HR Desk invited i•••y@corp.example to Example.") ||
			r.Header.Get("Cache-Control") != "no-store" || !strings.Contains(r.Header.Get("Content-Security-Policy"), "form-action 'self'") {
			t.Fatalf("invite page: %s %v\n%s", r.Status, r.Header, r.body)
		}
	}
	head, _ := http.NewRequest(http.MethodHead, link, nil)
	if r := scanner.do(head); r.StatusCode != 200 {
		t.Fatalf("HEAD: %s", r.Status)
	}
	if r, out := e.call(t, "GET", linkPath(ivy.ID), e.token, ""); r.StatusCode != 200 {
		t.Fatalf("the scanner used the link up: %s %v", r.Status, out)
	}

	person := e.browser(t)
	person.get(mustURL(link).RequestURI())
	r := person.post("/.mailgate/account/invite/", map[string]string{"x": x, "form_token": person.cookie("__Host-mailgate-form")})
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/" || person.cookie("__Host-mailgate") == "" {
		t.Fatalf("accepting: %s %v\n%s", r.Status, r.Header, r.body)
	}
	if r := person.get("/"); r.StatusCode != 200 || r.body != "hello ivy@corp.example" {
		t.Fatalf("the site after accepting: %s %q", r.Status, r.body)
	}
	if u, _ := e.users.ByID(context.Background(), ivy.ID); u.Status != directory.StatusActive {
		t.Errorf("after accepting the user is %s", u.Status)
	}

	// Used: the page says so and how to go on, in the form of a sign-in.
	r = person.get(mustURL(link).RequestURI())
	if r.StatusCode != http.StatusGone || !strings.Contains(r.body, "This link no longer works") ||
		!strings.Contains(r.body, "If you accepted it already, just sign in") || !strings.Contains(r.body, `action="/.mailgate/login/email"`) {
		t.Fatalf("a used invitation: %s\n%s", r.Status, r.body)
	}
	r = person.post("/.mailgate/account/invite/", map[string]string{"x": x, "form_token": person.cookie("__Host-mailgate-form")})
	if r.StatusCode != http.StatusGone {
		t.Fatalf("accepting twice: %s", r.Status)
	}

	// The revoke link: a GET shows a button and ends nothing; the POST ends
	// the link, after which it is dead and a new one may be sent.
	e.create(t, ivy.ID, `{"type":"passwordReset"}`)
	reset, revoke := e.mailedLinks(t, "ivy@corp.example")
	if !strings.HasPrefix(revoke, e.base+"/.mailgate/account/revoke/?x=") {
		t.Fatalf("revoke link %q", revoke)
	}
	other := e.browser(t)
	if r := other.get(mustURL(revoke).RequestURI()); r.StatusCode != 200 || !strings.Contains(r.body, "Cancel the link") {
		t.Fatalf("revoke page: %s\n%s", r.Status, r.body)
	}
	if r := other.get(mustURL(reset).RequestURI()); r.StatusCode != 200 {
		t.Fatalf("the revoke page's GET ended the link: %s", r.Status)
	}
	r = other.post("/.mailgate/account/revoke/", map[string]string{
		"x": ticketOf(t, revoke, e.base+"/.mailgate/account/revoke/?x="), "form_token": other.cookie("__Host-mailgate-form"),
	})
	if r.StatusCode != 200 || !strings.Contains(r.body, "The link is cancelled") {
		t.Fatalf("revoking: %s\n%s", r.Status, r.body)
	}
	if r := other.get(mustURL(reset).RequestURI()); r.StatusCode != http.StatusGone || !strings.Contains(r.body, "Ask for a new one") {
		t.Fatalf("a revoked reset link: %s\n%s", r.Status, r.body)
	}
	if r, _ := e.call(t, "GET", linkPath(ivy.ID), e.token, ""); r.StatusCode != 404 {
		t.Fatalf("a revoked link is still live: %s", r.Status)
	}
	e.create(t, ivy.ID, `{"type":"passwordReset"}`)
}

// TestPasswordResetEndsOtherSessions: a reset signs the person in where
// they reset, and out everywhere else.
func TestPasswordResetEndsOtherSessions(t *testing.T) {
	e := startLinkCaddy(t, "")
	laptop := e.browser(t)
	laptop.login("alice@example.com", "/")
	if r := laptop.get("/"); r.StatusCode != 200 {
		t.Fatalf("the laptop is not signed in: %s", r.Status)
	}
	alice, err := e.users.ByEmail(context.Background(), "alice@example.com")
	if err != nil {
		t.Fatal(err)
	}
	// Sessions carry their issue time in whole seconds; the laptop's must
	// be of an earlier second than the reset. mailgate's clock is moved,
	// not waited for.
	clockOffset.Add(int64(time.Second))

	e.create(t, alice.ID, `{"type":"passwordReset"}`)
	link, _ := e.mailedLinks(t, "alice@example.com")
	x := ticketOf(t, link, e.base+"/.mailgate/account/pwreset/?x=")
	phone := e.browser(t)
	if r := phone.get(mustURL(link).RequestURI()); r.StatusCode != 200 || !strings.Contains(r.body, "a•••e@example.com") {
		t.Fatalf("reset page: %s\n%s", r.Status, r.body)
	}
	post := func(pw, confirm string) response {
		return phone.post("/.mailgate/account/pwreset/", map[string]string{
			"x": x, "password": pw, "confirm": confirm, "form_token": phone.cookie("__Host-mailgate-form"),
		})
	}
	if r := post("short", "short"); r.StatusCode != 400 || !strings.Contains(r.body, "at least 15 characters") {
		t.Fatalf("a short password: %s\n%s", r.Status, r.body)
	}
	if r := post("123456789987654321", "123456789987654321"); r.StatusCode != 400 || !strings.Contains(r.body, "common in data breaches") {
		t.Fatalf("a common password: %s\n%s", r.Status, r.body)
	}
	if r := post("a long new password", "a long new password"); r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/" {
		t.Fatalf("resetting: %s\n%s", r.Status, r.body)
	}
	if r := phone.get("/"); r.StatusCode != 200 {
		t.Fatalf("the phone is not signed in after the reset: %s", r.Status)
	}
	if r := laptop.get("/"); r.StatusCode != http.StatusFound {
		t.Fatalf("the laptop is still signed in after the reset: %s", r.Status)
	}
	u, _ := e.users.ByID(context.Background(), alice.ID)
	if h, err := password.Parse(u.PasswordHash); err != nil || !h.Matches("a long new password") || !strings.HasPrefix(u.PasswordHash, "$argon2id$") {
		t.Fatalf("the new password was not stored as argon2id: %v", err)
	}
}

// TestEmailLinkCaddyfile: the email_links block and email_link_prefix are
// read, and bad values are refused with the line.
func TestEmailLinkCaddyfile(t *testing.T) {
	parse := func(body string) (*Mailgate, error) {
		m := new(Mailgate)
		return m, m.UnmarshalCaddyfile(caddyfile.NewTestDispenser("mailgate {\nbase_url https://app.example.com\noutbox /tmp/x\n" + body + "\n}"))
	}
	m, err := parse("email_links {\ninvitation_ttl 14d\npassword_reset_ttl 30m\n}\n" +
		"client a {\nsecret 0123456789abcdefgh\nemail_link_prefix https://a.example/?i= https://a.example/?r=\nscopes email_link\n}")
	if err != nil {
		t.Fatal(err)
	}
	if time.Duration(m.EmailLinks.InvitationTTL) != 14*24*time.Hour || time.Duration(m.EmailLinks.PasswordResetTTL) != 30*time.Minute ||
		len(m.Clients[0].EmailLinkPrefixes) != 2 {
		t.Fatalf("parsed %+v %+v", m.EmailLinks, m.Clients[0])
	}
	for _, c := range []struct{ body, want string }{
		{"email_links {\ninvitation_ttl 60d\n}", "invitation_ttl 1440h0m0s: must be between 1h and 720h"},
		{"email_links {\npassword_reset_ttl 1m\n}", "password_reset_ttl 1m0s: must be between 5m and 24h"},
		{"email_links {\ninvite_ttl 1h\n}", `unknown subdirective "invite_ttl"`},
		{"client a {\nsecret 0123456789abcdefgh\nemail_link_prefix http://a.example/?i=\n}", "email_link_prefix"},
	} {
		if _, err := parse(c.body); err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "Testfile:") {
			t.Errorf("%q: %v; want %q with the line", c.body, err, c.want)
		}
	}
}

// runUsers runs `caddy mailgate users <args>` with the commands this file's
// feature adds, as cobra parses them.
func runUsers(t *testing.T, args ...string) error {
	t.Helper()
	users := &cobra.Command{Use: "users", SilenceUsage: true, SilenceErrors: true}
	addLinkCommands(users)
	users.SetArgs(args)
	return users.Execute()
}

// TestLinkCommands: `users invite` and `users reset` on the Caddyfile of a
// running Caddy that shares a real Redis with them: the mail arrives with
// a link the server accepts; the rules and the memory store are refused
// with what to do instead.
func TestLinkCommands(t *testing.T) {
	redis := redistest.Start(t)
	e := startLinkCaddy(t, redisStore(redis.Addr()))
	site := siteConfig{Mailgate: strings.TrimSpace(hrClient + "\n\t\t" + redisStore(redis.Addr()))}
	path := filepath.Join(e.dir, "Caddyfile")
	if err := os.WriteFile(path, e.caddyfile(t, site), 0o600); err != nil {
		t.Fatal(err)
	}
	ivy := e.user(t, "ivy@corp.example", "")

	if err := runUsers(t, "reset", "ivy@corp.example", "--config", path); err == nil || !strings.Contains(err.Error(), "send an invitation") {
		t.Fatalf("reset before signup: %v", err)
	}
	if err := runUsers(t, "invite", "nobody@corp.example", "--config", path); err == nil || !strings.Contains(err.Error(), "has no user") {
		t.Fatalf("an unknown user: %v", err)
	}
	if err := runUsers(t, "invite", "ivy@corp.example", "--config", path, "--locale", "nl-NL"); err != nil {
		t.Fatalf("invite: %v", err)
	}
	subject, text := e.mailed(t, "ivy@corp.example")
	if subject != "Je bent uitgenodigd voor Example" || strings.Contains(text, "HR Desk") {
		t.Errorf("the operator's invitation %q:\n%s", subject, text)
	}
	if err := runUsers(t, "invite", ivy.ID, "--config", path); err == nil || !strings.Contains(err.Error(), "already has a live email link") {
		t.Fatalf("a second invitation: %v", err)
	}
	link, _ := e.mailedLinks(t, "ivy@corp.example")
	person := e.browser(t)
	if r := person.get(mustURL(link).RequestURI()); r.StatusCode != 200 || !strings.Contains(r.body, "i•••y@corp.example is uitgenodigd voor Example") {
		t.Fatalf("the running server does not know the command's link: %s\n%s", r.Status, r.body)
	}
	r := person.post("/.mailgate/account/invite/", map[string]string{
		"x": ticketOf(t, link, e.base+"/.mailgate/account/invite/?x="), "form_token": person.cookie("__Host-mailgate-form"),
	})
	if r.StatusCode != http.StatusSeeOther {
		t.Fatalf("accepting the command's invitation: %s", r.Status)
	}
	if err := runUsers(t, "reset", ivy.ID, "--config", path); err != nil {
		t.Fatalf("reset: %v", err)
	}
	if subject, _ := e.mailed(t, "ivy@corp.example"); subject != "Choose a new password for Example" {
		t.Errorf("reset mail %q", subject)
	}

	memory := filepath.Join(t.TempDir(), "Caddyfile")
	if err := os.WriteFile(memory, e.caddyfile(t, siteConfig{}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := runUsers(t, "invite", "ivy@corp.example", "--config", memory); err == nil || !strings.Contains(err.Error(), "memory store") {
		t.Fatalf("with the memory store: %v", err)
	}
}

// TestInvitationInBrowser: an invited person opens the mailed link in
// headless Chromium, accepts under the pages' CSP (form-action 'self'),
// lands on the site signed in, and later signs in by link as anyone does.
func TestInvitationInBrowser(t *testing.T) {
	e := startLinkCaddy(t, "")
	wd := startBrowser(t)
	ivy := e.user(t, "ivy@corp.example", "")
	e.create(t, ivy.ID, `{"type":"invitation"}`)
	link, _ := e.mailedLinks(t, "ivy@corp.example")

	wd.open(link)
	if src := wd.source(); !strings.Contains(src, "Accept your invitation") || !strings.Contains(src, "The HR Desk invited") {
		t.Fatalf("invite page:\n%s", src)
	}
	wd.screenshot("invite-1-page")
	wd.click("button[type=submit]")
	wd.waitFor("the site", func() bool { return wd.url() == e.base+"/" })
	if src := wd.source(); !strings.Contains(src, "hello ivy@corp.example") {
		t.Fatalf("the site after accepting:\n%s", src)
	}

	wd.open(e.base + "/.mailgate/logout")
	wd.click("button[type=submit]")
	wd.waitFor("the signed-out page", func() bool { return strings.Contains(wd.source(), "You have signed out") })
	wd.open(link)
	if src := wd.source(); !strings.Contains(src, "This link no longer works") {
		t.Fatalf("the used invitation:\n%s", src)
	}
	wd.typeInto("#email", "ivy@corp.example")
	wd.click("button[type=submit]")
	wd.waitFor("the check-your-inbox page", func() bool { return strings.Contains(wd.source(), "Check your inbox") })
	wd.open(e.mailedLink(t, "ivy@corp.example"))
	wd.click("button[type=submit]")
	wd.waitFor("the site again", func() bool { return strings.Contains(wd.source(), "hello ivy@corp.example") })
}
