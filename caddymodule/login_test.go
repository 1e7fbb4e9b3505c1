package caddymodule

import (
	"bytes"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	gomail "github.com/emersion/go-message/mail"
	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"

	"github.com/mailgate/caddy-mailgate/internal/flow"
)

// TestUnauthenticatedBrowserGoesToTheLoginPage: unauthenticated browser is
// sent to the login page.
func TestUnauthenticatedBrowserGoesToTheLoginPage(t *testing.T) {
	e := startCaddy(t)
	r := e.browser(t).get("/reports?year=2026")
	if r.StatusCode != http.StatusFound {
		t.Fatalf("status %s, want 302", r.Status)
	}
	want := e.base + "/.mailgate/login?return=" + url.QueryEscape("/reports?year=2026")
	if loc := r.Header.Get("Location"); loc != want {
		t.Fatalf("Location %q, want %q", loc, want)
	}
	if r.Header.Get("Strict-Transport-Security") == "" {
		t.Error("the redirect to the login page has no Strict-Transport-Security")
	}
	if p := e.browser(t).get("/.mailgate/login"); p.Header.Get("Strict-Transport-Security") != "max-age=31536000" {
		t.Errorf("the login page has Strict-Transport-Security %q", p.Header.Get("Strict-Transport-Security"))
	}
	// A return path the login form would refuse is not carried along.
	long := "/" + strings.Repeat("x", flow.MaxReturn)
	if loc := e.browser(t).get(long).Header.Get("Location"); loc != e.base+"/.mailgate/login" {
		t.Fatalf("Location %q for a %d-byte path, want the login page without return", loc, len(long))
	}
	if n := e.upstream.count(); n != 0 {
		t.Fatalf("the upstream was reached %d times without a session", n)
	}
}

// TestUnauthenticatedAPICallGets401JSON: unauthenticated API call gets 401
// JSON.
func TestUnauthenticatedAPICallGets401JSON(t *testing.T) {
	e := startCaddy(t)
	b := e.browser(t)
	req, _ := http.NewRequest(http.MethodPost, e.base+"/api/items", strings.NewReader("{}"))
	req.Header.Set("Accept", "application/json")
	r := b.do(req)
	if r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("status %s, want 401", r.Status)
	}
	if !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Mailgate ") {
		t.Errorf("WWW-Authenticate = %q", r.Header.Get("WWW-Authenticate"))
	}
	if r.Header.Get("X-Content-Type-Options") != "nosniff" || r.Header.Get("Strict-Transport-Security") != "max-age=31536000" {
		t.Errorf("the 401 has X-Content-Type-Options %q, Strict-Transport-Security %q",
			r.Header.Get("X-Content-Type-Options"), r.Header.Get("Strict-Transport-Security"))
	}
	var body struct {
		Error    string `json:"error"`
		Message  string `json:"message"`
		LoginURL string `json:"login_url"`
	}
	if err := json.Unmarshal([]byte(r.body), &body); err != nil || body.Error != "unauthenticated" || body.LoginURL != e.base+"/.mailgate/login" {
		t.Fatalf("body %q (%v)", r.body, err)
	}
	if n := e.upstream.count(); n != 0 {
		t.Fatalf("the upstream was reached %d times without a session", n)
	}
}

// TestHandleAndRespondBlocksAreGuarded: handle and respond blocks are
// guarded too.
func TestHandleAndRespondBlocksAreGuarded(t *testing.T) {
	e := startCaddy(t)
	b := e.browser(t)
	req, _ := http.NewRequest(http.MethodGet, e.base+"/direct", nil)
	if r := b.do(req); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("unauthenticated /direct: %s %q", r.Status, r.body)
	}
	b.login("alice@example.com", "/")
	if r := b.get("/direct"); r.StatusCode != http.StatusOK || r.body != "direct answer for alice@example.com" {
		t.Fatalf("authenticated /direct: %s %q", r.Status, r.body)
	}
	if n := e.upstream.count(); n != 0 {
		t.Fatalf("the upstream was reached %d times without a session", n)
	}
}

