package web

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/mailgate/caddy-mailgate/internal/directory"
	"github.com/mailgate/caddy-mailgate/internal/locale"
	"github.com/mailgate/caddy-mailgate/internal/ticket"
)

func TestEveryPageRendersSafely(t *testing.T) {
	p, err := New()
	if err != nil {
		t.Fatal(err)
	}
	pages := []string{PageLogin, PageSent, PageConfirm, PageInvalid, PageSendFailed, PageLogout, PageLogoutFailed, PageSignedOut, PageSetPassword, PageCodeLinked, PageCode, PageCodeLinkInvalid, PageCodeLocked, PageUnavailable, "bad_form",
		PageInvite, PageReset, PageRevoke, PageRevoked, PageEmailLinkInvalid}
	for locale := range catalogues {
		for _, page := range pages {
			rec := httptest.NewRecorder()
			d := Data{SiteName: "Ex<ample>", Prefix: "/.mailgate", FormToken: "tok", Return: "/a?b=1&c=<x>",
				Email: `"><script>alert(1)</script>`, Account: directory.MaskEmail(`"><script>alert(1)</script>@x.org`),
				Secret: "sec", Minutes: 15, Error: "invalid_email", Locale: locale}
			if err := p.Render(rec, http.StatusOK, page, d); err != nil {
				t.Fatalf("%s: %v", page, err)
			}
			body := rec.Body.String()
			h := rec.Header()
			csp := h.Get("Content-Security-Policy")
			nonce, ok := strings.CutPrefix(csp, CSP+"; script-src 'nonce-")
			nonce, ok2 := strings.CutSuffix(nonce, "'")
			if !ok || !ok2 || len(nonce) < 22 || h.Get("Cache-Control") != "no-store" || h.Get("Referrer-Policy") != "no-referrer" {
				t.Errorf("%s: security headers missing: %v", page, h)
			}
			// The one script is the busy-state file, by this answer's nonce.
			busy := `<script src="/.mailgate/assets/busy.js" nonce="` + nonce + `" defer></script>`
			if strings.Count(body, busy) != 1 {
				t.Errorf("%s: the busy script is not loaded by the CSP's nonce:\n%s", page, body)
			}
			body = strings.Replace(body, busy, "", 1)
			if strings.Contains(body, "<script") || strings.Contains(body, "style=") || strings.Contains(body, "<style") {
				t.Errorf("%s: inline script or style, or unescaped input:\n%s", page, body)
			}
			if strings.Contains(body, "Ex<ample>") {
				t.Errorf("%s: site name not escaped", page)
			}
			if strings.Contains(body, "%!") || strings.Contains(body, "<no value>") {
				t.Errorf("%s: template placeholder leaked:\n%s", page, body)
			}
			if !strings.Contains(body, `<html lang="`+locale+`">`) {
				t.Errorf("%s in %s: wrong lang attribute", page, locale)
			}
		}
	}
}

func TestCataloguesHaveTheSameKeys(t *testing.T) {
	ref := catalogues[locale.Default]
	for l, c := range catalogues {
		for k := range ref {
			if c[k] == "" {
				t.Errorf("%s lacks %q", l, k)
			}
		}
		for k := range c {
			if _, ok := ref[k]; !ok {
				t.Errorf("%s has %q, which %s lacks", l, k, locale.Default)
			}
		}
	}
	// A catalogue for every supported locale, and none for another.
	if len(catalogues) != len(locale.All()) {
		t.Errorf("%d catalogues for %d locales", len(catalogues), len(locale.All()))
	}
	for _, l := range locale.All() {
		if catalogues[l] == nil {
			t.Errorf("%s is supported but has no catalogue", l)
		}
	}
}

// testForms is a site's Forms with a fixed key, as every instance of one
// realm would share.
func testForms(secure bool) Forms {
	return Forms{Keys: keys([]byte("0123456789abcdef0123456789abcdef")), Origin: "https://app.example.com", Secure: secure}
}

