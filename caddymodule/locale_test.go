package caddymodule

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
)

// speaking makes every request of b prefer lang, as a browser set to that
// language does.
func (b *browser) speaking(lang string) *browser {
	b.client.Transport = acceptLanguage{lang: lang, next: b.client.Transport}
	return b
}

type acceptLanguage struct {
	lang string
	next http.RoundTripper
}

func (a acceptLanguage) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Accept-Language", a.lang)
	return a.next.RoundTrip(r)
}

// askedInDutch is a Dutch mail's line on when and from where it was asked
// for, with the month as Dutch writes it short.
var askedInDutch = regexp.MustCompile(`Aangevraagd op \d{1,2} (jan\.|feb\.|mrt\.|apr\.|mei|jun\.|jul\.|aug\.|sep\.|okt\.|nov\.|dec\.) \d{4} \d\d:\d\d UTC vanaf 127\.0\.0\.1`)

// wantPage fails unless page is in lang and says text.
func wantPage(t *testing.T, what string, page response, lang, text string) {
	t.Helper()
	if !strings.Contains(page.body, `<html lang="`+lang+`">`) || !strings.Contains(page.body, text) {
		t.Fatalf("%s: %s, want %s saying %q:\n%s", what, page.Status, lang, text, page.body)
	}
}

// TestLangFollowsAcceptLanguage: the pages speak the language the browser
// prefers among those mailgate writes, q-values first; Dutch without a
// country is the Netherlands', any English is British, and a language
// mailgate does not write gets the site's default.
func TestLangFollowsAcceptLanguage(t *testing.T) {
	e := startCaddy(t)
	for _, c := range []struct{ header, lang, text string }{
		{"nl-BE,nl;q=0.9,en;q=0.5", "nl-BE", "Aanmelden bij Example"},
		{"nl", "nl-NL", "Inloggen bij Example"},
		{"en-US,en;q=0.9", "en-GB", "Sign in to Example"},
		{"en;q=0.4,nl-BE", "nl-BE", "Aanmelden bij Example"},
		{"fr", "en-GB", "Sign in to Example"},
		{"", "en-GB", "Sign in to Example"},
	} {
		wantPage(t, "login page for "+c.header, e.browser(t).speaking(c.header).get("/.mailgate/login"), c.lang, c.text)
	}
	// Not only the login form: every page.
	wantPage(t, "signed-out page", e.browser(t).speaking("nl-BE").get("/.mailgate/logout/done"), "nl-BE", "U bent afgemeld")
	wantPage(t, "dead link", e.browser(t).speaking("nl").get("/.mailgate/link?t=unknown"), "nl-NL", "Deze link werkt niet meer")
}

// TestSiteLocale: the operator's `locale` is the language of visitors whose
// browser names none mailgate writes; with `negotiate off` it is everyone's,
// the form's mails included. A mailed link opens in its mail's language,
// whatever the site's default and the opening browser.
func TestSiteLocale(t *testing.T) {
	e := startCaddyWith(t, func(*env) siteConfig {
		return siteConfig{Mailgate: "locale nl-NL {\n\t\t\tnegotiate off\n\t\t}"}
	})
	b := e.browser(t).speaking("en")
	wantPage(t, "login page, negotiation off", b.get("/.mailgate/login"), "nl-NL", "Inloggen bij Example")
	wantPage(t, "sent page, negotiation off", b.requestLink("alice@example.com", "/"), "nl-NL", "Kijk in je inbox")
	if subject, text := e.mailed(t, "alice@example.com"); subject != "Je inloglink voor Example" || !askedInDutch.MatchString(text) {
		t.Fatalf("the mail to a browser speaking English on a Dutch-only site: %q\n%s", subject, text)
	}

	e.reload(t, siteConfig{Mailgate: "locale nl-BE"})
	wantPage(t, "login page for fr", e.browser(t).speaking("fr").get("/.mailgate/login"), "nl-BE", "Aanmelden bij Example")
	wantPage(t, "login page for en", e.browser(t).speaking("en").get("/.mailgate/login"), "en-GB", "Sign in to Example")
	wantPage(t, "login page for no language", e.browser(t).get("/.mailgate/login"), "nl-BE", "Aanmelden bij Example")

	// English asked for on a Belgian site, opened in a Dutch browser.
	e.browser(t).speaking("en-GB").requestLink("alice@example.com", "/")
	if subject, _ := e.mailed(t, "alice@example.com"); subject != "Your sign-in link for Example" {
		t.Fatalf("the mail to a browser speaking English: %q", subject)
	}
	link := mustURL(e.mailedLink(t, "alice@example.com"))
	wantPage(t, "an English mail's link in a Dutch browser", e.browser(t).speaking("nl").get(link.RequestURI()), "en-GB", "Continue signing in")
}

// TestLinkMailInDutch: a browser that prefers Dutch gets its sign-in mail
// in Dutch, subject, body and date; the link's page is Dutch even when
// opened in a browser that prefers English, and it signs the person in.
func TestLinkMailInDutch(t *testing.T) {
	e := startCaddy(t)
	wantPage(t, "sent page", e.browser(t).speaking("nl").requestLink("alice@example.com", "/reports"), "nl-NL", "Kijk in je inbox")
	subject, text := e.mailed(t, "alice@example.com")
	if subject != "Je inloglink voor Example" || !strings.HasPrefix(text, "Hallo,") || !strings.Contains(text, "verloopt over 15 minuten") || !askedInDutch.MatchString(text) {
		t.Fatalf("the mail is not in Dutch of the Netherlands, date included: %q\n%s", subject, text)
	}
	link := mustURL(e.mailedLink(t, "alice@example.com"))
	other := e.browser(t).speaking("en-GB")
	wantPage(t, "the link's page", other.get(link.RequestURI()), "nl-NL", "Verder met inloggen")
	r := other.post("/.mailgate/link", map[string]string{
		"t": link.Query().Get("t"), "l": link.Query().Get("l"), "form_token": other.cookie("__Host-mailgate-form"),
	})
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/reports" || other.cookie("__Host-mailgate") == "" {
		t.Fatalf("confirming the Dutch link: %s %q\n%s", r.Status, r.Header.Get("Location"), r.body)
	}
}

// TestCodeMailInDutch: "email me a code" from a browser that prefers
// Belgian Dutch: the code page and the mail are in Belgian Dutch, date
// included, and the code signs the person in.
func TestCodeMailInDutch(t *testing.T) {
	e := startCaddy(t)
	b := e.browser(t).speaking("nl-BE,nl;q=0.9,en;q=0.5")
	wantPage(t, "code page", b.requestCode("alice@example.com", "/"), "nl-BE", "Vul de code in")
	subject, text := e.mailed(t, "alice@example.com")
	code := e.mailedCode(t, "alice@example.com")
	if subject != code+" is uw aanmeldcode voor Example" || !strings.HasPrefix(text, "Beste,") || !askedInDutch.MatchString(text) {
		t.Fatalf("the code mail is not in Belgian Dutch, date included: %q\n%s", subject, text)
	}
	if r := b.enterCode(code, "/"); r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/" {
		t.Fatalf("the Dutch code: %s %q\n%s", r.Status, r.Header.Get("Location"), r.body)
	}
	if wrong := b.enterCode(code, "/"); !strings.Contains(wrong.body, `<html lang="nl-BE">`) || !strings.Contains(wrong.body, "Deze code is vervallen of al gebruikt") {
		t.Fatalf("the used code's page is not in Belgian Dutch:\n%s", wrong.body)
	}
}