// TestLinkLoginJourney: the login journey, from the form through the
// mailed link to the protected page.
func TestLinkLoginJourney(t *testing.T) {
	e := startCaddy(t)
	b := e.browser(t)
	r := b.requestLink("Alice@Example.com", "/docs?page=2")
	if r.StatusCode != http.StatusOK || !strings.Contains(r.body, "Check your inbox") {
		t.Fatalf("request: %s\n%s", r.Status, r.body)
	}
	link := e.mailedLink(t, "alice@example.com")
	if !strings.HasPrefix(link, e.base+"/.mailgate/link?t=") {
		t.Fatalf("link %q is not built from base_url", link)
	}

	// Scanners fetch links: GETs must not use it up. The page names the
	// account, masked, so a person who opened someone else's link sees it.
	for i := 0; i < 2; i++ {
		g := b.get(mustURL(link).RequestURI())
		if g.StatusCode != http.StatusOK || !strings.Contains(g.body, `action="/.mailgate/link"`) {
			t.Fatalf("GET of the link #%d: %s", i+1, g.Status)
		}
		if !strings.Contains(g.body, "a•••e@example.com") || strings.Contains(g.body, "alice@example.com") {
			t.Fatalf("the confirmation page does not name the account masked:\n%s", g.body)
		}
	}
	r = b.confirm(link)
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/docs?page=2" {
		t.Fatalf("confirm: %s, Location %q", r.Status, r.Header.Get("Location"))
	}
	assertSessionCookie(t, r.Header.Values("Set-Cookie"))

	// The upstream sees who it is, and none of the client's forgeries.
	// Remote-Name matters most: alice has no name, so mailgate sets
	// none, and only stripping keeps a forged one out.
	g := b.get("/whoami", "Remote-Email", "mallory@example.com", "Remote_Email", "mallory@example.com",
		"remote-user", "admin", "Remote-Name", "Mallory")
	if g.StatusCode != http.StatusOK || g.body != "hello alice@example.com" {
		t.Fatalf("protected page: %s %q", g.Status, g.body)
	}
	h := e.upstream.last(t)
	if got := h.Values("Remote-Email"); len(got) != 1 || got[0] != "alice@example.com" {
		t.Errorf("upstream Remote-Email = %q", got)
	}
	if got := h.Values("Remote-User"); len(got) != 1 || len(got[0]) != 36 {
		t.Errorf("upstream Remote-User = %q, want the user's id", got)
	}
	for name, v := range h {
		if sameHeader(name, "Remote-Name") || strings.Contains(strings.ToLower(strings.Join(v, ",")), "mallory") || strings.Contains(strings.Join(v, ","), "admin") {
			t.Errorf("spoofed header reached the upstream: %s: %q", name, v)
		}
	}

	// The same link twice is refused, with a way to get a new one, on
	// the page already.
	if g := e.browser(t).get(mustURL(link).RequestURI()); g.StatusCode != http.StatusGone || strings.Contains(g.body, `action="/.mailgate/link"`) {
		t.Fatalf("GET of a used link: %s\n%s", g.Status, g.body)
	}
	again := e.browser(t).confirm(link)
	if again.StatusCode != http.StatusGone || !strings.Contains(again.body, `action="/.mailgate/login/email"`) || !strings.Contains(again.body, `name="method" value="code"`) {
		t.Fatalf("reused link: %s, want a page that offers a new link and a code\n%s", again.Status, again.body)
	}
}