func TestFormsTokenAndOrigin(t *testing.T) {
	f := testForms(true)
	origin := f.Origin
	rec := httptest.NewRecorder()
	tok := f.Token(rec, httptest.NewRequest("GET", "/", nil))
	cookie := rec.Result().Cookies()[0]
	if cookie.Name != "__Host-mailgate-form" || cookie.Value != tok || cookie.Path != "/" || !cookie.Secure || !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode {
		t.Fatalf("form cookie = %+v", cookie)
	}
	post := func(field string, hdr map[string]string) *http.Request {
		r := httptest.NewRequest("POST", "/", strings.NewReader(url.Values{FormTokenField: {field}}.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.AddCookie(cookie)
		for k, v := range hdr {
			r.Header.Set(k, v)
		}
		r.ParseForm()
		return r
	}
	cases := []struct {
		name  string
		r     *http.Request
		valid bool
	}{
		{"same-origin fetch metadata", post(tok, map[string]string{"Sec-Fetch-Site": "same-origin"}), true},
		{"matching Origin", post(tok, map[string]string{"Origin": origin}), true},
		{"cross-site", post(tok, map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": origin}), false},
		{"same-site but other origin", post(tok, map[string]string{"Sec-Fetch-Site": "same-site"}), false},
		{"foreign Origin", post(tok, map[string]string{"Origin": "https://evil.example"}), false},
		{"neither header", post(tok, nil), false},
		{"wrong token", post(otherFirstChar(tok), map[string]string{"Origin": origin}), false},
		{"empty token", post("", map[string]string{"Origin": origin}), false},
	}
	for _, c := range cases {
		if err := f.Check(c.r); (err == nil) != c.valid {
			t.Errorf("%s: err = %v, valid = %v", c.name, err, c.valid)
		}
	}
	// A browser that already has a token keeps it.
	r := httptest.NewRequest("GET", "/", nil)
	r.AddCookie(cookie)
	rec = httptest.NewRecorder()
	if again := f.Token(rec, r); again != tok || len(rec.Result().Cookies()) != 0 {
		t.Fatal("form token was replaced although the browser had one")
	}
}

// formPost is a same-origin POST whose form token cookie and field are both
// tok, as an attacker who planted tok could make it.
func formPost(f Forms, tok string) *http.Request {
	r := httptest.NewRequest("POST", "/", strings.NewReader(url.Values{FormTokenField: {tok}}.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Sec-Fetch-Site", "same-origin")
	r.AddCookie(&http.Cookie{Name: formCookieName(f.Secure), Value: tok})
	r.ParseForm()
	return r
}

func TestFormsReplacePlantedTokens(t *testing.T) {
	for _, secure := range []bool{true, false} {
		f := testForms(secure)
		other := f
		other.Keys = keys([]byte("another realm's key, 32 bytes ok"))
		minted := f.Token(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
		nonce, tag, _ := strings.Cut(minted, ".")
		planted := map[string]string{
			"random secret":        ticket.NewSecret(),
			"long random value":    ticket.NewSecret() + ticket.NewSecret(),
			"random nonce and tag": ticket.NewSecret() + "." + ticket.NewSecret()[:22],
			"other key":            other.Token(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil)),
			"tampered tag":         nonce + "." + otherFirstChar(tag),
			"tampered nonce":       otherFirstChar(nonce) + "." + tag,
			"nonce without tag":    nonce,
			"empty tag":            nonce + ".",
			"tag without nonce":    "." + tag,
			"extra part":           minted + ".x",
		}
		for name, tok := range planted {
			r := httptest.NewRequest("GET", "/", nil)
			r.AddCookie(&http.Cookie{Name: formCookieName(secure), Value: tok})
			rec := httptest.NewRecorder()
			got := f.Token(rec, r)
			cookies := rec.Result().Cookies()
			if got == tok || len(cookies) != 1 || cookies[0].Value != got || cookies[0].Name != formCookieName(secure) {
				t.Errorf("secure=%v, %s: planted token kept (got %q, Set-Cookie %v)", secure, name, got, cookies)
			}
			if err := f.Check(formPost(f, got)); err != nil {
				t.Errorf("secure=%v, %s: the replacement token is refused: %v", secure, name, err)
			}
			if err := f.Check(formPost(f, tok)); err == nil {
				t.Errorf("secure=%v, %s: a post with the planted token in cookie and field was accepted", secure, name)
			}
		}
	}
}

func TestFormsReuseMintedTokens(t *testing.T) {
	f := testForms(true)
	tok := f.Token(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	// Another instance of the realm shares the key and so the token.
	for _, g := range []Forms{f, {Keys: keys(append([]byte(nil), f.Keys()[0]...)), Origin: f.Origin, Secure: true}} {
		r := httptest.NewRequest("GET", "/", nil)
		r.AddCookie(&http.Cookie{Name: formCookieName(true), Value: tok})
		rec := httptest.NewRecorder()
		if got := g.Token(rec, r); got != tok || len(rec.Result().Cookies()) != 0 {
			t.Errorf("minted token not reused: got %q, Set-Cookie %v", got, rec.Result().Cookies())
		}
		if err := g.Check(formPost(g, tok)); err != nil {
			t.Errorf("minted token refused: %v", err)
		}
	}
	if tok2 := f.Token(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil)); tok2 == tok {
		t.Error("two browsers got the same form token")
	}
}

func TestFormsRefuseShortKeys(t *testing.T) {
	good := testForms(true)
	tok := good.Token(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	for _, key := range [][]byte{nil, good.Keys()[0][:31]} {
		f := good
		f.Keys = keys(key)
		if err := f.Check(formPost(f, tok)); err == nil {
			t.Errorf("%d-byte key: Check accepted a post", len(key))
		}
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%d-byte key: Token minted a token", len(key))
				}
			}()
			f.Token(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
		}()
	}
}

func TestMaskEmail(t *testing.T) {
	cases := []struct{ in, want string }{
		{"alice@example.com", "a•••e@example.com"},
		{"a@x.org", "a•••@x.org"},
		{"ab@x.org", "a•••b@x.org"},
		{"abc@x.org", "a•••c@x.org"},
		{"émilie.dupré@exemple.fr", "é•••é@exemple.fr"},
		{"δ@x.gr", "δ•••@x.gr"},
		{"用户名@例子.中国", "用•••名@例子.中国"},
		{`"a@b"@example.com`, `"•••"@example.com`},
		{"@example.com", "•••@example.com"},
		{"alice", "•••"},
		{"", "•••"},
	}
	for _, c := range cases {
		if got := directory.MaskEmail(c.in); got != c.want {
			t.Errorf("directory.MaskEmail(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestConfirmNamesTheMaskedAccount(t *testing.T) {
	p, err := New()
	if err != nil {
		t.Fatal(err)
	}
	const email = "alice@example.com"
	for locale, cat := range catalogues {
		before, _, _ := strings.Cut(cat["confirm_account"], "%s")
		for _, account := range []string{directory.MaskEmail(email), ""} {
			rec := httptest.NewRecorder()
			// The full address in Email must not reach the page either.
			d := Data{Locale: locale, SiteName: "Example", Prefix: "/.mailgate", FormToken: "tok", Secret: "sec", Email: email, Account: account}
			if err := p.Render(rec, http.StatusOK, PageConfirm, d); err != nil {
				t.Fatal(err)
			}
			body := rec.Body.String()
			if strings.Contains(body, email) || strings.Contains(body, "alice") {
				t.Errorf("%s: the full address is on the page:\n%s", locale, body)
			}
			if account == "" {
				if strings.Contains(body, before) {
					t.Errorf("%s: the account sentence is shown without an account:\n%s", locale, body)
				}
				continue
			}
			if want := fmt.Sprintf(cat["confirm_account"], "a•••e@example.com"); !strings.Contains(body, want) {
				t.Errorf("%s: page lacks %q:\n%s", locale, want, body)
			}
		}
	}
}

// otherFirstChar returns tok with its first character changed; replacing it
// with a fixed letter would leave the token intact whenever it already began
// with that letter.
func otherFirstChar(tok string) string {
	if tok[0] == 'A' {
		return "B" + tok[1:]
	}
	return "A" + tok[1:]
}

// keys is a fixed list of form keys, the first minting.
func keys(k ...[]byte) func() [][]byte { return func() [][]byte { return k } }

// TestFormsSurviveARotation: a token minted before a key rotation still
// verifies after it (the old key is second), and new tokens use the new key.
func TestFormsSurviveARotation(t *testing.T) {
	oldKey, newKey := []byte("the key before the rotation, 32b"), []byte("the key after the rotation, 32 b")
	before := Forms{Keys: keys(oldKey), Origin: "https://app.example.com", Secure: true}
	tok := before.Token(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	after := before
	after.Keys = keys(newKey, oldKey)
	if err := after.Check(formPost(after, tok)); err != nil {
		t.Fatalf("a form from before the rotation: %v", err)
	}
	fresh := after.Token(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	if err := (Forms{Keys: keys(newKey), Origin: before.Origin, Secure: true}).Check(formPost(after, fresh)); err != nil {
		t.Fatalf("a new token is not minted with the new key: %v", err)
	}
	if err := before.Check(formPost(before, fresh)); err == nil {
		t.Fatal("a token of the new key verified under the old key alone")
	}
}

// TestSendFailedKeepsWhatWasTyped: the "we could not send" page (a full
// mail queue) offers the form again with the address and the return path,
// so that trying again is one press.
func TestSendFailedKeepsWhatWasTyped(t *testing.T) {
	p, err := New()
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	d := Data{SiteName: "Example", Prefix: "/.mailgate", FormToken: "tok", Email: "alice@example.com", Return: "/after", Locale: "en-GB"}
	if err := p.Render(rec, http.StatusServiceUnavailable, PageSendFailed, d); err != nil {
		t.Fatal(err)
	}
	body := rec.Body.String()
	if !strings.Contains(body, `value="alice@example.com"`) || !strings.Contains(body, `name="return" value="/after"`) {
		t.Fatalf("the try-again form dropped the address or the return path:\n%s", body)
	}
}