// TestSessionTokenIsMACedAndThePublishedKeysCannotForgeOne: the session
// token is MACed, and the published keys cannot forge one.
func TestSessionTokenIsMACedAndThePublishedKeysCannotForgeOne(t *testing.T) {
	e := startCaddy(t)
	b := e.browser(t)
	token := b.login("alice@example.com", "/")
	r := b.get("/.mailgate/jwks.json")
	if r.StatusCode != http.StatusOK || r.Header.Get("Content-Type") != "application/jwk-set+json" {
		t.Fatalf("jwks: %s %s", r.Status, r.Header.Get("Content-Type"))
	}
	var set struct {
		Keys []map[string]string `json:"keys"`
	}
	if err := json.Unmarshal([]byte(r.body), &set); err != nil || len(set.Keys) == 0 {
		t.Fatalf("jwks %q: %v", r.body, err)
	}
	parts := strings.Split(token, ".")
	var hdr struct{ Alg, Kid, Typ string }
	raw, _ := base64.RawURLEncoding.DecodeString(parts[0])
	if err := json.Unmarshal(raw, &hdr); err != nil || hdr.Alg != "HS256" || hdr.Typ != "mailgate-session+jwt" {
		t.Fatalf("token header %s (%v)", raw, err)
	}
	// The cookie holds ids, not the person's address or name.
	if claims, _ := base64.RawURLEncoding.DecodeString(parts[1]); strings.Contains(string(claims), "alice") || strings.Contains(string(claims), "email") {
		t.Fatalf("the session cookie carries personal data: %s", claims)
	}
	// The MAC key derives from a ring key whose public half is
	// published; neither that half nor its JWK may serve as the MAC
	// key (the HS256/public-key confusion).
	var ringKey map[string]string
	for _, k := range set.Keys {
		if _, private := k["d"]; private {
			t.Fatal("the JWKS publishes a private key")
		}
		if k["kid"] == hdr.Kid {
			ringKey = k
		}
	}
	if ringKey == nil {
		t.Fatalf("the session's kid %q is not a published key: %s", hdr.Kid, r.body)
	}
	x, _ := base64.RawURLEncoding.DecodeString(ringKey["x"])
	jwkJSON, _ := json.Marshal(ringKey)
	for name, secret := range map[string][]byte{"raw public key": x, "public JWK": jwkJSON, "JWKS": []byte(r.body)} {
		mac := hmac.New(sha256.New, secret)
		mac.Write([]byte(parts[0] + "." + parts[1]))
		forged := parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
		if got := e.browser(t).do(e.withCookie("/", forged)); got.StatusCode != http.StatusUnauthorized {
			t.Fatalf("a session MACed with the %s: %s, want 401", name, got.Status)
		}
	}
	if got := e.browser(t).do(e.withCookie("/", token)); got.StatusCode != http.StatusOK {
		t.Fatalf("the real session was refused: %s", got.Status)
	}
}

// TestAddressNotAllowedGetsTheSamePageAndNoMail: address not allowed gets
// the same page and no mail.
func TestAddressNotAllowedGetsTheSamePageAndNoMail(t *testing.T) {
	e := startCaddy(t)
	before := len(e.smtp.Messages())
	allowed := e.browser(t).requestLink("carol@corp.example", "/")
	refused := e.browser(t).requestLink("mallory@example.com", "/")
	if refused.StatusCode != allowed.StatusCode {
		t.Fatalf("status %s for a refused address, %s for an allowed one", refused.Status, allowed.Status)
	}
	// The pages differ only in the masked address and the script nonce.
	nonce := regexp.MustCompile(`nonce="[^"]+"`)
	same := func(body, masked string) string {
		return nonce.ReplaceAllString(strings.ReplaceAll(body, masked, "X"), "")
	}
	if same(refused.body, "m•••y@example.com") != same(allowed.body, "c•••l@corp.example") {
		t.Fatal("the page differs between an allowed and a refused address")
	}
	if got := len(e.smtp.Messages()) - before; got != 1 || e.mailsTo("mallory@example.com") != 0 {
		t.Fatalf("%d mails sent; the refused address got %d", got, e.mailsTo("mallory@example.com"))
	}
}

// TestLinkFormRedirectsAndItsTokenWorksOnce: the link form answers with a
// redirect, and its token works once.
func TestLinkFormRedirectsAndItsTokenWorksOnce(t *testing.T) {
	e := startCaddy(t)
	b := e.browser(t)
	b.get("/.mailgate/login?return=/docs")
	form := map[string]string{"email": "Carol@corp.example", "return": "/docs", "form_token": b.cookie("__Host-mailgate-form")}
	before := e.mailsTo("carol@corp.example")
	r := b.post("/.mailgate/login/email", form)
	loc := r.Header.Get("Location")
	if r.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/.mailgate/login/sent?") || strings.Contains(loc, "carol") {
		t.Fatalf("link request: %s to %q; want 303 to the sent page, the address masked", r.Status, loc)
	}
	sent := b.get(loc)
	if sent.StatusCode != http.StatusOK || !strings.Contains(sent.body, "c•••l@corp.example") || !strings.Contains(sent.body, "Check your inbox") {
		t.Fatalf("sent page: %s\n%s", sent.Status, sent.body)
	}
	// A refresh re-fetches the GET page; resending the form is refused.
	if again := b.post("/.mailgate/login/email", form); again.StatusCode != http.StatusForbidden {
		t.Fatalf("the same form sent twice: %s, want 403", again.Status)
	}
	if got := e.mailsTo("carol@corp.example") - before; got != 1 {
		t.Fatalf("%d mails for one request and one resubmission, want 1", got)
	}
	// A crafted sent page with text of someone's choosing is not shown.
	if r := b.get("/.mailgate/login/sent?to=Call+us+on+555"); r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/.mailgate/login" {
		t.Fatalf("sent page with a made-up address: %s %q", r.Status, r.Header.Get("Location"))
	}
}

// TestNewLinkSupersedesThePreviousOne: a new link supersedes the previous
// one.
func TestNewLinkSupersedesThePreviousOne(t *testing.T) {
	e := startCaddy(t)
	b := e.browser(t)
	b.requestLink("alice@example.com", "/")
	first := e.mailedLink(t, "alice@example.com")
	b.requestLink("alice@example.com", "/")
	second := e.mailedLink(t, "alice@example.com")
	if r := b.confirm(first); r.StatusCode != http.StatusGone {
		t.Fatalf("superseded link: %s", r.Status)
	}
	if r := b.confirm(second); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("newest link: %s", r.Status)
	}
}

// TestConcurrentLinkRequestsLeaveOneLiveLink: 50 concurrent link requests
// leave one live link.
func TestConcurrentLinkRequestsLeaveOneLiveLink(t *testing.T) {
	e := startCaddy(t)
	// Fifty people, or tabs, each with its own form: form tokens are
	// single-use.
	browsers := make([]*browser, 50)
	for i := range browsers {
		browsers[i] = e.browser(t)
		browsers[i].get("/.mailgate/login")
	}
	before := len(e.smtp.Messages())
	var wg sync.WaitGroup
	for _, b := range browsers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			form := map[string]string{"email": "carol@corp.example", "return": "/", "form_token": b.cookie("__Host-mailgate-form")}
			if r := b.post("/.mailgate/login/email", form); r.StatusCode != http.StatusSeeOther {
				t.Errorf("link request: %s", r.Status)
			}
		}()
	}
	wg.Wait()
	b := e.browser(t)
	live := 0
	for _, m := range e.smtp.Messages()[before:] {
		r, err := gomail.CreateReader(bytes.NewReader(m.Data))
		if err != nil {
			t.Fatal(err)
		}
		link := textLink(t, r)
		// The confirmation page uses nothing up, and says whether the link is live.
		if r := b.get(mustURL(link).RequestURI()); r.StatusCode == http.StatusOK {
			live++
		}
	}
	if live != 1 {
		t.Fatalf("%d of 50 links are live, want 1", live)
	}
}

// TestExpiredLinkIsRefused: expired link is refused.
func TestExpiredLinkIsRefused(t *testing.T) {
	e := startCaddy(t)
	b := e.browser(t)
	b.requestLink("alice@example.com", "/")
	link := e.mailedLink(t, "alice@example.com")
	clockOffset.Add(int64(15*time.Minute + time.Second))
	defer clockOffset.Store(0)
	if r := b.confirm(link); r.StatusCode != http.StatusGone {
		t.Fatalf("expired link: %s", r.Status)
	}
}

// TestPostsFromAnotherOriginOrWithoutTheFormTokenAreRefused: posts from
// another origin or without the form token are refused.
func TestPostsFromAnotherOriginOrWithoutTheFormTokenAreRefused(t *testing.T) {
	e := startCaddy(t)
	b := e.browser(t)
	b.requestLink("alice@example.com", "/")
	tok := mustURL(e.mailedLink(t, "alice@example.com")).Query().Get("t")
	forms := map[string]map[string]string{
		"no form token":    {"t": tok},
		"wrong form token": {"t": tok, "form_token": "forged"},
	}
	for name, form := range forms {
		if r := b.post("/.mailgate/link", form); r.StatusCode != http.StatusForbidden {
			t.Errorf("%s: %s, want 403", name, r.Status)
		}
	}
	req, _ := http.NewRequest(http.MethodPost, e.base+"/.mailgate/link",
		strings.NewReader("t="+tok+"&form_token="+b.cookie("__Host-mailgate-form")))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://evil.example")
	if r := b.do(req); r.StatusCode != http.StatusForbidden {
		t.Errorf("foreign Origin: %s, want 403", r.Status)
	}
	// None of those used the link up.
	if r := b.confirm("https://x/.mailgate/link?t=" + tok); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("the link was consumed by a refused post: %s", r.Status)
	}
}

// TestPagesAnswer405WithAllowOr404: pages answer 405 with Allow for another
// method, 404 for an unknown path.
func TestPagesAnswer405WithAllowOr404(t *testing.T) {
	e := startCaddy(t)
	b := e.browser(t)
	before := e.upstream.count()
	if r := b.get("/.mailgate/login/email"); r.StatusCode != http.StatusMethodNotAllowed || !strings.Contains(r.Header.Get("Allow"), "POST") {
		t.Fatalf("GET of a POST-only page: %s, Allow %q", r.Status, r.Header.Get("Allow"))
	}
	if r := b.get("/.mailgate/nothing-here"); r.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown page: %s", r.Status)
	}
	if e.upstream.count() != before {
		t.Fatal("the upstream saw a request under the prefix")
	}
}

// TestPagesSayWhoIsSignedIn: pages say who is signed in, and do not ask what
// needs no asking.
func TestPagesSayWhoIsSignedIn(t *testing.T) {
	e := startCaddy(t)
	anon := e.browser(t)
	login := anon.get("/.mailgate/login")
	if !strings.Contains(login.body, "<title>Sign in to Example</title>") || strings.Contains(login.body, "already signed in") {
		t.Fatalf("login page for a visitor: title or notice wrong:\n%s", login.body)
	}
	if r := anon.get("/.mailgate/logout"); r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/.mailgate/logout/done" {
		t.Fatalf("sign-out page with nobody signed in: %s %q, want 303 to the signed-out page", r.Status, r.Header.Get("Location"))
	}
	b := e.browser(t)
	b.login("alice@example.com", "/")
	if r := b.get("/.mailgate/login"); !strings.Contains(r.body, "You are already signed in as alice@example.com.") ||
		!strings.Contains(r.body, `<a href="/.mailgate/logout">Sign out to use another address.</a>`) {
		t.Fatalf("login page for a signed-in visitor: no notice, or no way to switch account:\n%s", r.body)
	}
	if r := b.get("/.mailgate/logout"); !strings.Contains(r.body, "You are signed in as alice@example.com. Sign out of Example?") || !strings.Contains(r.body, `autofocus>Sign out</button>`) {
		t.Fatalf("sign-out page: does not name the account, or the button is not focused:\n%s", r.body)
	}
	b.requestLink("alice@example.com", "/")
	confirm := b.get(mustURL(e.mailedLink(t, "alice@example.com")).RequestURI())
	if !strings.Contains(confirm.body, "already signed in as alice@example.com") || !strings.Contains(confirm.body, `type="submit" autofocus`) {
		t.Fatalf("confirm page: no signed-in notice or the button is not focused:\n%s", confirm.body)
	}
}

// TestPlantedFormTokenIsReplacedNotAdopted: a planted form token is
// replaced, not adopted.
func TestPlantedFormTokenIsReplacedNotAdopted(t *testing.T) {
	e := startCaddy(t)
	b := e.browser(t)
	planted := strings.Repeat("P", 43)
	b.client.Jar.SetCookies(mustURL(e.base+"/"), []*http.Cookie{{Name: "__Host-mailgate-form", Value: planted, Path: "/", Secure: true}})
	b.get("/.mailgate/login")
	if got := b.cookie("__Host-mailgate-form"); got == planted || got == "" {
		t.Fatalf("form token after the login page: %q", got)
	}
	b.client.Jar.SetCookies(mustURL(e.base+"/"), []*http.Cookie{{Name: "__Host-mailgate-form", Value: planted, Path: "/", Secure: true}})
	r := b.post("/.mailgate/login/email", map[string]string{"email": "alice@example.com", "form_token": planted})
	if r.StatusCode != http.StatusForbidden {
		t.Fatalf("a post with the planted token: %s, want 403", r.Status)
	}
}

// TestLogoutRevokesTheSession: logout revokes the session.
func TestLogoutRevokesTheSession(t *testing.T) {
	e := startCaddy(t)
	b := e.browser(t)
	token := b.login("alice@example.com", "/")
	if r := b.get("/"); r.StatusCode != http.StatusOK {
		t.Fatalf("signed in: %s", r.Status)
	}
	if r := b.get("/.mailgate/logout"); r.StatusCode != http.StatusOK {
		t.Fatalf("logout page: %s", r.Status)
	}
	form := map[string]string{"form_token": b.cookie("__Host-mailgate-form")}
	r := b.post("/.mailgate/logout", form)
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/.mailgate/logout/done" || b.cookie("__Host-mailgate") != "" {
		t.Fatalf("logout: %s to %q; cookie left: %q", r.Status, r.Header.Get("Location"), b.cookie("__Host-mailgate"))
	}
	if done := b.get("/.mailgate/logout/done"); done.StatusCode != http.StatusOK || !strings.Contains(done.body, "signed out") {
		t.Fatalf("signed-out page: %s\n%s", done.Status, done.body)
	}
	// The same form again, as a refresh of a POST answer would send it,
	// signs out nobody and says so again.
	if again := b.post("/.mailgate/logout", form); again.StatusCode != http.StatusSeeOther || again.Header.Get("Location") != "/.mailgate/logout/done" {
		t.Fatalf("the logout form sent twice: %s, want 303 to the signed-out page", again.Status)
	}
	// A copy of the old cookie, replayed, is refused.
	if r := e.browser(t).do(e.withCookie("/", token)); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("revoked session: %s, want 401", r.Status)
	}
}

// TestReloadKeepsPendingLinksAndSessions: reload keeps pending links and
// sessions.
func TestReloadKeepsPendingLinksAndSessions(t *testing.T) {
	e := startCaddy(t)
	b := e.browser(t)
	signedIn := e.browser(t)
	signedIn.login("alice@example.com", "/")
	b.requestLink("carol@corp.example", "/after-reload")
	link := e.mailedLink(t, "carol@corp.example")

	e.reload(t, siteConfig{SiteName: "Example Reloaded"})
	if r := b.get("/.mailgate/login"); !strings.Contains(r.body, "Example Reloaded") {
		t.Fatal("the reload did not take effect")
	}
	if r := b.confirm(link); r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/after-reload" {
		t.Fatalf("pending link after reload: %s", r.Status)
	}
	if r := signedIn.get("/"); r.StatusCode != http.StatusOK {
		t.Fatalf("session after reload: %s", r.Status)
	}
}

// TestJWKSFollowsTheKeyRingInStorageWithoutAReload: the JWKS follows the key
// ring in storage without a reload.
func TestJWKSFollowsTheKeyRingInStorageWithoutAReload(t *testing.T) {
	e := startCaddy(t)
	signedIn := e.browser(t)
	signedIn.login("alice@example.com", "/")
	kids := func() string { return e.browser(t).get("/.mailgate/jwks.json").body }
	before := kids()
	// Another instance sharing the storage puts a new signing key in
	// front, as a rotation does.
	path := filepath.Join(e.dir, "storage", "mailgate", "default", "keys.json")
	kid := prependKey(t, path)
	if strings.Contains(kids(), kid) {
		t.Fatal("the JWKS changed before the ring was due to be read again")
	}
	clockOffset.Add(int64(keyRefresh))
	defer clockOffset.Store(0)
	after := kids()
	if !strings.Contains(after, kid) || !strings.Contains(after, jwkKid(t, before)) {
		t.Fatalf("the JWKS does not publish both the new and the old key:\n%s", after)
	}
	if r := signedIn.get("/"); r.StatusCode != http.StatusOK {
		t.Fatalf("a session signed with the old key: %s", r.Status)
	}
	token := e.browser(t).login("carol@corp.example", "/")
	if !strings.Contains(tokenHeader(t, token), kid) {
		t.Fatalf("a new session is not signed with the new key: %s", tokenHeader(t, token))
	}
}

// TestReloadThatChangesTheStoreIsRefused: a reload that changes the store is
// refused, not ignored.
func TestReloadThatChangesTheStoreIsRefused(t *testing.T) {
	e := startCaddy(t)
	b := e.browser(t)
	b.requestLink("carol@corp.example", "/kept")
	link := e.mailedLink(t, "carol@corp.example")
	err := e.tryReload(t, siteConfig{Mailgate: "store memory {\n\t\t\tmax_memory 16MiB\n\t\t}"})
	if err == nil || !strings.Contains(err.Error(), "max_memory") || !strings.Contains(err.Error(), "restart") {
		t.Fatalf("reload with new store settings: %v; want a refusal that names max_memory and says to restart", err)
	}
	// The running config, and its pending links, carry on.
	if r := b.confirm(link); r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/kept" {
		t.Fatalf("pending link after the refused reload: %s", r.Status)
	}
	e.reload(t, siteConfig{})
}

func assertSessionCookie(t *testing.T, setCookies []string) {
	t.Helper()
	for _, sc := range setCookies {
		if !strings.HasPrefix(sc, "__Host-mailgate=") {
			continue
		}
		attrs := map[string]bool{}
		for _, a := range strings.Split(sc, ";")[1:] {
			attrs[strings.ToLower(strings.TrimSpace(a))] = true
		}
		for _, want := range []string{"secure", "httponly", "samesite=lax", "path=/"} {
			if !attrs[want] {
				t.Errorf("session cookie lacks %s: %s", want, sc)
			}
		}
		for a := range attrs {
			if strings.HasPrefix(a, "domain=") || strings.HasPrefix(a, "expires=") || strings.HasPrefix(a, "max-age=") {
				t.Errorf("session cookie has %s: %s", a, sc)
			}
		}
		return
	}
	t.Fatalf("no __Host-mailgate cookie in %q", setCookies)
}

// prependKey puts a new Ed25519 key in front of the stored key ring at
// path, as another instance's rotation would, and returns its kid.
func prependKey(t *testing.T, path string) string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	old, err := jwk.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	k, err := jwk.FromRaw(priv)
	if err != nil {
		t.Fatal(err)
	}
	_ = jwk.AssignKeyID(k)
	_ = k.Set(jwk.AlgorithmKey, jwa.EdDSA)
	set := jwk.NewSet()
	_ = set.AddKey(k)
	for i := 0; i < old.Len(); i++ {
		o, _ := old.Key(i)
		_ = set.AddKey(o)
	}
	out, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, out, 0o600); err != nil {
		t.Fatal(err)
	}
	return k.KeyID()
}

// TestSignOutInOnePressFromTheApp: the app's own "Sign out" button posts
// straight to {prefix}/logout, as the demo's does, and that one press ends
// the session everywhere; a post from another site signs nobody out.
func TestSignOutInOnePressFromTheApp(t *testing.T) {
	e := startCaddy(t)
	b := e.browser(t)
	token := b.login("alice@example.com", "/")
	press := func(site string) response {
		req, _ := http.NewRequest(http.MethodPost, e.base+"/.mailgate/logout", strings.NewReader(""))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Sec-Fetch-Site", site)
		return b.do(req)
	}
	if r := press("cross-site"); r.StatusCode != http.StatusForbidden {
		t.Fatalf("a sign-out posted from another site: %s, want 403", r.Status)
	}
	if r := b.get("/"); r.StatusCode != http.StatusOK {
		t.Fatalf("after a refused cross-site sign-out, the session: %s", r.Status)
	}
	if r := press("same-origin"); r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/.mailgate/logout/done" || b.cookie("__Host-mailgate") != "" {
		t.Fatalf("one press from the app: %s to %q, cookie %q", r.Status, r.Header.Get("Location"), b.cookie("__Host-mailgate"))
	}
	if r := e.browser(t).do(e.withCookie("/", token)); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a copy of the session after the one-press sign-out: %s, want 401", r.Status)
	}
}
